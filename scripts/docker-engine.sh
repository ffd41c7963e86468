#!/usr/bin/env bash
# docker-engine.sh start|stop|status — a Docker engine for kind on a machine
# without systemd (CI, dev VMs).
#
#   start   install Debian's docker.io if dockerd is missing, start dockerd in the
#           background unless an engine already answers, wait (bounded) until it
#           does. When this process tree lacks CAP_SYS_RESOURCE in its bounding
#           set (read from /proc/self/status, never assumed), docker's default
#           runtime becomes a runc wrapper that strips that capability from the
#           containers it creates: kind runs its nodes --privileged, which asks
#           runc for every capability and fails with "unable to apply caps:
#           operation not permitted" when one is missing from the bounding set.
#   stop    stop the engine this script started (by PID, TERM then KILL after a
#           bounded wait). An engine started by someone else is left alone.
#   status  print whether an engine answers, its PID and default runtime.
#
# Idempotent: start on a running engine and stop on a stopped one succeed.
# Environment: CAPILAB_STATE (default /var/lib/capilab) holds the wrapper,
# CAPILAB_RUN (default /run/capilab) the PID file, the log goes to
# CAPILAB_LOG_DIR (default /var/log/capilab). DOCKER_START_TIMEOUT (s, 90).
set -euo pipefail

STATE=${CAPILAB_STATE:-/var/lib/capilab}
RUN=${CAPILAB_RUN:-/run/capilab}
LOG_DIR=${CAPILAB_LOG_DIR:-/var/log/capilab}
PIDFILE=$RUN/dockerd.pid
LOG=$LOG_DIR/dockerd.log
WRAPPER=$STATE/bin/runc-nosysres
RUNTIME_NAME=runc-nosysres
START_TIMEOUT=${DOCKER_START_TIMEOUT:-90}
STOP_TIMEOUT=${DOCKER_STOP_TIMEOUT:-60}
CAP_SYS_RESOURCE=24

log() { printf '[docker-engine %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[[ $(id -u) == 0 ]] || die "must run as root (starts dockerd, writes $STATE)"

engine_answers() { timeout 10 docker info >/dev/null 2>&1; }

# has_cap_sys_resource: 0 when CAP_SYS_RESOURCE is in this process's bounding set.
has_cap_sys_resource() {
	local bnd
	bnd=$(awk '/^CapBnd:/ {print $2}' /proc/self/status)
	[[ -n $bnd ]] || die "cannot read CapBnd from /proc/self/status"
	(( (16#$bnd >> CAP_SYS_RESOURCE) & 1 ))
}

# our_pid prints the PID from our PID file when that process is a live dockerd.
our_pid() {
	[[ -s $PIDFILE ]] || return 1
	local pid
	pid=$(<"$PIDFILE")
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	[[ -r /proc/$pid/comm && $(</proc/"$pid"/comm) == dockerd ]] || return 1
	echo "$pid"
}

install_engine() {
	local need=()
	command -v dockerd >/dev/null || need+=(docker.io)
	command -v jq >/dev/null || need+=(jq)
	command -v iptables >/dev/null || need+=(iptables)
	((${#need[@]})) || return 0
	log "installing ${need[*]} from Debian's archive"
	local t0=$SECONDS
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
	log "installed in $((SECONDS - t0))s"
}

# write_wrapper installs the runc wrapper. It edits the OCI spec runc is about
# to use: the bundle's config.json on create/run, the --process file on exec.
write_wrapper() {
	local real_runc
	real_runc=$(command -v runc) || die "runc not found (docker.io should have pulled it in)"
	[[ $real_runc != "$WRAPPER" ]] || die "runc on PATH is the wrapper itself"
	mkdir -p "$(dirname "$WRAPPER")"
	cat >"$WRAPPER.tmp" <<EOF
#!/bin/sh
# Written by capilab scripts/docker-engine.sh: this machine's init runs every
# process without CAP_SYS_RESOURCE in its bounding set, so runc cannot grant it
# (docker --privileged asks for all capabilities). Drop it from the spec.
REAL_RUNC=$real_runc
EOF
	cat >>"$WRAPPER.tmp" <<'EOF'
strip() { # strip FILE JQPATH
	[ -f "$1" ] || return 0
	tmp="$1.nosysres.$$"
	jq "$2 |= (if type == \"object\" then with_entries(.value |= (if type == \"array\" then map(select(. != \"CAP_SYS_RESOURCE\")) else . end)) else . end)" "$1" >"$tmp" && mv "$tmp" "$1"
}
cmd="" bundle="" process="" prev=""
for a in "$@"; do
	case "$prev" in
	--bundle|-b) bundle="$a" ;;
	--process|-p) process="$a" ;;
	esac
	case "$a" in
	--bundle=*) bundle="${a#--bundle=}" ;;
	--process=*) process="${a#--process=}" ;;
	create|run|exec) [ -z "$cmd" ] && case "$prev" in --root|--log|--log-format|--criu|--rootless) ;; *) cmd="$a" ;; esac ;;
	esac
	prev="$a"
done
case "$cmd" in
create|run) strip "${bundle:-.}/config.json" .process.capabilities ;;
exec) [ -n "$process" ] && strip "$process" .capabilities ;;
esac
exec "$REAL_RUNC" "$@"
EOF
	chmod 0755 "$WRAPPER.tmp"
	mv "$WRAPPER.tmp" "$WRAPPER"
}

