#!/usr/bin/env bash
# make bench: run the benchmark harnesses and print their figures. Record the
# figures, with the commands, in bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== date: $(date -u +%FT%TZ)  cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)  cores: $(nproc)  kernel: $(uname -r)"
echo "== coordinator: committed creates (64 clients, 3 processes) and kill -9 failover"
go run ./bench/raftbench -bin bin/perfleet -clients 64 -duration "${BENCH_DURATION:-10s}" -kills 3
echo "== coordinator: the same with clients spread over all nodes (followers forward)"
go run ./bench/raftbench -bin bin/perfleet -clients 64 -duration "${BENCH_DURATION:-10s}" -kills 0 -target all
