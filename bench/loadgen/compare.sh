#!/usr/bin/env bash
# Puts perfleet's load engine beside vegeta and wrk on the same plain HTTP
# server, back to back, REPS times (figures on a shared machine are noisy:
# compare ratios within one repetition, then take the median).
#
#   bench/loadgen/compare.sh accuracy   # 5,000 req/s open loop against a 10 ms server
#   bench/loadgen/compare.sh short      # maximum rate of short requests, C connections
#
# Needs vegeta (GOBIN=/tmp/bin go install github.com/tsenart/vegeta/v12@latest)
# and wrk on PATH or in /tmp/bin. Env: REPS (3), DUR (10s), C (64), RATE (5000).
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH=/tmp/bin:$PATH
REPS=${REPS:-3} DUR=${DUR:-10s} C=${C:-64} RATE=${RATE:-5000}
go build -o /tmp/perfleet-loadgen ./bench/loadgen
go build -o /tmp/perfleet-benchserver ./bench/loadgen/server
body=/tmp/perfleet-bench-body.json
printf '{"model":"m","prompt":"hi","stream":false}' > "$body"
serve() { # addr delay
  /tmp/perfleet-benchserver -addr "$1" -delay "$2" 2>/dev/null & SERVER=$!
  trap 'kill $SERVER 2>/dev/null || true' EXIT
  for _ in $(seq 50); do curl -s -o /dev/null "http://$1/" && return; sleep 0.1; done
}
case "${1:-}" in
accuracy)
  addr=127.0.0.1:18081; serve $addr 10ms
  for i in $(seq "$REPS"); do
    echo "== repetition $i"
    /tmp/perfleet-loadgen -target http://$addr -mode open -rate "$RATE" -c 0 -duration "$DUR"
    echo "POST http://$addr/" | vegeta attack -rate "$RATE" -duration "$DUR" -body "$body" \
      -header 'Content-Type: application/json' -keepalive=true | vegeta report -type=text | sed 's/^/  vegeta /' | grep -E 'Requests|Latencies|Success'
  done ;;
short)
  addr=127.0.0.1:18080; serve $addr 0s
  for i in $(seq "$REPS"); do
    echo "== repetition $i"
    /tmp/perfleet-loadgen -target http://$addr -mode closed -c "$C" -duration "$DUR"
    echo "POST http://$addr/" | vegeta attack -rate 0 -max-workers "$C" -duration "$DUR" -body "$body" \
      -header 'Content-Type: application/json' | vegeta report -type=text | sed 's/^/  vegeta /' | grep -E 'Requests|Success'
    wrk -t2 -c"$C" -d"$DUR" -s /dev/stdin http://$addr/ <<'LUA' | sed 's/^/  wrk /' | grep -E 'Requests/sec|Latency|requests in'
wrk.method = "POST"
wrk.body = '{"model":"m","prompt":"hi","stream":false}'
wrk.headers["Content-Type"] = "application/json"
LUA
  done ;;
*) echo "usage: $0 accuracy|short" >&2; exit 2 ;;
esac
