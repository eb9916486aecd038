#!/usr/bin/env bash
# The image's runtime contract, checked without Docker or a registry:
#
#   the Dockerfile's USER and ENTRYPOINT, and deploy/base's Deployment (runAsUser, a read-only
#   root, no command override) agree; an OCI image assembled with umoci from the release binary
#   carries that user and entrypoint in its config; and runc runs its entrypoint from the image
#   config as that user, with a read-only root file system and every capability dropped, as
#   deploy/base does, until /readyz answers "ready". Then SIGTERM, and a clean exit.
#
# The image assembled here is glibc-based: these machines have no musl target for Rust, so the
# release binary is linked against glibc and its shared libraries go into the image beside it.
# The Dockerfile's image is the static musl build on distroless static; the two differ in libc,
# not in the contract checked (user, entrypoint, read-only root, no capabilities).
#
# Usage: tools/image-contract.sh [BINARY]     (default: target/release/fluxgate)
# Needs umoci and runc (Debian's packages; .ci/run installs them) and python3; runs as root.
set -euo pipefail
cd "$(dirname "$0")/.."

binary=${1:-target/release/fluxgate}
fail() { echo "image-contract: $*" >&2; exit 1; }
[[ -x "$binary" ]] || fail "$binary: no such binary (cargo build --release, or pass its path)"
for tool in umoci runc python3; do
  command -v "$tool" >/dev/null || fail "$tool not found (apt-get install umoci runc)"
done

