# perfleet build, test and demo targets. `make demo` and `make test` are the
# two commands a fresh machine needs; everything else is for developers.
GO        ?= go
BIN       := bin
PKGS      := ./...
export CGO_CFLAGS := -Wno-deprecated-declarations

.PHONY: all build generate checkgenerate lint test demo bench clean

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

bench: build
	./bench/run.sh

clean:
	rm -rf $(BIN)
