#!/usr/bin/env bash
# make reliability: the reliability suite's full profile (coordinator/
# reliability with PERFLEET_RELIABILITY=full), then every fuzz target for a
# minute. Writes bench/RELIABILITY.md. CI runs the short profile of the same
# tests in `make test` and each fuzz target for 10 s.
set -euo pipefail
cd "$(dirname "$0")/.."
export CGO_CFLAGS="${CGO_CFLAGS:--Wno-deprecated-declarations}"
out="${RELIABILITY_REPORT:-bench/RELIABILITY.md}"
start=$(date +%s)
status=0
PERFLEET_RELIABILITY=full PERFLEET_RELIABILITY_REPORT="$PWD/$out" \
  go test -count=1 -timeout 30m -v ./coordinator/reliability/ 2>&1 | grep -E '^(=== RUN|--- |PASS|FAIL|ok|\s+\S+_test.go)' || status=1
REPORT="$out" FUZZTIME="${FUZZTIME:-60s}" scripts/fuzz.sh || status=1
echo
echo "wrote $out in $(( $(date +%s) - start )) s"
exit $status
