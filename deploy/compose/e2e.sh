#!/usr/bin/env bash
# Container end-to-end tests of a perfleet cluster (run by .ci/run, or
# `make e2e`). It brings up the compose cluster (up.sh: 3 coordinators with
# mutual TLS, 3 agents with simulated GPUs, a simulated model server) on a
# private network and checks four scenarios with the perfleet CLI:
#   1. a workload config and a benchmark job on a registered endpoint
#      complete and leave results;
#   2. `docker kill` of the leader mid-job: the job still completes and a new
#      leader is listed;
#   3. `docker network disconnect` of an agent mid-job: with no spare agent
#      the job fails and its FailureReason names the agent;
#   4. a restart of all coordinators keeps every job and config.
# Containers, network and volumes are removed on exit, failure included
# (E2E_KEEP=1 keeps them for a look).
set -euo pipefail
cd "$(dirname "$0")"
COMPOSE_DIR=$PWD
ROOT=$(cd ../.. && pwd)
export COMPOSE_PROJECT_NAME=${COMPOSE_PROJECT_NAME:-perfleet-e2e}
export PERFLEET_NETWORK=${PERFLEET_NETWORK:-perfleet-e2e}
export PERFLEET_NET=${PERFLEET_NET:-10.213.58}
# Its own state directory, always: it is removed at the end.
export PERFLEET_STATE=$(mktemp -d "${TMPDIR:-/tmp}/perfleet-e2e.XXXXXX")
export PERFLEET_PORT_PREFIX=${E2E_PORT_PREFIX:-37}
export PERFLEET_IMAGE=${PERFLEET_IMAGE:-perfleet:e2e}
PERFLEET=$ROOT/bin/perfleet
SIM=http://$PERFLEET_NET.30:8000
start=$(date +%s)

# shellcheck source=lib.sh
. "$COMPOSE_DIR/lib.sh"
dc() { compose -f "$COMPOSE_DIR/docker-compose.yml" "$@"; }
cleanup() {
  rc=$?
  if [ "$rc" != 0 ]; then
    echo "== e2e failed (exit $rc); the last container logs:" >&2
    dc logs --tail 30 >&2 || true
  fi
  if [ "${E2E_KEEP:-}" = 1 ]; then echo "E2E_KEEP=1: left running (project $COMPOSE_PROJECT_NAME)"; return; fi
  dc down -v --remove-orphans --timeout 3 >/dev/null 2>&1 || true
  rm -rf "$PERFLEET_STATE"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "PASS: $* ($(( $(date +%s) - start )) s)"; }
pf() { "$PERFLEET" --timeout 15s "$@"; }
field() { # job field: read one top-level field of describe -o json
  pf benchmark-job describe "$1" -o json 2>/dev/null | python3 -c "import json,sys; print(json.load(sys.stdin).get('$2',''))"
}
wait_status() { # job seconds wanted...
  local job=$1 secs=$2; shift 2
  local st=
  for _ in $(seq 1 "$secs"); do
    st=$(field "$job" ai_benchmark_job_status || true)
    for w in "$@"; do [ "$st" = "$w" ] && { echo "$st"; return 0; }; done
    sleep 1
  done
  echo "$st"; return 1
}
leader() {
  pf operator raft list-peers -o json 2>/dev/null |
    python3 -c "import json,sys; print(next((p['server']['node_id'] for p in json.load(sys.stdin)['peers'] if p.get('leader')), ''))"
}
wait_leader() { # seconds; prints the leader's node ID
  local l=
  for _ in $(seq 1 "$1"); do l=$(leader || true); [ -n "$l" ] && { echo "$l"; return 0; }; sleep 1; done
  return 1
}
wait_agents() { # count seconds
  for _ in $(seq 1 "$2"); do
    [ "$(pf agent list --status alive 2>/dev/null | grep -c ' true ')" = "$1" ] && return 0; sleep 1
  done
  return 1
}

"$COMPOSE_DIR/up.sh"
# shellcheck disable=SC1091
. "$PERFLEET_STATE/env"
spec=$PERFLEET_STATE/spec
mkdir -p "$spec"

echo "== scenario 1: a workload config and a benchmark job, with the perfleet CLI"
cat >"$spec/sweep.yaml" <<'SPEC'
benchmark:
  type: aiperf
placement:
  agents: all
parameters:
  model: compose-llm
  concurrency: [1, 4]
  request_count: 24
  prompt_input_tokens_mean: 128
  output_tokens_mean: 16
  extra_inputs: "ignore_eos:true"
SPEC
pf workload-config create sweep --spec "$spec/sweep.yaml"
# The target by name: a registered endpoint with the simulator's URL and model.
pf endpoint register llmsim --url "$SIM" --api-type openai-chat --model compose-llm
pf benchmark-job create sweep-1 --workload-config sweep --endpoint llmsim --output-location file:///results
st=$(wait_status sweep-1 120 Completed Failed Stopped) || fail "sweep-1 did not finish: $st"
[ "$st" = Completed ] || fail "sweep-1 ended $st: $(field sweep-1 failure_reason)"
for lvl in 1 4; do
  f=$PERFLEET_STATE/results/sweep-1/concurrency_$lvl/profile_export_aiperf.json
  [ -s "$f" ] || fail "missing $f"
  python3 - "$f" <<'PY' || fail "bad $f"
