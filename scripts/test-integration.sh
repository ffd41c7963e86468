#!/usr/bin/env bash
# make test-integration: the integration tier against devcloud, then the e2e tier on kind.
#
#   1. devcloud    a Docker engine (scripts/docker-engine.sh), then install (first time on a machine)
#                  and start devcloud, unless it already runs; with the engine up, devcloud's data
#                  plane runs too
#   2. node image  the kind node image (built once, cached): the data-plane tests boot servers into it;
#                  make mirror: OCCM and Cinder CSI images (cached) pushed into devcloud's mirror
#   3. integration go test -tags integration: every integration package under tests/, in two
#                  parallel streams (the data-plane tests restart the agent, so the tests that drive
#                  Cluster API through it run after them, in their own stream)
#   4. e2e         scripts/e2e.sh: the e2e tier on kind, after the api stream of 3 and while its
#                  lab stream still runs
#   5. teardown    devcloud keeps running unless DEVCLOUD_STOP=1
#
# Environment:
#   DEVCLOUD_STOP=1            stop devcloud at the end (default: leave it running for the next run)
#   INTEGRATION_TIMEOUT=60m    go test -timeout for each integration stream
#   INTEGRATION_RUN=regexp     go test -run filter (default: all)
#   E2E=0                      skip the e2e tier (it is run by default)
#   GO=go                      the go command
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
T0=$(date +%s)
section() { echo "=== test-integration: $* ($(($(date +%s) - T0))s)"; }

status=0
teardown() { # runs on every exit; a failed stop fails the run
  if [[ ${DEVCLOUD_STOP:-0} == 1 ]]; then
    section "teardown: stopping devcloud (DEVCLOUD_STOP=1)"
    scripts/devcloud/devcloud.sh stop || exit 1
  else
    section "teardown: devcloud left running (DEVCLOUD_STOP=1 stops it); 'make devcloud-down' stops it later"
  fi
}
trap teardown EXIT

# ---- 1. devcloud ------------------------------------------------------------------------------
section "docker engine (devcloud's data plane and the kind tiers need it)"
scripts/docker-engine.sh start
section "devcloud: install (no-op when installed) and start (no-op when running)"
scripts/devcloud/devcloud.sh install
scripts/devcloud/devcloud.sh start
scripts/devcloud/devcloud.sh status || echo "=== test-integration: devcloud status reports a problem (above); the tests will show what it breaks"

# ---- 2. node image ----------------------------------------------------------------------------
section "node image (built when the KIND_NODE_IMAGE rule picks the local build; seconds when current)"
choice=$(nice -n 10 "$GO" run mage.go kind:nodeImage)
echo "node image: $choice"
if [[ $(cut -f2 <<<"$choice") == local ]]; then
  nice -n 10 "$GO" run mage.go kind:image
fi
section "registry mirror: build OCCM and Cinder CSI (cached), push the images capilab built (make mirror)"
nice -n 10 "$GO" run mage.go mirror:push

# ---- 3. integration tier: every package under tests/ with integration-tagged tests ----------------
# qemu-img (raw conversion in the image tests) comes from Debian's qemu-utils.
if ! command -v qemu-img >/dev/null; then
  section "installing qemu-utils (qemu-img)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-utils >/dev/null
fi
# The nightly test looks at its HTML report in headless Chromium (Debian's chromium).
if ! command -v chromium >/dev/null; then
  section "installing chromium (the nightly report is rendered headless)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
section "integration: go test -tags integration ./tests/..."
# Debian's tools first (the openstack CLI), Go where .ci/run put it.
export PATH="/usr/sbin:/usr/bin:/sbin:/bin:$(dirname "$(command -v "$GO")")"
args=(-tags integration -count=1 -timeout "${INTEGRATION_TIMEOUT:-60m}")
[[ -n ${INTEGRATION_RUN:-} ]] && args+=(-run "$INTEGRATION_RUN")
# Two streams in parallel. The data-plane tests stop and restart the agent that forwards
# devcloud's APIs to containers, so nothing that drives Cluster API through it (management
# cluster, workload clusters, the nightly run) may run at the same time: stream "lab" runs
# them one after the other. Stream "api" is everything that talks to devcloud on 127.0.0.1.
lab_pkgs=(./tests/integration/dataplane ./tests/integration/mgmt ./tests/integration/workload ./tests/integration/nightly)
mapfile -t api_pkgs < <("$GO" list -tags integration ./tests/... | grep -v -e '/tests/integration/dataplane$' \
  -e '/tests/integration/mgmt$' -e '/tests/integration/workload$' -e '/tests/integration/nightly$' -e '/tests/e2e')
