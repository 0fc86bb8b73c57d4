#!/usr/bin/env bash
# Build the perfleet container image from host-built static binaries.
# Usage: deploy/build-image.sh [TAG]   (default perfleet:dev)
# See deploy/Dockerfile for why the binaries are built outside Docker.
set -euo pipefail
cd "$(dirname "$0")/.."
TAG=${1:-perfleet:dev}
CTX=$(mktemp -d "${TMPDIR:-/tmp}/perfleet-image.XXXXXX")
trap 'rm -rf "$CTX"' EXIT
ROOT=$CTX/rootfs
mkdir -p "$ROOT/etc/ssl/certs" "$ROOT/tmp" "$ROOT/data"

echo "== static binaries (CGO_ENABLED=0)"
CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$ROOT/perfleet" ./coordinator
CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$ROOT/perfleet-agent" ./agent

printf 'root:x:0:0:root:/:/perfleet\nperfleet:x:65532:65532:perfleet:/data:/perfleet\n' >"$ROOT/etc/passwd"
printf 'root:x:0:\nperfleet:x:65532:\n' >"$ROOT/etc/group"
# CA certificates for s3:// result locations and KMS on AWS, when the host has them.
for f in /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt; do
  if [ -r "$f" ]; then cp "$f" "$ROOT/etc/ssl/certs/ca-certificates.crt"; break; fi
done
chmod 1777 "$ROOT/tmp" "$ROOT/data"
tar --numeric-owner --owner=0 --group=0 -C "$ROOT" -cf "$CTX/rootfs.tar" .
cp deploy/Dockerfile "$CTX/Dockerfile"

echo "== docker build -t $TAG"
docker build -q -t "$TAG" "$CTX" >/dev/null 2>"$CTX/build.err" || { cat "$CTX/build.err"; exit 1; }
docker image inspect "$TAG" --format '{{.Id}} {{.Size}} bytes' | sed "s|^|$TAG |"
