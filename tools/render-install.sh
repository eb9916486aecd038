#!/usr/bin/env bash
# Renders a release's install.yaml: deploy/overlays/cert-manager with the image set to IMAGE.
#
#   tools/render-install.sh ghcr.io/<owner>/fluxgate:v0.2.0[@sha256:…] > install.yaml
#
# IMAGE is NAME[:TAG][@DIGEST]. The release workflow runs this with the pushed image's tag and
# digest, and tests/install.rs runs it too, so install.yaml is reproducible from deploy/ alone.
# Needs kubectl (its built-in kustomize).
#
# How: a throwaway overlay whose `images:` names IMAGE, the same edit a user's own overlay makes.
# It lives inside the checkout (target/), because kustomize refuses absolute paths as resources.
set -euo pipefail
if [[ $# -ne 1 || -z "$1" ]]; then
  echo "usage: $0 IMAGE   (NAME[:TAG][@DIGEST], e.g. ghcr.io/acme/fluxgate:v0.2.0)" >&2
  exit 2
fi
image=$1
root=$(cd "$(dirname "$0")/.." && pwd)

name=${image%%@*}
digest=
[[ "$image" == *@* ]] && digest=${image#*@}
tag=
last=${name##*/}
if [[ "$last" == *:* ]]; then
  tag=${last##*:}
  name=${name%:*}
fi
if [[ -z "$tag" && -z "$digest" ]]; then
  echo "$0: $image names neither a tag nor a digest; give one (NAME:TAG or NAME@sha256:…)" >&2
  exit 2
fi
if [[ ! "$name" =~ ^[a-z0-9]([a-z0-9._/:-]*[a-z0-9])?$ ]]; then
  echo "$0: $name is not a valid image name (lower case, e.g. ghcr.io/acme/fluxgate)" >&2
  exit 2
fi

mkdir -p "$root/target"
overlay=$(mktemp -d "$root/target/render-install.XXXXXX")
trap 'rm -rf "$overlay"' EXIT
{
  echo "resources:"
  echo "  - ../../deploy/overlays/cert-manager"
  echo "images:"
  echo "  - name: registry.example.com/fluxgate"   # what deploy/base sets
  echo "    newName: $name"
  [[ -n "$tag" ]] && echo "    newTag: \"$tag\""
  [[ -n "$digest" ]] && echo "    digest: \"$digest\""
} > "$overlay/kustomization.yaml"

rendered=$(kubectl kustomize "$overlay")
# The base's image must have been replaced, or the release would install the placeholder.
if grep -q 'registry.example.com' <<<"$rendered"; then
  echo "$0: the rendered manifests still name registry.example.com: deploy/base's images: changed?" >&2
  exit 1
fi
echo "# fluxgate install.yaml: deploy/overlays/cert-manager with image $image"
echo "# (tools/render-install.sh; needs cert-manager v1 in the cluster)."
echo "$rendered"
