#!/usr/bin/env python3
"""Load test over real TLS with keep-alive on loopback: fluxgate against a bare baseline.

    python3 benches/load.py            # the full run of BENCHMARKS.md (about 4 minutes)
    python3 benches/load.py --quick    # one short round (CI)
    python3 benches/load.py --audit-dir /tmp   # the audit log on disk instead of in memory

Needs `oha` (cargo install oha --locked). Both servers run at once: fluxgate `serve` with the
example windows and an audit log file, and `examples/baseline.rs`, which only parses the
AdmissionReview and answers allowed. On a machine with two or more CPUs the servers are pinned to
CPU 1 and oha to CPU 0, so a server's figures are one core's and oha does not steal from it.
Throughput, latency and the server's CPU time per request are measured at maximum rate in
alternating rounds (the medians are reported, so a noisy minute hits both alike), then latency at
a fixed rate of half that maximum; also time from start to ready, RSS idle and peak. The body is
an 18.8 KB Deployment UPDATE by Flux (several field managers) governed by business-hours.

fluxgate's audit log goes to a file in /dev/shm (tmpfs) where there is one: at maximum rate the
run writes about a gigabyte of it, and on a small machine the kernel flushing that to disk takes
the same CPUs both servers are measured on, during whichever server's round comes next. The
write itself, a copy into the page cache, is in fluxgate's CPU time either way. `--audit-dir`
puts the log elsewhere (BENCHMARKS.md has figures for both).
"""

import argparse
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def big_deployment_update(path):
    """The bench's busy review (18.8 KB as written here, 17.7 KB compact): the recorded image bump with more managers, labels, annotations."""
    with open(os.path.join(ROOT, "tests/fixtures/admission/flux-dryrun-image-bump-deployment.json")) as f:
        review = json.load(f)
    for which in ("object", "oldObject"):
        meta = review["request"][which]["metadata"]
        entry = meta["managedFields"][0]
        for i, manager in enumerate(["kube-controller-manager", "horizontal-pod-autoscaler", "kubectl-rollout", "kubectl-edit"]):
            extra = json.loads(json.dumps(entry))
            extra.update(manager=manager, operation="Update", time=f"2026-11-2{i}T10:00:00Z")
            meta["managedFields"].append(extra)
        for i in range(20):
            meta["labels"][f"team.example.com/label-{i}"] = f"value-{i}"
            meta["annotations"][f"example.com/annotation-{i}"] = "x" * 80
        # Sorted, as the API server sends every map (Go's encoding/json sorts map keys).
        meta["labels"] = dict(sorted(meta["labels"].items()))
        meta["annotations"] = dict(sorted(meta["annotations"].items()))
    # Decided by the real clock against business-hours (Mon 08:00 to Thu 17:00 Berlin).
    with open(path, "w") as f:
        json.dump(review, f)
    return os.path.getsize(path)


