# capilab — the familiar SCS make targets, backed by Mage targets in Go.
#
# Every target runs the Mage target behind it through bin/mage, the Mage
# bootstrap (mage.go) built with the Go toolchain: nothing is installed
# globally, a machine needs only Go. Variables given on the command line
# (make fullclean PREFIX=lab1 CLUSTERS=a,b DRY_RUN=1) reach the settings model
# through the environment; `make config` shows what they resolved to.
#
# Exit codes: make itself exits 2 whenever a recipe fails, whatever the
# target's own code was (GNU make's rule); its message "make: *** [...]
# Error N" shows the target's code N. bin/mage <target> exits with the
# target's own code (0 ok, 1 failed, 2 bad input, 3 owned resources remain,
# 4 lab busy): CI runs `make bin/mage` once, then bin/mage.
#
# A line "## target: doc" documents a target for `make help`.

GO   ?= go
MAGE ?= bin/mage

.DEFAULT_GOAL := help

# Every goal of this Makefile. Goals are checked before anything runs: make
# runs goals in order, so `make fullclean forceclean` would otherwise run a
# real fullclean before complaining about the second word.
GOALS := help create create_cluster delete_cluster get-kubeconfig ssh check check-quick \
	check-conformance check-storage check-csi clean fullclean leakcheck image appcred \
	appcred-delete appcred-list config config-check mgmt-delete mgmt-status nightly devcloud-up devcloud-down \
	kind-image mirror test test-integration bench lint bin/mage

# SCS make targets capilab does not have, and what replaces each.
scs.init       := capilab needs no init: make config-check validates the settings and authenticates with OS_CLOUD; with MGMT_MODE=remote, make create runs OpenTofu's init itself (state in state/terraform, workspace PREFIX)
scs.dry-run    := destructive targets take DRY_RUN=1 (make fullclean DRY_RUN=1, make appcred-delete DRY_RUN=1); make create MGMT_MODE=remote DRY_RUN=1 plans the management node without applying
scs.show       := make config shows the settings, make leakcheck LEAK_SCOPE=lab lists the lab's OpenStack resources; with MGMT_MODE=remote the OpenTofu state is state/terraform/terraform.tfstate.d/PREFIX
scs.list       := $(scs.show)
scs.attach     := capilab never adopts resources it did not make: make create MGMT_MODE=remote refuses a management node of this PREFIX that its state does not track
scs.detach     := capilab's OpenTofu state (MGMT_MODE=remote) is its own record of the management node; make clean MGMT_MODE=remote destroys what it tracks
scs.state-push := $(scs.detach)
scs.gitchk     := with MGMT_MODE=remote, make create ships this checkout's HEAD commit to the node and warns about uncommitted changes, which do not reach it
scs.login      := make ssh (MGMT_MODE=remote); with a local management cluster: kubectl with the kubeconfig of make get-kubeconfig
scs.k9s        := $(scs.login)
scs.console    := $(scs.login)
scs.log        := make create MGMT_MODE=remote follows the node's cloud-init and make create itself; make ssh to look further
scs.watch      := $(scs.log)
scs.openstack  := run the openstack CLI directly: OS_CLOUD=<cloud> openstack …, or with the lab's credential OS_CLIENT_CONFIG_FILE=state/clouds.yaml OS_CLOUD=<prefix> openstack …
scs.deploy     := make create installs Cluster API on the management cluster
scs.forceclean := capilab has no force options: make fullclean deletes everything the lab can prove is its own, never a project's other volumes or floating IPs
scs.purge      := capilab never wipes a project: make fullclean deletes what the lab owns (make mgmt-delete the management cluster)
scs.deploy-cso := Cluster Stacks (cso, cspo) are not part of capilab
scs.deploy-cspo := $(scs.deploy-cso)

bad_goals := $(filter-out $(GOALS),$(MAKECMDGOALS))
goal_line = make $(1): $(or $(scs.$(1)),no such target (make help lists them))
ifneq ($(words $(bad_goals)),0)
ifeq ($(words $(bad_goals)),1)
$(error $(call goal_line,$(bad_goals)); nothing was run)
else
$(foreach g,$(bad_goals),$(warning $(call goal_line,$(g))))
$(error $(words $(bad_goals)) unknown targets; nothing was run)
endif
endif

# The names of the variables given on make's command line, minus the
# Makefile's own: bin/mage refuses a name capilab does not read, so that
# `make fullclean DRYRUN=1` (a typo) runs nothing instead of a real fullclean.
export CAPILAB_MAKE_VARS := $(filter-out GO MAGE,$(foreach v,$(.VARIABLES),$(if $(findstring command line,$(origin $(v))),$(v))))

