# statelab — common tasks. `make test` is the whole suite; .ci/run calls it.
GO ?= go

.PHONY: all build test bench fmt

all: build

build:
	$(GO) build -o bin/statelab ./cmd/statelab

# test: vet, then every Go test with the race detector. Store tests need
# STATELAB_TEST_REDIS / STATELAB_TEST_POSTGRES (see README); without them they
# skip, and with STATELAB_REQUIRE_SERVICES=1 they fail instead. Then the
# deployment files: deploy/validate is a module of its own (so k8s.io/api and
# compose-go stay out of statelab's dependencies; ./... does not descend into
# it); its Kubernetes checks skip, saying why, where kubectl is missing.
# The balancer's behaviour tests run a second time on the epoll engine.
test:
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 15m ./...
	STATELAB_LB_ENGINE=epoll $(GO) test -race -count=1 -timeout 5m ./balancer/
	cd deploy/validate && $(GO) vet ./... && $(GO) test -count=1 -timeout 5m ./...

# bench: the Go benchmarks. See docs/benchmarks.md for the wrk comparisons.
bench:
	$(GO) test -run '^$$' -bench . -benchmem -timeout 30m ./...

fmt:
	gofmt -w $$(git ls-files '*.go')