# == the contract, from the Dockerfile
user=$(sed -n 's/^USER[[:space:]]\+\([^[:space:]]\+\).*/\1/p' Dockerfile | tail -1)
entrypoint=$(sed -n 's/^ENTRYPOINT[[:space:]]\+\(\[.*\]\)[[:space:]]*$/\1/p' Dockerfile | tail -1)
[[ "$user" =~ ^[0-9]+:[0-9]+$ ]] || fail "Dockerfile: USER must be numeric uid:gid (runAsNonRoot needs a number), found '$user'"
[[ -n "$entrypoint" ]] || fail "Dockerfile: no ENTRYPOINT in exec (JSON) form"
uid=${user%%:*}
gid=${user##*:}
mapfile -t entry < <(python3 -c 'import json,sys; print("\n".join(json.loads(sys.argv[1])))' "$entrypoint")
[[ "${entry[0]}" == /* ]] || fail "Dockerfile: ENTRYPOINT ${entry[0]} is not an absolute path"
echo "== the Dockerfile's contract: USER $user, ENTRYPOINT $entrypoint"

# == deploy/base runs the image as the Dockerfile says
deployment=deploy/base/deployment.yaml
grep -q "runAsUser: $uid\b" "$deployment" || fail "$deployment: runAsUser is not $uid (the Dockerfile's USER)"
grep -q "runAsGroup: $gid\b" "$deployment" || fail "$deployment: runAsGroup is not $gid (the Dockerfile's USER)"
grep -q 'readOnlyRootFilesystem: true' "$deployment" || fail "$deployment: readOnlyRootFilesystem is not true"
grep -q 'drop: \["ALL"\]' "$deployment" || fail "$deployment: capabilities are not all dropped"
if grep -qE '^[[:space:]]+command:' "$deployment"; then
  fail "$deployment: a command: replaces the image's ENTRYPOINT"
fi
echo "== $deployment: runAsUser $uid, runAsGroup $gid, read-only root, no capabilities, the image's entrypoint"

work=$(mktemp -d "${TMPDIR:-/tmp}/fluxgate-image.XXXXXX")
state="$work/runc"
container="fluxgate-contract-$$"
cleanup() {
  runc --root "$state" kill "$container" KILL >/dev/null 2>&1 || true
  runc --root "$state" delete --force "$container" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# == the image: one layer holding the binary at the entrypoint's path, the libraries it links
# (glibc), and /etc/passwd and /etc/group naming the user, as distroless does
layout="$work/oci"
umoci init --layout "$layout"
umoci new --image "$layout:fluxgate"
umoci unpack --image "$layout:fluxgate" "$work/build" >/dev/null
rootfs="$work/build/rootfs"
install -D -m 0755 "$binary" "$rootfs${entry[0]}"
for lib in $(ldd "$binary" | grep -o '/[^ ]*'); do
  install -D -m 0755 "$(readlink -f "$lib")" "$rootfs$lib"
done
mkdir -p "$rootfs/etc"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%s:%s:nonroot:/home/nonroot:/sbin/nologin\n' "$uid" "$gid" >"$rootfs/etc/passwd"
printf 'root:x:0:\nnonroot:x:%s:\n' "$gid" >"$rootfs/etc/group"
umoci repack --image "$layout:fluxgate" "$work/build"
config_args=(--config.user "$user" --config.exposedports 8443/tcp --config.exposedports 9090/tcp)
for word in "${entry[@]}"; do config_args+=(--config.entrypoint "$word"); done
umoci config --image "$layout:fluxgate" "${config_args[@]}"

# The image's config, read from the layout as a runtime would.
python3 - "$layout" "$user" "$entrypoint" <<'EOF'
import json, sys
layout, user, entrypoint = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
def blob(digest):
    algorithm, hex_ = digest.split(":")
    return json.load(open(f"{layout}/blobs/{algorithm}/{hex_}"))
index = json.load(open(f"{layout}/index.json"))
manifest = blob(index["manifests"][0]["digest"])
config = blob(manifest["config"]["digest"])["config"]
assert config.get("User") == user, f"image config User {config.get('User')!r}, want {user!r}"
assert config.get("Entrypoint") == entrypoint, f"image config Entrypoint {config.get('Entrypoint')}"
assert not config.get("Cmd"), f"image config Cmd {config.get('Cmd')}: the Dockerfile has none"
print(f"== image config: User {config['User']}, Entrypoint {config['Entrypoint']}, {len(manifest['layers'])} layer(s)")
EOF

# == run it: the runtime bundle umoci makes from the image config, with what deploy/base adds
# (read-only root, no capabilities, no new privileges) and the host's loopback (no network
# namespace) on free ports, given through the environment twins as a pod's env would
umoci unpack --image "$layout:fluxgate" "$work/bundle" >/dev/null
read -r addr_port metrics_port < <(python3 -c '
import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])')
python3 - "$work/bundle/config.json" "$addr_port" "$metrics_port" <<'EOF'
import json, sys
path, addr, metrics = sys.argv[1], sys.argv[2], sys.argv[3]
spec = json.load(open(path))
spec["root"]["readonly"] = True
process = spec["process"]
process["terminal"] = False
process["noNewPrivileges"] = True
process["capabilities"] = {k: [] for k in ("bounding", "effective", "inheritable", "permitted", "ambient")}
process["env"] += [f"FLUXGATE_ADDR=127.0.0.1:{addr}", f"FLUXGATE_METRICS_ADDR=127.0.0.1:{metrics}"]
spec["linux"]["namespaces"] = [n for n in spec["linux"]["namespaces"] if n["type"] != "network"]
json.dump(spec, open(path, "w"), indent=1)
EOF
echo "== runc run: $(python3 -c 'import json,sys; p=json.load(open(sys.argv[1]))["process"]; print(p["user"], p["args"])' "$work/bundle/config.json")"
runc --root "$state" run --bundle "$work/bundle" "$container" >"$work/stdout" 2>"$work/stderr" &
runner=$!

ready=""
for _ in $(seq 1 300); do
  if ! kill -0 "$runner" 2>/dev/null; then break; fi
  ready=$(python3 - "$addr_port" <<'EOF' 2>/dev/null || true
import ssl, sys, urllib.request
context = ssl.create_default_context()
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE
with urllib.request.urlopen(f"https://127.0.0.1:{sys.argv[1]}/readyz", context=context, timeout=2) as r:
    print(r.status, r.read().decode().strip())
EOF
)
  [[ "$ready" == "200 ready" ]] && break
  sleep 0.1
done
if [[ "$ready" != "200 ready" ]]; then
  echo "--- runc's and fluxgate's stderr:" >&2
  cat "$work/stderr" >&2
  fail "/readyz did not answer 200 ready (last: '${ready:-nothing}')"
fi
echo "== GET /readyz: $ready"

pid=$(runc --root "$state" state "$container" | python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])')
ids=$(awk '/^Uid:/{u=$2" "$3" "$4" "$5} /^Gid:/{g=$2" "$3" "$4" "$5} END{print u"|"g}' "/proc/$pid/status")
[[ "$ids" == "$uid $uid $uid $uid|$gid $gid $gid $gid" ]] || fail "the entrypoint runs as uid/gid $ids, not $user"
root_options=$(awk '$5 == "/" {print $6}' "/proc/$pid/mountinfo")
[[ ",$root_options," == *",ro,"* ]] || fail "the root file system is mounted $root_options, not read-only"
capabilities=$(awk '/^CapEff:/{print $2}' "/proc/$pid/status")
[[ "$capabilities" =~ ^0+$ ]] || fail "effective capabilities $capabilities, not none"
echo "== the entrypoint runs as $uid:$gid, root mounted $root_options, no capabilities (CapEff $capabilities)"

runc --root "$state" kill "$container" TERM
status=0
wait "$runner" || status=$?
[[ $status -eq 0 ]] || { cat "$work/stderr" >&2; fail "exit $status after SIGTERM, not 0"; }
echo "== SIGTERM: drained and exited 0"
echo "image contract: ok"
