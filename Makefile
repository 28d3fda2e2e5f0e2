# Build and test liberator. `make test` is what CI runs (.ci/run).
#
# Tests that start real servers (PostgreSQL, MariaDB) live in integration/ and
# internal/harness/; `make unit` runs every other package, `make integration`
# runs those two.

GO          ?= go
# staticcheck 2026.2.2; pinned because the module proxy here refuses @latest
# for some modules, and so that a new release cannot break the build.
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

# quickstart: which source database the demo uses (postgres or mariadb).
SOURCE ?= postgres
# bench: how many rows to load; empty leaves the benchmark's own default.
ROWS   ?=

MODULE           := $(shell $(GO) list -m)
INTEGRATION_DIRS := integration internal/harness
# Only directories that exist: `go test ./missing/...` is an error.
INTEGRATION_PKGS := $(addprefix ./,$(addsuffix /...,$(wildcard $(INTEGRATION_DIRS))))
UNIT_EXCLUDE     := ^$(MODULE)/($(subst $() ,|,$(INTEGRATION_DIRS)))(/|$$)

.PHONY: build deps vet unit integration soak test quickstart bench

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w -X main.version=$(VERSION)' -o bin/liberator ./cmd/liberator

vet:
	@echo 'gofmt -l .'; \
	unformatted="$$(gofmt -l .)"; \
	if [ -n "$$unformatted" ]; then \
		echo "these files are not gofmt-formatted (run gofmt -w on them):"; \
		echo "$$unformatted"; \
		exit 1; \
	fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

unit:
	$(GO) test -race -count=1 $$($(GO) list ./... | grep -Ev '$(UNIT_EXCLUDE)')

integration:
	$(GO) test -count=1 -timeout 25m $(INTEGRATION_PKGS)

# soak: only the soak, exactly-once soak and failover tests, at their long
# size (90 s of workload and 50 kills per source; 30 under delivery:
# exactly_once; 10 failovers of ha.mode standby per source under each
# delivery); `make integration` runs their short size.
soak:
	LIBERATOR_SOAK=long $(GO) test -count=1 -timeout 40m -run '^TestIntegration(Soak|ExactlyOnceSoak|Failover|FailoverExactlyOnce)$$' -v ./integration/

deps:
	bash scripts/install-deps.sh

test: deps vet unit integration

quickstart:
	SOURCE=$(SOURCE) bash scripts/quickstart.sh

bench:
	$(if $(ROWS),ROWS=$(ROWS) )$(GO) run ./bench
