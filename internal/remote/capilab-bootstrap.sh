#!/bin/bash
# capilab-bootstrap: prepares a capilab management node and runs capilab's
# make targets on it. cloud-init writes it (from the user data capilab
# renders) and runs "prepare" once; capilab drives the rest over ssh:
#
#   capilab-bootstrap prepare            root, from cloud-init: Docker, the Go toolchain, limits
#   capilab-bootstrap start <target>     the login user: run "make <target>" in ~/capilab, detached
#                                        (create, clean, mgmt-delete, create_cluster, delete_cluster, check*)
#   capilab-bootstrap status <job> <n>   one line "<log size in bytes> <status>", then the job's log from byte n
#
# Jobs are "prepare" and the make targets; each has a log and a status file
# in /var/lib/capilab: running, ok, or "failed: <why>".
set -euo pipefail

# shellcheck source=/dev/null
set -a
. "${CAPILAB_BOOTSTRAP_ENV:-/etc/capilab/bootstrap.env}"
set +a

lib=${CAPILAB_LIB:-/var/lib/capilab}
src=${CAPILAB_SRC:-/home/${CAPILAB_USER}/capilab}

setstatus() { # job status...
	local job=$1
	shift
	printf '%s\n' "$*" >"$lib/$job.status.tmp"
	mv -f "$lib/$job.status.tmp" "$lib/$job.status"
}

goproxy_url() {
	# The first proxy of GOPROXY that is a URL (not direct/off).
	local IFS=',|' p
	for p in ${GOPROXY:-https://proxy.golang.org}; do
		case $p in http://* | https://*)
			echo "${p%/}"
			return
			;;
		esac
	done
	echo https://proxy.golang.org
}

prepare() {
	mkdir -p "$lib"
	chown "$CAPILAB_USER" "$lib"
	exec >>"$lib/prepare.log" 2>&1
	trap 'setstatus prepare "failed: line $LINENO (exit $?)"' ERR
	setstatus prepare running
	echo "capilab-bootstrap: prepare started $(date -u +%FT%TZ)"

	echo "capilab-bootstrap: kernel limits for kind (conntrack, inotify)"
	modprobe nf_conntrack || true
	sysctl --system >/dev/null

	echo "capilab-bootstrap: Docker for ${CAPILAB_USER}"
	local mtu=${CAPILAB_DOCKER_MTU:-0} dev
	if [ "$mtu" = 0 ]; then
		dev=$(ip -o route get 1.1.1.1 2>/dev/null | sed -n 's/.* dev \([^ ]*\).*/\1/p')
		mtu=$(cat "/sys/class/net/$dev/mtu" 2>/dev/null || echo 1500)
	fi
	if [ "$mtu" -lt 1500 ]; then
		echo "capilab-bootstrap: Docker networks (and kind's) get MTU $mtu"
		mkdir -p /etc/docker
		printf '{\n  "mtu": %d\n}\n' "$mtu" >/etc/docker/daemon.json
	fi
	getent group docker >/dev/null || groupadd docker
	usermod -aG docker "$CAPILAB_USER"
	systemctl daemon-reload
	systemctl enable docker
	systemctl restart docker
	docker version --format 'Docker {{.Server.Version}}'

	local arch sum zip url dir
	case $(uname -m) in
	x86_64) arch=amd64 ;;
	aarch64) arch=arm64 ;;
	*)
		echo "capilab-bootstrap: no Go toolchain is pinned for $(uname -m)"
		false
		;;
	esac
	sum_var="CAPILAB_GO_SHA256_${arch}"
	sum=${!sum_var}
	url="$(goproxy_url)/golang.org/toolchain/@v/v0.0.1-${CAPILAB_GO}.linux-${arch}.zip"
	dir=/usr/local/lib/capilab-go
	if [ "$(cat "$dir/.capilab-sha256" 2>/dev/null)" != "$sum" ]; then
		echo "capilab-bootstrap: Go ${CAPILAB_GO} from $url"
		zip=$(mktemp)
		curl --fail --silent --show-error --location --retry 5 --retry-all-errors -o "$zip" "$url"
		echo "$sum  $zip" | sha256sum --check --quiet
		rm -rf "$dir.new"
		mkdir -p "$dir.new"
		unzip -q "$zip" -d "$dir.new"
		rm -f "$zip"
		rm -rf "$dir"
		mv "$dir.new/golang.org/toolchain@v0.0.1-${CAPILAB_GO}.linux-${arch}" "$dir"
		rm -rf "$dir.new"
		echo "$sum" >"$dir/.capilab-sha256"
	fi
	ln -sf "$dir/bin/go" /usr/local/bin/go
	GOTOOLCHAIN=local /usr/local/bin/go version

	echo "capilab-bootstrap: prepare done $(date -u +%FT%TZ)"
	setstatus prepare ok
}

start() { # target
	local target=$1
	case $target in create | clean | mgmt-delete | create_cluster | delete_cluster | check | check-quick | check-conformance | check-storage | check-csi) ;; *)
		echo "capilab-bootstrap: unknown target $target" >&2
		exit 2
		;;
	esac
	if [ "$(cat "$lib/prepare.status" 2>/dev/null)" != ok ]; then
		echo "capilab-bootstrap: the node is not prepared yet (prepare: $(cat "$lib/prepare.status" 2>/dev/null || echo not started))" >&2
		exit 1
	fi
	if [ "$(cat "$lib/$target.status" 2>/dev/null)" = running ] && ! flock -n "$lib/$target.lock" true; then
		echo "capilab-bootstrap: make $target is already running" >&2
		exit 0
	fi
	: >"$lib/$target.log"
	setstatus "$target" running
	setsid -f "$0" run "$target" </dev/null >/dev/null 2>&1
}

run() { # target (the detached part of start)
	local target=$1 rc=0
	exec 9>"$lib/$target.lock"
	flock -n 9
	exec >>"$lib/$target.log" 2>&1
	echo "capilab-bootstrap: make $target started $(date -u +%FT%TZ) in $src"
	cd "$src"
	set +e
	env PATH="/usr/local/lib/capilab-go/bin:$PATH" GOTOOLCHAIN=local GOFLAGS=-buildvcs=false \
		OS_CLIENT_CONFIG_FILE="$CAPILAB_STATE/clouds.yaml" make "$target"
	rc=$?
	set -e
	echo "capilab-bootstrap: make $target ended $(date -u +%FT%TZ) with exit code $rc"
	if [ "$rc" = 0 ]; then
		setstatus "$target" ok
	else
		setstatus "$target" "failed: make $target exit code $rc"
	fi
}

status() { # job offset
	local job=$1 offset=${2:-0} st size
	st=$(cat "$lib/$job.status" 2>/dev/null || echo "not-started")
	size=$(stat -c %s "$lib/$job.log" 2>/dev/null || echo 0)
	echo "$size $st"
	if [ "$size" -gt "$offset" ]; then
		tail -c "+$((offset + 1))" "$lib/$job.log" | head -c "$((size - offset))"
	fi
}

case ${1:-} in
prepare) prepare ;;
start) start "${2:?target}" ;;
run) run "${2:?target}" ;;
status) status "${2:?job}" "${3:-0}" ;;
*)
	echo "usage: $0 prepare | start create|clean | status <job> <offset>" >&2
	exit 2
	;;
esac