default_runtime() { docker info --format '{{.DefaultRuntime}}' 2>/dev/null || echo "?"; }

cmd_start() {
	if engine_answers; then
		local rt
		rt=$(default_runtime)
		log "engine already running (default runtime: $rt)"
		if ! has_cap_sys_resource && [[ $rt != "$RUNTIME_NAME" ]]; then
			log "WARNING: CAP_SYS_RESOURCE is missing here but the running engine does not use $RUNTIME_NAME:" \
				"privileged containers (kind nodes) will fail; stop that engine and rerun '$0 start'"
		fi
		return 0
	fi
	install_engine
	mkdir -p "$RUN" "$LOG_DIR"
	local args=(--pidfile "$PIDFILE")
	if has_cap_sys_resource; then
		log "CAP_SYS_RESOURCE is in the bounding set: plain runc"
	else
		log "CAP_SYS_RESOURCE is missing from the bounding set: default runtime $RUNTIME_NAME ($WRAPPER)"
		write_wrapper
		args+=(--add-runtime "$RUNTIME_NAME=$WRAPPER" --default-runtime "$RUNTIME_NAME")
	fi
	# A PID file left by a dead dockerd makes dockerd refuse to start.
	if [[ -e $PIDFILE ]] && ! our_pid >/dev/null; then rm -f "$PIDFILE"; fi
	log "starting dockerd (log: $LOG)"
	local t0=$SECONDS
	setsid nohup dockerd "${args[@]}" >>"$LOG" 2>&1 </dev/null &
	local child=$!
	until engine_answers; do
		if ! kill -0 "$child" 2>/dev/null; then
			tail -n 20 "$LOG" >&2 || true
			die "dockerd exited during start-up (see $LOG)"
		fi
		((SECONDS - t0 < START_TIMEOUT)) || { tail -n 20 "$LOG" >&2; die "dockerd did not answer 'docker info' within ${START_TIMEOUT}s"; }
		log "waiting for dockerd to answer 'docker info' ($((SECONDS - t0))s/${START_TIMEOUT}s)"
		sleep 1
	done
	log "dockerd running, pid $(our_pid || echo "$child"), default runtime $(default_runtime), up in $((SECONDS - t0))s"
}

cmd_stop() {
	local pid
	if ! pid=$(our_pid); then
		if engine_answers; then
			log "an engine answers but was not started by this script ($PIDFILE): leaving it alone"
		else
			log "no engine running"
		fi
		rm -f "$PIDFILE"
		return 0
	fi
	log "stopping dockerd (pid $pid)"
	kill -TERM "$pid"
	local t0=$SECONDS
	while kill -0 "$pid" 2>/dev/null; do
		if ((SECONDS - t0 >= STOP_TIMEOUT)); then
			log "dockerd (pid $pid) still running after ${STOP_TIMEOUT}s: SIGKILL"
			kill -KILL "$pid" 2>/dev/null || true
			break
		fi
		sleep 1
	done
	rm -f "$PIDFILE"
	log "dockerd stopped after $((SECONDS - t0))s"
}

cmd_status() {
	local pid
	if engine_answers; then
		if pid=$(our_pid); then echo "running pid=$pid (started by capilab)"; else echo "running (not started by capilab)"; fi
		echo "default-runtime=$(default_runtime)"
	else
		echo "stopped"
	fi
	if has_cap_sys_resource; then echo "cap_sys_resource=present"; else echo "cap_sys_resource=missing"; fi
	engine_answers
}

case "${1:-}" in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
*) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
