#!/usr/bin/env bash
# scripts/e2e.sh — the e2e tier end to end on a fresh machine:
#   1. a Docker engine (scripts/docker-engine.sh start: installs and starts one if needed)
#   2. the kind node image (make kind-image: builds it, or finds it current in seconds)
#   3. go test -tags e2e ./tests/e2e/... (1-node and 2-node kind clusters; the
#      check targets on an offline kind cluster: tests/e2e/conformance),
#      one package at a time (two clusters' worth of memory at most)
# and prints how long each phase took. Leaves the engine and the image in
# place; the tests delete their clusters. Artifacts (test output, cluster
# logs) go to $ARTIFACTS (default ./artifacts).
#
# Environment: KIND_NODE_IMAGE (node image; default: the KIND_NODE_IMAGE rule
# of internal/kindimage — upstream when its registry resolves, else the local
# build), E2E_TIMEOUT (go test -timeout per package, default 60m), E2E_RUN (go test -run).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export ARTIFACTS=${ARTIFACTS:-$ROOT/artifacts}
mkdir -p "$ARTIFACTS/e2e"
export PATH="/usr/local/go/bin:$PATH"

T0=$SECONDS
TIMINGS=()
phase_start() { PHASE=$1; PT=$SECONDS; echo "=== e2e: $PHASE (+$((SECONDS - T0))s)"; }
phase_end() {
	TIMINGS+=("$(printf '%-28s %5ds' "$PHASE" "$((SECONDS - PT))")")
	echo "=== e2e: $PHASE done in $((SECONDS - PT))s"
}
summary() {
	local rc=$?
	echo "=== e2e: timings"
	local l
	for l in "${TIMINGS[@]}"; do echo "  $l"; done
	printf '  %-28s %5ds\n' total "$((SECONDS - T0))"
	((rc == 0)) || echo "=== e2e: FAILED (exit $rc) in phase ${PHASE:-?}"
}
trap summary EXIT

phase_start "docker engine"
scripts/docker-engine.sh start
phase_end

phase_start "kernel limits for kind"
# Every kind node's kube-proxy and kubelet take inotify instances, counted per
# user on the host (root's are shared by every container): with the default of
# 128 a machine running a few clusters runs out, and a new cluster's kube-proxy
# crash-loops ("fsnotify watcher init: too many open files") so no Service
# answers. Raised as kind recommends; never lowered.
raise_limit() {
	local key=$1 want=$2 cur
	cur=$(sysctl -n "$key")
	if ((cur < want)); then
		sysctl -qw "$key=$want" && echo "$key: $cur -> $want" || echo "WARNING: cannot raise $key ($cur, kind wants $want)"
	fi
}
raise_limit fs.inotify.max_user_instances 512
raise_limit fs.inotify.max_user_watches 524288
phase_end

phase_start "stale e2e clusters"
# containers of earlier, interrupted runs (cluster names capilab-e2e-*)
mapfile -t stale < <(docker ps -a --filter label=io.x-k8s.kind.cluster \
	--format '{{.Label "io.x-k8s.kind.cluster"}} {{.Names}}' | awk '$1 ~ /^capilab-e2e-/ {print $2}')
if ((${#stale[@]})); then
	echo "removing ${#stale[@]} container(s) left by an earlier run: ${stale[*]}"
	docker rm -f -v "${stale[@]}" >/dev/null
fi
phase_end

phase_start "node image"
# Build only when the KIND_NODE_IMAGE rule picks the locally built image.
choice=$(nice -n 10 go run mage.go kind:nodeImage)
echo "node image: $choice"
if [[ $(cut -f2 <<<"$choice") == local ]]; then
	nice -n 10 go run mage.go kind:image
else
	echo "not the local image: kind pulls it"
fi
phase_end

phase_start "go test e2e"
set +e
go test -tags e2e -count=1 -v -p 1 -timeout "${E2E_TIMEOUT:-60m}" ${E2E_RUN:+-run "$E2E_RUN"} ./tests/e2e/... 2>&1 |
	tee "$ARTIFACTS/e2e/go-test.log"
rc=${PIPESTATUS[0]}
set -e
grep -h 'TIMING' "$ARTIFACTS/e2e/go-test.log" | sed 's/^ *//' || true
log=$ARTIFACTS/e2e/go-test.log
echo "e2e tests: $(grep -c '^--- PASS: Test' "$log") passed, $(grep -c '^--- FAIL: Test' "$log") failed (with subtests: $(grep -c -- '--- PASS' "$log") passed, $(grep -c -- '--- FAIL' "$log") failed)"
grep -- '--- FAIL' "$log" | sed 's/^ */failed: /' || true
phase_end
exit "$rc"