import json, sys
d = json.load(open(sys.argv[1]))
n = d["request_count"]["avg"]
assert n > 0, "no requests"
assert d["time_to_first_token"]["p50"] > 0, "no TTFT"
PY
done
[ -s "$PERFLEET_STATE/results/sweep-1/report.html" ] || fail "missing report.html"
pf benchmark-job results sweep-1 | head -n 12
# Metrics: every coordinator and agent serves Prometheus text on :9090.
python3 - "$PERFLEET_NET" <<'PY' || fail "metrics"
import sys, urllib.request
net = sys.argv[1]
want = {".11": ["perfleet_raft_term", "perfleet_api_calls_total", "perfleet_jobs"],
        ".21": ["perfleet_agent_requests_completed_total", "perfleet_gpu_utilization_percent"]}
for host, series in want.items():
    body = urllib.request.urlopen("http://%s%s:9090/metrics" % (net, host), timeout=5).read().decode()
    for name in series:
        assert any(l.startswith(name) for l in body.splitlines()), "%s%s: no %s" % (net, host, name)
print("metrics: coordinator and agent series present")
PY
pass "scenario 1: sweep-1 Completed against the registered endpoint, with results for concurrency 1 and 4"

echo "== scenario 2: docker kill the leader mid-job"
cat >"$spec/long.yaml" <<'SPEC'
benchmark:
  type: aiperf
placement:
  agents: 2
parameters:
  model: compose-llm
  concurrency: 4
  benchmark_duration: 25
  prompt_input_tokens_mean: 128
  output_tokens_mean: 16
  extra_inputs: "ignore_eos:true"
SPEC
pf workload-config create long --spec "$spec/long.yaml"
pf benchmark-job create failover --workload-config long --endpoint "$SIM" --inference-component compose-llm \
  --output-location file:///results
wait_status failover 30 InProgress >/dev/null || fail "failover did not start"
sleep 6
old=$(wait_leader 10) || fail "no leader before the kill"
echo "killing the leader $old"
docker kill "$COMPOSE_PROJECT_NAME-$old" >/dev/null
new=$(wait_leader 30) || fail "no new leader 30 s after killing $old"
[ "$new" != "$old" ] || fail "the killed node $old is still listed as leader"
pf operator raft list-peers
st=$(wait_status failover 120 Completed Failed Stopped) || fail "failover did not finish: $st"
[ "$st" = Completed ] || fail "failover ended $st: $(field failover failure_reason)"
pf benchmark-job logs failover | grep -i -E "leader|resum" | head -n 5 || true
docker start "$COMPOSE_PROJECT_NAME-$old" >/dev/null
pass "scenario 2: leader $old killed, $new leads, the job Completed"

echo "== scenario 3: docker network disconnect an agent mid-job"
wait_agents 3 60 || fail "not all agents alive before scenario 3"
cat >"$spec/all.yaml" <<'SPEC'
benchmark:
  type: aiperf
placement:
  agents: all
parameters:
  model: compose-llm
  concurrency: 6
  benchmark_duration: 60
  prompt_input_tokens_mean: 128
  output_tokens_mean: 16
  extra_inputs: "ignore_eos:true"
SPEC
pf workload-config create all-agents --spec "$spec/all.yaml"
pf benchmark-job create agent-loss --workload-config all-agents --endpoint "$SIM" --inference-component compose-llm \
  --output-location file:///results
wait_status agent-loss 30 InProgress >/dev/null || fail "agent-loss did not start"
sleep 5
echo "disconnecting agent a3 from the network"
docker network disconnect "$PERFLEET_NETWORK" "$COMPOSE_PROJECT_NAME-a3"
st=$(wait_status agent-loss 90 Completed Failed Stopped) || fail "agent-loss did not finish: $st"
reason=$(field agent-loss failure_reason)
echo "status $st, failure reason: $reason"
[ "$st" = Failed ] || fail "agent-loss ended $st, not Failed"
case "$reason" in *a3*) ;; *) fail "the failure reason does not name agent a3: $reason" ;; esac
docker network connect --ip "$PERFLEET_NET.23" "$PERFLEET_NETWORK" "$COMPOSE_PROJECT_NAME-a3"
pass "scenario 3: agent a3 lost, the job Failed naming it"

echo "== scenario 4: restart all coordinators"
before=$PERFLEET_STATE/before.txt after=$PERFLEET_STATE/after.txt
snapshot() {
  { pf workload-config list -o json; pf benchmark-job list -o json; } |
    python3 -c '
import json, sys
dec = json.JSONDecoder(); text = sys.stdin.read(); i = 0; rows = []
while i < len(text):
    if text[i].isspace(): i += 1; continue
    obj, i = dec.raw_decode(text, i)
    for r in obj.get("ai_workload_configs", []):
        rows.append("config %s" % r["ai_workload_config_name"])
    for r in obj.get("ai_benchmark_jobs", []):
        rows.append("job %s %s" % (r["ai_benchmark_job_name"], r["ai_benchmark_job_status"]))
print("\n".join(sorted(rows)))'
}
snapshot >"$before"
[ "$(wc -l <"$before")" -ge 6 ] || { cat "$before"; fail "expected 3 configs and 3 jobs before the restart"; }
dc stop --timeout 5 c1 c2 c3 >/dev/null
dc start c1 c2 c3 >/dev/null
wait_leader 60 >/dev/null || fail "no leader after restarting all coordinators"
ok=
for _ in $(seq 1 30); do snapshot >"$after" 2>/dev/null && cmp -s "$before" "$after" && { ok=1; break; }; sleep 1; done
[ -n "$ok" ] || { diff "$before" "$after" || true; fail "state differs after the restart"; }
cat "$after"
pass "scenario 4: every config and job kept across a restart of all coordinators"
echo "e2e: all scenarios passed in $(( $(date +%s) - start )) s"