def rss_kib(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def wait_ready(port, ca, path, timeout=20.0):
    """Seconds until GET `path` over TLS answers 200 (polling every millisecond)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            if os.path.exists(ca) and os.path.getsize(ca) > 0:
                ctx = ssl.create_default_context(cafile=ca)
                with socket.create_connection(("127.0.0.1", port), timeout=1) as raw:
                    with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                        tls.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
                        if tls.recv(64).startswith(b"HTTP/1.1 200"):
                            return time.monotonic() - start
        except (OSError, ssl.SSLError):
            pass
        time.sleep(0.001)
    raise SystemExit(f"server on {port} not ready after {timeout}s")


def oha(url, ca, body, duration, connections, rate=None, pin=()):
    cmd = [*pin, "oha", "-z", duration, "-c", str(connections), "-m", "POST", "-T", "application/json",
           "-D", body, "--cacert", ca, "--no-tui", "--output-format", "json", url]
    if rate:
        cmd[len(pin) + 1:len(pin) + 1] = ["-q", str(rate), "--latency-correction"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def summary(result):
    s, p = result["summary"], result["latencyPercentiles"]
    codes = result.get("statusCodeDistribution", {})
    return {
        "rps": round(s["requestsPerSec"]),
        "p50_ms": round(p["p50"] * 1000, 3),
        "p99_ms": round(p["p99"] * 1000, 3),
        "p99.9_ms": round(p["p99.9"] * 1000, 3),
        "success": s["successRate"],
        "status": codes,
    }


def port_open(port, ca):
    """Seconds until the baseline (which has no /readyz) accepts connections."""
    start = time.monotonic()
    while not (os.path.exists(ca) and os.path.getsize(ca) > 0):
        time.sleep(0.001)
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return time.monotonic() - start
        except OSError:
            time.sleep(0.001)


def server_time_percentiles(metrics_port):
    """p50/p99/p99.9 of fluxgate's own server time, as bucket upper bounds of its histogram."""
    import urllib.request
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics").read().decode()
    buckets = []
    for line in text.splitlines():
        if line.startswith("fluxgate_admission_duration_seconds_bucket"):
            le = line.split('le="')[1].split('"')[0]
            buckets.append((float("inf") if le == "+Inf" else float(le), float(line.split()[-1])))
    total = buckets[-1][1]
    def bound(q):
        return next(le for le, count in buckets if count >= q * total)
    return {"requests": int(total), "p50_le_ms": bound(0.5) * 1000, "p99_le_ms": bound(0.99) * 1000,
            "p99.9_le_ms": bound(0.999) * 1000}


def cpu_seconds(pid):
    """User + system CPU time the process has used so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def median(values):
    values = sorted(values)
    return values[len(values) // 2]


class Server:
    """One server under test: started, made ready, measured in rounds, stopped."""

    def __init__(self, name, cmd, port, ca, ready, tmp, pin, metrics_port=None):
        self.name, self.port, self.ca, self.metrics_port = name, port, ca, metrics_port
        self.url = f"https://localhost:{port}/validate"
        stderr = open(os.path.join(tmp, f"{name}.stderr"), "w")
        self.proc = subprocess.Popen(pin + cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=stderr)
        self.ready_ms = round(ready() * 1000, 1)
        time.sleep(0.5)
        self.rss_idle_mib = round(rss_kib(self.proc.pid) / 1024, 1)
        self.rounds = []

    def measure(self, body, args):
        """One round at maximum rate: throughput, latency and the server's CPU per request."""
        oha(self.url, self.ca, body, "2s", args.connections, pin=args.oha_pin)  # warm-up
        before = cpu_seconds(self.proc.pid)
        result = summary(oha(self.url, self.ca, body, args.duration, args.connections, pin=args.oha_pin))
        requests = sum(result["status"].values())
        result["server_cpu_us_per_request"] = round((cpu_seconds(self.proc.pid) - before) * 1e6 / max(1, requests), 1)
        self.rounds.append(result)

    def report(self, body, args):
        top = {key: median([r[key] for r in self.rounds])
               for key in ("rps", "p50_ms", "p99_ms", "p99.9_ms", "server_cpu_us_per_request")}
        top["rounds_rps"] = [r["rps"] for r in self.rounds]
        top["errors"] = sum(sum(v for k, v in r["status"].items() if k != "200") for r in self.rounds)
        half = summary(oha(self.url, self.ca, body, args.duration, args.connections,
                           rate=max(1, top["rps"] // 2), pin=args.oha_pin))
        result = {"ready_ms": self.ready_ms, "rss_idle_mib": self.rss_idle_mib,
                  "rss_peak_mib": round(rss_kib(self.proc.pid, "VmHWM") / 1024, 1), "max": top, "half": half}
        if self.metrics_port:
            time.sleep(0.5)  # requests oha cancelled at its deadline are still being decided
            result["server_time"] = server_time_percentiles(self.metrics_port)
        return result

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one short round")
    parser.add_argument("--duration", default="10s", help="per round and for the half-rate run")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds at maximum rate")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--audit-dir", default=None,
                        help="where fluxgate's audit log goes (default: /dev/shm if writable, "
                             "else the run's temporary directory)")
    parser.add_argument("--no-pin", action="store_true",
                        help="do not pin the server to CPU 1 and oha to CPU 0")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.rounds = "1s", 1
    if not shutil.which("oha"):
        if os.environ.get("CI"):
            print("the load test needs oha, and CI must run it: cargo install oha --locked", file=sys.stderr)
            return 1
        print("skipping the load test: oha not found (cargo install oha --locked)")
        return 0
    pinned = not args.no_pin and shutil.which("taskset") and (os.cpu_count() or 1) >= 2
    server_pin = ["taskset", "-c", "1"] if pinned else []
    args.oha_pin = ["taskset", "-c", "0"] if pinned else []
    subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "fluxgate", "--example", "baseline"],
                   cwd=ROOT, check=True)
    tmp = tempfile.mkdtemp(prefix="fluxgate-load-")
    audit_dir = args.audit_dir
    if audit_dir is None:
        audit_dir = "/dev/shm" if os.access("/dev/shm", os.W_OK) else tmp
    audit_log = os.path.join(tempfile.mkdtemp(prefix="fluxgate-audit-", dir=audit_dir), "audit.log")
    body = os.path.join(tmp, "review.json")
    size = big_deployment_update(body)
    fluxgate_ca, baseline_ca = os.path.join(tmp, "fluxgate-ca.pem"), os.path.join(tmp, "baseline-ca.pem")
    results = {"body_bytes": size, "connections": args.connections, "duration": args.duration,
               "rounds": args.rounds, "pinned": bool(pinned)}
    servers = []
    try:
        servers.append(Server(
            "fluxgate",
            [os.path.join(ROOT, "target/release/fluxgate"), "serve", "--addr", "127.0.0.1:18443",
             "--metrics-addr", "127.0.0.1:19090", "--ca-out", fluxgate_ca,
             "--audit-log", audit_log, "--windows", "deploy/examples/windows.yaml",
             "--shutdown-delay", "0s"],
            18443, fluxgate_ca, lambda: wait_ready(18443, fluxgate_ca, "/readyz"), tmp, server_pin,
            metrics_port=19090))
        servers.append(Server(
            "baseline",
            [os.path.join(ROOT, "target/release/examples/baseline"), "127.0.0.1:18444", baseline_ca],
            18444, baseline_ca, lambda: port_open(18444, baseline_ca), tmp, server_pin))
        # Alternating rounds, so that a noisy neighbour or a slow minute hits both servers alike.
        for _ in range(args.rounds):
            for server in servers:
                server.measure(body, args)
        for server in servers:
            results[server.name] = server.report(body, args)
        with open(audit_log) as f:
            results["fluxgate"]["audit_lines"] = sum(1 for _ in f)
    finally:
        for server in servers:
            server.stop()
        # A gigabyte in /dev/shm is memory: never left behind, whatever happened.
        shutil.rmtree(os.path.dirname(audit_log), ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)
    results["ratio"] = round(results["fluxgate"]["max"]["rps"] / results["baseline"]["max"]["rps"], 3)
    results["audit_log"] = audit_log
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
