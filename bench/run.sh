#!/usr/bin/env bash
# make bench: installs the peers and servers the harness needs when they
# are missing (wrk, nginx-light with the echo module, from Debian; vegeta is
# built by the harness from bench/tools/go.mod), then runs bench/harness,
# which regenerates bench/RESULTS.md and bench/plots/.
#
#   make bench                  # full profile, under 20 minutes
#   BENCH_QUICK=1 make bench    # CI's profile, under 3 minutes; report under a temporary directory
#   bench/run.sh -only loadgen  # one section (loadgen, streams, dist, merge, raft, gossip)
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || need+=(nginx-light)
[ -e /usr/lib/nginx/modules/ngx_http_echo_module.so ] || need+=(libnginx-mod-http-echo)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  echo "bench: installing ${need[*]}" >&2
  # policy-rc.d keeps the package from starting a system nginx on port 80.
  $sudo sh -c 'printf "#!/bin/sh\nexit 101\n" > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d'
  trap '$sudo rm -f /usr/sbin/policy-rc.d' EXIT
  $sudo apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
export CGO_CFLAGS="${CGO_CFLAGS:--Wno-deprecated-declarations}"
exec go run ./bench/harness "$@"