# Every stream's output is also kept in $LOGS, so the end of the run can say which packages and
# tests failed (CI often shows only the last lines).
LOGS=${ARTIFACTS:-$PWD/artifacts}/test-integration
mkdir -p "$LOGS"
rm -f "$LOGS"/*.log
stream() { # stream NAME PACKAGES...: go test, each line prefixed with [NAME]
  local name=$1; shift
  local t; t=$(date +%s)
  "$GO" test "${args[@]}" "$@" 2>&1 | sed -u "s/^/[$name] /" | tee -a "$LOGS/$name.log"
  local rc=${PIPESTATUS[0]}
  echo "=== test-integration: stream $name done in $(($(date +%s) - t))s (exit $rc)"
  return "$rc"
}
# The e2e tier (kind clusters only, no devcloud) follows the api stream, while the lab stream,
# the longest, still runs.
api_then_e2e() {
  local rc=0
  stream api "${api_pkgs[@]}" || rc=$?
  if [[ ${E2E:-1} != 0 ]]; then
    echo "=== test-integration: e2e: scripts/e2e.sh (Docker engine, kind node image, e2e tier) ($(($(date +%s) - T0))s)"
    local e2e_rc=0
    scripts/e2e.sh 2>&1 | sed -u "s/^/[e2e] /" | tee -a "$LOGS/e2e.log" || e2e_rc=$?
    ((rc)) || rc=$e2e_rc
  else
    echo "=== test-integration: e2e: skipped (E2E=0)"
  fi
  return "$rc"
}
api_then_e2e & api=$!
lab_rc=0
stream lab -p 1 "${lab_pkgs[0]}" || lab_rc=$?
stream lab -p 3 "${lab_pkgs[@]:1}" || lab_rc=$?
wait "$api" || status=$?
((lab_rc == 0)) || status=$lab_rc

# What CI's tail must show, most important last: the measured figures, every package's result
# and time, every failed test.
section "summary: figures (TIMING lines of the tests)"
grep -h -o -E 'TIMING .*' "$LOGS"/*.log | cut -c1-160 | awk '!seen[$0]++' || true
section "summary: packages"
grep -h -E '^\[[a-z0-9]+\] (ok|FAIL)[[:space:]]' "$LOGS"/*.log || true
if grep -q -h -E '^\[[a-z0-9]+\] *--- FAIL' "$LOGS"/*.log 2>/dev/null; then
  section "summary: failed tests, each with the lines it logged (first 2 and last 6; TIMING lines and command output left out, but for its Error: lines)"
  # go test without -v prints a failed test's lines under its "--- FAIL" line: each line it
  # logged indented by 4 (name_test.go:N: ...), their continuation lines by 8. A Fatal is the
  # last of them, an Error may be anywhere.
  awk '
    function flush() { if (name != "") { print name; for (i = 1; i <= n; i++) if (i <= 2 || i > n - 6) print "    " substr(line[i], 1, 220); else if (i == 3) print "    ..." } name = ""; n = 0 }
    /^\[[a-z0-9]+\] *--- FAIL/ { flush(); name = $0; next }
    name != "" && /^\[[a-z0-9]+\]     / {
      if ($0 ~ /^\[[a-z0-9]+\] +[^ ]+_test\.go:[0-9]+: / && $0 !~ /TIMING/ || $0 ~ /^\[[a-z0-9]+\] +Error: /) { sub(/^\[[a-z0-9]+\] +/, ""); line[++n] = $0 }
      next }
    { flush() }
    END { flush() }' "$LOGS"/*.log
fi
section "done (exit $status)"
exit $status
