#!/usr/bin/env bash
# Run every Go fuzz target for a bounded time each (FUZZTIME, default 10s).
# CI runs the short form; `make reliability` runs each for a minute and
# records the figures. With REPORT=FILE, a markdown table is appended there.
set -euo pipefail
cd "$(dirname "$0")/.."
export CGO_CFLAGS="${CGO_CFLAGS:--Wno-deprecated-declarations}"
FUZZTIME="${FUZZTIME:-10s}"
targets=(
  "./coordinator/fsm FuzzApply"                 # FSM Apply on random command bytes
  "./pkg/workload FuzzParse"                    # workload spec parser (JSON and YAML)
  "./agent/protocol FuzzSSEReader"              # SSE parser
  "./agent/protocol FuzzFastChunk"              # OpenAI stream chunk decoder
  "./pkg/metrics FuzzUnmarshalWindow"           # metric window wire decoding
  "./coordinator/runner FuzzAgentMessage"       # agent control messages into a running shard
  "./coordinator/gateway FuzzDecodeRequest"     # JSON gateway request decoding
)
rows=()
fail=0
for t in "${targets[@]}"; do
  read -r pkg name <<<"$t"
  echo "== fuzz $name ($pkg) for $FUZZTIME"
  log=$(mktemp)
  # Minimizing each new interesting input is bounded too, so a run ends on
  # time instead of being cut off mid-minimization.
  if go test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" -fuzzminimizetime 100x "$pkg" >"$log" 2>&1; then
    res=pass
  else
    res=FAIL
    fail=1
    cat "$log"
  fi
  last=$(grep '^fuzz: elapsed' "$log" | tail -1 || true)
  execs=$(sed -n 's/.*execs: \([0-9]*\).*/\1/p' <<<"$last")
  interesting=$(sed -n 's/.*total: \([0-9]*\)).*/\1/p' <<<"$last")
  echo "   $res: ${execs:-?} execs, corpus ${interesting:-?}"
  rows+=("| $name | \`$pkg\` | $FUZZTIME | ${execs:-?} | ${interesting:-?} | $res |")
  rm -f "$log"
done
if [ -n "${REPORT:-}" ]; then
  {
    echo
    echo "## Fuzzing"
    echo
    echo "Command: \`FUZZTIME=$FUZZTIME scripts/fuzz.sh\` (CI runs each target for 10s)."
    echo
    echo "| Target | Package | Time | Executions | Corpus (seeds + new) | Result |"
    echo "|---|---|---|---|---|---|"
    printf '%s\n' "${rows[@]}"
  } >>"$REPORT"
fi
exit $fail
