#!/usr/bin/env bash
# make demo: start a dev coordinator and a simulated model server, store a
# workload config, record a benchmark job through the API, run the same
# workload's concurrency sweep with the load engine against the simulator,
# and print where the report is. Everything runs on loopback and is cleaned
# up on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=./bin
WORK=$(mktemp -d /tmp/perfleet-demo.XXXXXX)
OUT=${PERFLEET_DEMO_OUT:-$PWD/demo-results}
API=127.0.0.1:${PERFLEET_DEMO_PORT:-7233}
SIM=127.0.0.1:${PERFLEET_DEMO_SIM_PORT:-18000}
GOSSIP=127.0.0.1:${PERFLEET_DEMO_GOSSIP_PORT:-7235}
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

wait_line() { # file text seconds
  for _ in $(seq 1 $(( $3 * 10 ))); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "timed out waiting for '$2' in $1:"; cat "$1"; exit 1
}

echo "== starting perfleet dev on $API"
$BIN/perfleet dev --grpc-addr "$API" --gossip-addr "$GOSSIP" >"$WORK/dev.log" 2>&1 & pids+=($!)
wait_line "$WORK/dev.log" "ready:" 20
export PERFLEET_ADDR=$API

echo "== starting a simulated GPU fleet: two 8xH100 agents and one 1xL4 agent"
i=0
for spec in "lab-h100-a 8xH100-80GB lab-8xH100" "lab-h100-b 8xH100-80GB lab-8xH100" "lab-l4-a 1xL4 ml.g6.xlarge"; do
  set -- $spec; i=$((i+1))
  $BIN/perfleet-agent --id "$1" --simulate-gpus "$2" --instance-type "$3" --label rack=r$i \
    --gossip-addr "127.0.0.1:$((17400+i))" --join "$GOSSIP" >"$WORK/agent-$1.log" 2>&1 & pids+=($!)
done
for _ in $(seq 1 100); do [ "$($BIN/perfleet agent list --status alive | grep -c true)" = 3 ] && break; sleep 0.1; done
$BIN/perfleet agent list

echo "== starting the simulated model server (1x H100) on $SIM"
$BIN/perfleet-agent simulate --listen "$SIM" --gpu H100-80GB --gpus 1 --model demo-llm --seed 42 >"$WORK/sim.log" 2>&1 & pids+=($!)
wait_line "$WORK/sim.log" "$SIM" 20

cat >"$WORK/chat.yaml" <<'SPEC'
benchmark:
  type: aiperf
parameters:
  model: demo-llm
  concurrency: [1, 8, 32]
  request_count: 48
  prompt_input_tokens_mean: 256
  output_tokens_mean: 64
  extra_inputs: "ignore_eos:true"
  goodput: "time_to_first_token:200 inter_token_latency:40"
  warmup_request_count: 8
SPEC

echo "== API session (perfleet CLI -> coordinator)"
$BIN/perfleet workload-config create chat --spec "$WORK/chat.yaml" --tag team=demo
$BIN/perfleet benchmark-job create chat-sweep --workload-config chat --endpoint "http://$SIM" \
  --inference-component demo-llm --output-location "file://$OUT"
$BIN/perfleet benchmark-job list
echo "(the distributed job runner is not built yet: the job stays InProgress; the sweep below runs the same workload standalone)"

echo "== concurrency sweep with the load engine against the simulator"
$BIN/perfleet-agent run --target "http://$SIM" --workload "$WORK/chat.yaml" --output "$OUT/chat-sweep"

echo "== stopping and cleaning up the job record"
$BIN/perfleet benchmark-job stop chat-sweep
for _ in $(seq 1 50); do $BIN/perfleet benchmark-job describe chat-sweep | grep -q "Status:.*Stopped" && break; sleep 0.1; done
$BIN/perfleet benchmark-job describe chat-sweep | grep -E "Name|Status|Ended"
$BIN/perfleet operator raft list-peers

echo
echo "Results of the sweep: $OUT/chat-sweep"
find "$OUT/chat-sweep" -name 'profile_export_aiperf.json' | sort | sed 's/^/  /'