# bin/mage is rebuilt on every use: go build is a no-op when it is current
# (0.1-0.2 s), and a stale bootstrap would check settings against an old list.
bin/mage:
	@$(GO) build -o $@ mage.go
.PHONY: $(GOALS)

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

## get-kubeconfig: Write the kubeconfig of CLUSTER (0600) into the state directory.
get-kubeconfig: bin/mage
	$(MAGE) cluster:kubeconfig

## ssh: Open a shell on the remote management node (MGMT_MODE=remote).
ssh: bin/mage
	$(MAGE) mgmt:ssh

## check: Run sonobuoy against CLUSTER (or KUBECONFIG) in mode SONOMODE; report under artifacts/check/.
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

## check-csi: Run the external storage e2e suite against the Cinder CSI driver of CLUSTER (non-disruptive).
check-csi: bin/mage
	$(MAGE) check:csi

## mgmt-delete: Delete the kind management cluster.
mgmt-delete: bin/mage
	$(MAGE) mgmt:delete

## mgmt-status: Show the management cluster's providers, versions, controller health and source.
mgmt-status: bin/mage
	$(MAGE) mgmt:status

## nightly: Create, check, always delete and clean up, assert no leaks; report in ARTIFACTS_DIR/nightly/ (exit 0 ok, 1 infrastructure, 3 leaks, 5 tests failed).
nightly: bin/mage
	$(MAGE) nightly:run

## clean: Delete every workload cluster through the management cluster, then the management cluster.
clean: bin/mage
	$(MAGE) clean:all

## fullclean: Delete every leaked OpenStack resource of the lab (DRY_RUN=1, CLUSTERS=a,b, OLDER_THAN=24h).
fullclean: bin/mage
	$(MAGE) clean:full

## leakcheck: List leaks — owned OpenStack resources that outlive their cluster — and fail if there are any (LEAK_SCOPE=lab: everything the lab owns).
leakcheck: bin/mage
	$(MAGE) clean:check

## image: Register the CAPI node image for KUBERNETES_VERSION in Glance.
image: bin/mage
	$(MAGE) image:register

## appcred: Create the lab's application credential and CLUSTER's (APPCRED_SCOPE=lab: the lab's only).
appcred: bin/mage
	$(MAGE) appcred:create

## appcred-delete: Revoke CLUSTER's application credential (APPCRED_SCOPE=lab: the lab's) and remove its local entries; DRY_RUN=1 only says what it would do.
appcred-delete: bin/mage
	$(MAGE) appcred:delete

## appcred-list: List the lab's application credentials and whether each secret is known locally.
appcred-list: bin/mage
	$(MAGE) appcred:list

## config: Print the effective settings and where each value came from (secrets redacted).
config: bin/mage
	$(MAGE) config:show

## config-check: Validate the settings and log in to the cloud (OS_CLOUD) afresh, listing its services.
config-check: bin/mage
	$(MAGE) config:check

## devcloud-up: Install (once) and start devcloud, a local OpenStack for tests.
devcloud-up: bin/mage
	$(MAGE) devcloud:up

## devcloud-down: Stop every devcloud process.
devcloud-down: bin/mage
	$(MAGE) devcloud:down

## kind-image: Build the kind node image locally (no registry needed); cached.
kind-image: bin/mage
	$(MAGE) kind:image

## mirror: Build OCCM and Cinder CSI and push every image capilab built into devcloud's registry mirror.
mirror: bin/mage
	$(MAGE) mirror:push

## test: Run the unit tests (hermetic: no network, no root).
test:
	$(GO) test -race ./...

## test-integration: Start devcloud (and a Docker engine) and run the integration and e2e tiers.
test-integration:
	scripts/test-integration.sh

## bench: Benchmarks on devcloud, as ratios against their baselines: image registration vs the openstack CLI, fullclean vs SCS cleanup.sh; and the cold/warm build of OpenTofu and its OpenStack provider; three workload clusters created in parallel vs one (local lab).
bench:
	$(GO) test -tags integration -run '^$$' -bench . -benchtime 1x -timeout 4h ./tests/integration/image ./tests/integration/cleanup ./tests/integration/remote ./tests/integration/workload

## lint: gofmt, go vet (including the magefiles and the tagged test tiers).
lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	$(GO) vet -tags mage ./magefiles
	$(GO) vet -tags integration ./tests/...
	$(GO) vet -tags e2e ./tests/...
