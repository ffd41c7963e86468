# capilab — the familiar SCS make targets, backed by Mage targets in Go.
#
# Every target runs the Mage target behind it (`go run mage.go <ns:target>`,
# built once into bin/mage): nothing is installed
# globally, a machine needs only Go. Variables given on the command line
# (make fullclean PREFIX=lab1 CLUSTERS=a,b DRY_RUN=1) reach the settings model
# through the environment; `make config` shows what they resolved to.
#
# A line "## target: doc" documents a target for `make help`.

GO   ?= go
# `go run mage.go` is the zero-install way; make builds the same bootstrap
# once into bin/ so target exit codes (2 = bad input, 3 = leaks found) and
# output reach make unchanged. The Go build cache makes rebuilding cheap.
MAGE ?= bin/mage

.DEFAULT_GOAL := help

bin/mage: mage.go go.mod go.sum
	@$(GO) build -o $@ mage.go
.PHONY: help create create_cluster delete_cluster get-kubeconfig check check-quick \
	check-conformance check-storage check-csi clean fullclean leakcheck image appcred \
	config test test-integration bench lint devcloud-up devcloud-down kind-image

## help: List the make targets and the Mage targets behind them.
help: bin/mage
	@echo "make targets (variables: make <target> VAR=value, see 'make config'):"
	@sed -n 's/^## \([a-z_-]*\): \(.*\)/\1|\2/p' $(MAKEFILE_LIST) | awk -F'|' '{printf "  %-18s %s\n", $$1, $$2}'
	@echo
	@$(MAGE) -l

## create: Create the kind management cluster, install Cluster API and the first workload cluster.
create: bin/mage
	$(MAGE) mgmt:create

## create_cluster: Create or update workload cluster CLUSTER.
create_cluster: bin/mage
	$(MAGE) cluster:create

## delete_cluster: Delete workload cluster CLUSTER and everything it owns.
delete_cluster: bin/mage
	$(MAGE) cluster:delete

## get-kubeconfig: Write the kubeconfig of the management cluster and of CLUSTER.
get-kubeconfig: bin/mage
	$(MAGE) cluster:kubeconfig

## check: Run sonobuoy against CLUSTER in mode SONOMODE.
check: bin/mage
	$(MAGE) check:run

## check-quick: Run the sonobuoy quick check against CLUSTER.
check-quick: bin/mage
	$(MAGE) check:quick

## check-conformance: Run certified-conformance against CLUSTER.
check-conformance: bin/mage
	$(MAGE) check:conformance

## check-storage: Run the storage e2e tests (non-disruptive) against CLUSTER.
check-storage: bin/mage
	$(MAGE) check:storage

## check-csi: Run the CSI e2e tests (non-disruptive) against CLUSTER.
check-csi: bin/mage
	$(MAGE) check:csi

## clean: Delete every workload cluster through the management cluster, then the management cluster.
clean: bin/mage
	$(MAGE) clean:all

## fullclean: Delete every leaked OpenStack resource of the lab (DRY_RUN=1, CLUSTERS=a,b, OLDER_THAN=24h).
fullclean: bin/mage
	$(MAGE) clean:full

## leakcheck: List owned OpenStack resources that still exist; fail if there are any.
leakcheck: bin/mage
	$(MAGE) clean:check

## image: Register the CAPI node image for KUBERNETES_VERSION in Glance.
image: bin/mage
	$(MAGE) image:register

## appcred: Create the lab's application credential and CLUSTER's (APPCRED_SCOPE=lab: the lab's only).
appcred: bin/mage
	$(MAGE) appcred:create

## config: Print the effective settings and where each value came from (secrets redacted).
config: bin/mage
	$(MAGE) config:show

## devcloud-up: Install (once) and start devcloud, a local OpenStack for tests.
devcloud-up: bin/mage
	$(MAGE) devcloud:up

## devcloud-down: Stop every devcloud process.
devcloud-down: bin/mage
	$(MAGE) devcloud:down

## kind-image: Build the kind node image locally (no registry needed); cached.
kind-image: bin/mage
	$(MAGE) kind:image

## test: Run the unit tests (hermetic: no network, no root).
test:
	$(GO) test -race ./...

## test-integration: Start devcloud (and a Docker engine) and run the integration and e2e tiers.
test-integration:
	scripts/test-integration.sh

## bench: Benchmarks on devcloud, as ratios against their baselines: image registration vs the openstack CLI, fullclean vs SCS cleanup.sh.
bench:
	$(GO) test -tags integration -run '^$$' -bench . -benchtime 1x -timeout 4h ./tests/integration/image ./tests/integration/cleanup

## lint: gofmt, go vet (including the magefiles).
lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	$(GO) vet -tags mage ./magefiles
