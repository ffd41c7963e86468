# capilab — the familiar SCS make targets, backed by Mage targets in Go.
#
# Every target runs `go run mage.go <namespace:target>`: nothing is installed
# globally, a machine needs only Go. Variables given on the command line
# (make fullclean PREFIX=lab1 CLUSTERS=a,b DRY_RUN=1) reach the settings model
# through the environment; `make config` shows what they resolved to.
#
# A line "## target: doc" documents a target for `make help`.

MAGE ?= go run mage.go
GO   ?= go

.DEFAULT_GOAL := help
.PHONY: help create create_cluster delete_cluster get-kubeconfig check check-quick \
	check-conformance check-storage check-csi clean fullclean leakcheck image appcred \
	config test test-integration bench lint devcloud-up devcloud-down kind-image

## help: List the make targets and the Mage targets behind them.
help:
	@echo "make targets (variables: make <target> VAR=value, see 'make config'):"
	@awk -F': ' '/^## [a-z_-]+: /{sub(/^## /,"",$$1); printf "  %-18s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo
	@$(MAGE) -l

## create: Create the kind management cluster, install Cluster API and the first workload cluster.
create:
	$(MAGE) mgmt:create

## create_cluster: Create or update workload cluster CLUSTER.
create_cluster:
	$(MAGE) cluster:create

## delete_cluster: Delete workload cluster CLUSTER and everything it owns.
delete_cluster:
	$(MAGE) cluster:delete

## get-kubeconfig: Write the kubeconfig of the management cluster and of CLUSTER.
get-kubeconfig:
	$(MAGE) cluster:kubeconfig

## check: Run sonobuoy against CLUSTER in mode SONOMODE.
check:
	$(MAGE) check:run

## check-quick: Run the sonobuoy quick check against CLUSTER.
check-quick:
	$(MAGE) check:quick

## check-conformance: Run certified-conformance against CLUSTER.
check-conformance:
	$(MAGE) check:conformance

## check-storage: Run the storage e2e tests (non-disruptive) against CLUSTER.
check-storage:
	$(MAGE) check:storage

## check-csi: Run the CSI e2e tests (non-disruptive) against CLUSTER.
check-csi:
	$(MAGE) check:csi

## clean: Delete every workload cluster through the management cluster, then the management cluster.
clean:
	$(MAGE) clean:all

## fullclean: Delete every leaked OpenStack resource of the lab (DRY_RUN=1, CLUSTERS=a,b, OLDER_THAN=24h).
fullclean:
	$(MAGE) clean:full

## leakcheck: List owned OpenStack resources that still exist; fail if there are any.
leakcheck:
	$(MAGE) clean:check

## image: Register the CAPI node image for KUBERNETES_VERSION in Glance.
image:
	$(MAGE) image:register

## appcred: Create the lab's application credential (and CLUSTER's, if set).
appcred:
	$(MAGE) appcred:create

## config: Print the effective settings and where each value came from (secrets redacted).
config:
	$(MAGE) config:show

## devcloud-up: Install (once) and start devcloud, a local OpenStack for tests.
devcloud-up:
	$(MAGE) devcloud:up

## devcloud-down: Stop every devcloud process.
devcloud-down:
	$(MAGE) devcloud:down

## kind-image: Build the kind node image locally (no registry needed); cached.
kind-image:
	$(MAGE) kind:image

## test: Run the unit tests (hermetic: no network, no root).
test:
	$(GO) test -race ./...

## test-integration: Start devcloud (and a Docker engine) and run the integration and e2e tiers.
test-integration:
	scripts/test-integration.sh

## bench: Run the benchmarks against devcloud and print ratios against their baselines.
bench:
	$(MAGE) bench:all

## lint: gofmt, go vet (including the magefiles).
lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	$(GO) vet -tags mage ./magefiles
