#!/usr/bin/env bash
# make demo: start a dev coordinator, a simulated GPU fleet of three agents
# (three instance classes) and a simulated model server; create a workload
# config and a benchmark job through the API; the coordinator splits each
# level of the concurrency sweep across the agents, merges their metrics and
# writes AIPerf's result files and a report. Then a recommendation job
# deploys the model on each class, benchmarks each deployment and ranks them
# by cost per token, leaving recommendations.json and report.html. Print
# where they are. Everything runs on loopback and is cleaned up on exit.
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

echo "== starting a simulated GPU fleet of three classes: 8xH100 (on-prem), 1xL40S (ml.g6e.xlarge), 1xL4 (ml.g6.xlarge)"
i=0
for spec in "lab-h100-a 8xH100-80GB lab-8xH100" "g6e-a 1xL40S ml.g6e.xlarge" "g6-a 1xL4 ml.g6.xlarge"; do
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
placement:
  agents: all
parameters:
  model: demo-llm
  concurrency: [1, 8, 32]
  request_count: 96
  prompt_input_tokens_mean: 256
  output_tokens_mean: 64
  extra_inputs: "ignore_eos:true"
  goodput: "time_to_first_token:200 inter_token_latency:40"
SPEC

echo "== API session: a workload config and a benchmark job, run by the agents"
$BIN/perfleet workload-config create chat --spec "$WORK/chat.yaml" --tag team=demo
$BIN/perfleet benchmark-job create chat-sweep --workload-config chat --endpoint "http://$SIM" \
  --inference-component demo-llm --output-location "file://$OUT" --watch
$BIN/perfleet benchmark-job describe chat-sweep
$BIN/perfleet benchmark-job logs chat-sweep
$BIN/perfleet benchmark-job results chat-sweep

echo "== the same workload standalone with perfleet-agent run (like aiperf profile), for comparison"
$BIN/perfleet-agent run --target "http://$SIM" --workload "$WORK/chat.yaml" --output "$OUT/standalone" >"$WORK/standalone.log" 2>&1 \
  && tail -n 4 "$WORK/standalone.log"

cat >"$WORK/rec.yaml" <<'SPEC'
benchmark:
  type: aiperf
parameters:
  model: demo-llm
  concurrency: [4, 16]
  request_count: 48
  prompt_input_tokens_mean: 256
  output_tokens_mean: 32
  extra_inputs: "ignore_eos:true"
  goodput: "time_to_first_token:300"
  random_seed: 42
SPEC

echo "== a recommendation job: which class serves demo-llm-8b at the lowest cost per token?"
$BIN/perfleet workload-config create rec-chat --spec "$WORK/rec.yaml"
$BIN/perfleet recommendation-job create pick-gpu --workload-config rec-chat --model hf://perfleet/demo-llm-8b \
  --goal cost --output-location "file://$OUT" --watch

$BIN/perfleet benchmark-job list
$BIN/perfleet operator raft list-peers

echo
echo "Results of the distributed sweep (AIPerf format): $OUT/chat-sweep"
find "$OUT/chat-sweep" -name 'profile_export_aiperf.*' | sort | sed 's/^/  /'
echo "Summary of concurrency_32 (profile_export_aiperf.csv):"
head -n 8 "$OUT/chat-sweep/concurrency_32/profile_export_aiperf.csv" | sed 's/^/  /'
echo "Reports: $OUT/chat-sweep/report.html  $OUT/pick-gpu/report.html"
echo "Ranking: $OUT/pick-gpu/recommendations.json"
