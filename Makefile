# perfleet build, test and demo targets. `make demo` and `make test` are the
# two commands a fresh machine needs; everything else is for developers.
GO        ?= go
BIN       := bin
PKGS      := ./...
export CGO_CFLAGS := -Wno-deprecated-declarations

.PHONY: all build generate checkgenerate lint test demo bench clean image e2e compose-up compose-down reliability fuzz soak

all: build

build:
	$(GO) build -o $(BIN)/perfleet ./coordinator
	$(GO) build -o $(BIN)/perfleet-agent ./agent

generate:
	$(GO) tool buf generate

# checkgenerate fails when regenerating the protobuf code changes anything.
checkgenerate: generate
	@if [ -n "$$(git status --porcelain -- pkg/pb)" ]; then \
		echo "generated code is stale; run 'make generate' and commit:"; \
		git status --porcelain -- pkg/pb; git diff --stat -- pkg/pb; exit 1; \
	fi

lint:
	$(GO) vet $(PKGS)
	$(GO) tool buf lint

test:
	$(GO) test -race -timeout 20m $(PKGS)

demo: build
	./scripts/demo.sh

# image builds the FROM-scratch container image perfleet:dev from static
# binaries built on this machine (deploy/Dockerfile says why).
image:
	deploy/build-image.sh perfleet:dev

# compose-up starts 3 coordinators, 3 agents and a simulated model server in
# containers with mutual TLS (deploy/compose/README.md); compose-down removes them.
compose-up:
	deploy/compose/up.sh

compose-down:
	deploy/compose/down.sh

# e2e runs the container end-to-end scenarios (leader kill, agent
# disconnect, full restart) against a compose cluster it starts and removes.
e2e: build
	deploy/compose/e2e.sh

# bench runs perfleet's benchmarks beside vegeta and wrk (installed when
# missing) against servers with known timing, then the coordinator's, and
# regenerates bench/RESULTS.md and bench/plots/ (under 20 minutes).
# BENCH_QUICK=1 is CI's 3-minute profile: it checks the harness and writes
# its report to a temporary directory.
bench: build
	./bench/run.sh

# reliability runs the reliability suite's full profile (faults checked with
# porcupine, recovery, a 1,000,000-job snapshot) and each fuzz target for a
# minute, and writes bench/RELIABILITY.md. make test runs the short profile.
reliability:
	./scripts/reliability.sh

# fuzz runs every fuzz target for FUZZTIME (default 10s) each.
# soak runs 3 coordinators, 10 agents and llmsim as processes for
# SOAK_DURATION (10m) with continuous benchmark jobs and a fault every minute,
# and writes bench/SOAK.md: jobs by outcome, memory, goroutines and fds.
SOAK_DURATION ?= 10m
soak: build
	$(GO) run ./bench/soak -bin $(BIN) -duration $(SOAK_DURATION) -report bench/SOAK.md

FUZZTIME ?= 10s
fuzz:
	FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh

clean:
	rm -rf $(BIN)
