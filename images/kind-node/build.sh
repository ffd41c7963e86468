#!/usr/bin/env bash
# images/kind-node/build.sh — build a kind node image without any container
# registry: Debian rootfs by debootstrap, every Go component built from the Go
# module proxy, pause compiled from the pause.c shipped in the k8s.io/kubernetes
# module, kind's node files read from the kind module in the module cache.
#
# Normally run by internal/kindimage (make kind-image), which computes the cache
# key and passes every version from manifests/versions.yaml — nothing here
# names a version. All inputs are environment variables:
#
#   IMAGE               node image to produce, e.g. kindest/node:<tag>
#   CACHE_KEY           content key; stored as label dev.capilab.cache-key
#   K8S_VERSION         k8s.io/kubernetes module version
#   ETCD_VERSION        go.etcd.io/etcd/server/v3 module version
#   COREDNS_VERSION     github.com/coredns/coredns module version
#   CONTAINERD_VERSION  github.com/containerd/containerd/v2 module version
#   PAUSE_VERSION       version compiled into pause (must match kubeadm's)
#   DEBIAN_SUITE        debootstrap suite of the rootfs
#   KIND_VERSION        sigs.k8s.io/kind module version (from go.mod)
#   REPO_ROOT           capilab checkout (the cni-agent is built from it)
#   CACHE_DIR           work/cache dir (default ~/.cache/capilab/kind-node)
#
# Every step is skipped when its output exists for the same inputs, so a rerun
# after a failure or a recipe change only redoes what changed; the Go build
# cache (GOCACHE) makes re-linking cheap.
set -euo pipefail

for v in IMAGE CACHE_KEY K8S_VERSION ETCD_VERSION COREDNS_VERSION CONTAINERD_VERSION PAUSE_VERSION DEBIAN_SUITE KIND_VERSION REPO_ROOT; do
	[[ -n ${!v:-} ]] || { echo "build.sh: $v is not set (run through 'make kind-image')" >&2; exit 2; }
done
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE_DIR=${CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/capilab/kind-node}
OUT=$CACHE_DIR/out
WORK=$CACHE_DIR/work
LABEL=dev.capilab.cache-key
TICK=${PROGRESS_INTERVAL:-30}
export GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=0
mkdir -p "$OUT" "$WORK"

T0=$SECONDS
log() { printf '[kind-node %s +%ds] %s\n' "$(date -u +%H:%M:%S)" "$((SECONDS - T0))" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# --- clean-up on exit / Ctrl-C ----------------------------------------------
BUILD_CTR="" NODE_BUILD_IMAGE=""
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	# stop background steps (and their children) started by this script
	local pids
	pids=$(jobs -p) || true
	[[ -z $pids ]] || kill -TERM $pids 2>/dev/null || true
	[[ -z $BUILD_CTR ]] || docker rm -f -v "$BUILD_CTR" >/dev/null 2>&1 || true
	[[ -z $NODE_BUILD_IMAGE ]] || docker rmi "$NODE_BUILD_IMAGE" >/dev/null 2>&1 || true
	((rc == 0)) || log "FAILED (exit $rc)${CURRENT_STEP:+ in step $CURRENT_STEP} after $((SECONDS - T0))s"
	exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

# step NAME CMD...: run CMD in the foreground (set -e applies inside), print a
# progress line every $TICK s and the step's duration at the end.
CURRENT_STEP=""
step() {
	local name=$1 t=$SECONDS
	shift
	CURRENT_STEP=$name
	log "step $name: start"
	(
		trap - EXIT
		while sleep "$TICK"; do log "step $name: running, $((SECONDS - t))s elapsed"; done
	) &
	local ticker=$!
	"$@"
	kill "$ticker" 2>/dev/null || true
	wait "$ticker" 2>/dev/null || true
	CURRENT_STEP=""
	log "step $name: done in $((SECONDS - t))s"
}
# stamped DIR INPUTS: 0 when DIR/.done holds INPUTS (the step can be skipped).
stamped() { [[ -f $1/.done && $(<"$1/.done") == "$2" ]]; }
stamp() { printf '%s' "$2" >"$1/.done"; }

modfield() { go mod download -json "$1" | jq -r ".$2"; }
# quiet NAME CMD...: run CMD with its output in $WORK/NAME.log, shown only on failure
quiet() {
	local name=$1
	shift
	"$@" >"$WORK/$name.log" 2>&1 || { tail -n 40 "$WORK/$name.log" >&2; return 1; }
}

# --- host prerequisites --------------------------------------------------------
need=()
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v jq >/dev/null || need+=(jq)
command -v gcc >/dev/null || need+=(gcc libc6-dev)
if ((${#need[@]})); then
	log "installing ${need[*]} from Debian's archive"
	DEBIAN_FRONTEND=noninteractive apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
docker info >/dev/null 2>&1 || die "no Docker engine answers (run scripts/docker-engine.sh start)"

# --- rootfs (debootstrap) --------------------------------------------------------
# Packages of kind's base image (nfs/iscsi left out) plus Debian's runc and CNI
# plugins. The image is the base of the node and of kube-proxy / cni-agent.
ROOTFS_PKGS=systemd,systemd-sysv,dbus,conntrack,iptables,nftables,iproute2,ethtool,util-linux,mount,kmod,libseccomp2,pigz,fuse-overlayfs,e2fsprogs,bash,ca-certificates,curl,jq,procps,runc,containernetworking-plugins,socat,ipset
ROOTFS_KEY=$(printf '%s\n' "$DEBIAN_SUITE" "$ROOTFS_PKGS" | sha256sum | cut -c1-16)
ROOTFS_IMAGE=capilab-kind/rootfs:$ROOTFS_KEY

debian_mirror() {
	# the host's own Debian mirror (deb822 or one-line sources), never a fixed host
	local m
	m=$(grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v security | head -n1)
	[[ -n $m ]] || m=$(grep -hsE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | awk '{print $2}' | grep -v security | head -n1)
	[[ -n $m ]] || die "no Debian mirror found in /etc/apt/sources.list*"
	echo "$m"
}

build_rootfs() (
	local ROOTFS_TMP=$WORK/rootfs
	# an interrupted debootstrap can leave /proc or /sys mounted inside
	awk -v d="$ROOTFS_TMP/" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r | xargs -r umount -l
	rm -rf --one-file-system "$ROOTFS_TMP"
	local mirror
	mirror=$(debian_mirror)
	debootstrap --variant=minbase --include="$ROOTFS_PKGS" "$DEBIAN_SUITE" "$ROOTFS_TMP" "$mirror" \
		>"$WORK/debootstrap.log" 2>&1 || { tail -n 30 "$WORK/debootstrap.log" >&2; exit 1; }
	rm -rf "$ROOTFS_TMP"/var/cache/apt/archives/*.deb "$ROOTFS_TMP"/var/lib/apt/lists/*
	tar -C "$ROOTFS_TMP" --numeric-owner -c . |
		docker import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' - "$ROOTFS_IMAGE" >/dev/null
	rm -rf --one-file-system "$ROOTFS_TMP"
)

# --- Kubernetes binaries -----------------------------------------------------------
K8S_BINS=(kubeadm kubelet kubectl kube-apiserver kube-controller-manager kube-scheduler kube-proxy)
K8S_MOD=$WORK/k8s-build
K8S_OUT=$OUT/kubernetes-$K8S_VERSION
k8s_ldflags() {
	local v=$K8S_VERSION major minor
	major=${v#v}; major=${major%%.*}
	minor=${v#v*.}; minor=${minor%%.*}
	local f="-s -w" p
	for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		f+=" -X $p.gitVersion=$v -X $p.gitMajor=$major -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
	done
	echo "$f"
}
gen_k8s_module() (
	# A throwaway module: k8s.io/kubernetes replaces its 33 staging modules
	# with ./staging paths, which only work inside its repo; here each one
	# points at the staging module's own release on the proxy instead.
	mkdir -p "$K8S_MOD"
	cd "$K8S_MOD"
	local gomod staging
	gomod=$(go list -m -json "k8s.io/kubernetes@$K8S_VERSION" | jq -r .GoMod)
	staging="v0.${K8S_VERSION#v1.}"
	{
		echo "module capilab.local/k8s-build"
		echo
		grep -E '^go [0-9]' "$gomod"
		grep -E '^godebug ' "$gomod" || true
		echo
		echo "require k8s.io/kubernetes $K8S_VERSION"
		echo
		echo "replace ("
		grep -E '^\s*k8s\.io/[a-z0-9-]+ => \./staging/src/' "$gomod" | awk -v s="$staging" '{printf "\t%s => %s %s\n", $1, $1, s}'
		echo ")"
		echo
		for b in "${K8S_BINS[@]}"; do echo "tool k8s.io/kubernetes/cmd/$b"; done
	} >go.mod.new
	local n
	n=$(grep -c '=> k8s.io/' go.mod.new)
	((n > 20)) || die "only $n staging replaces found in k8s.io/kubernetes@$K8S_VERSION's go.mod"
	mv go.mod.new go.mod
	quiet k8s-tidy go mod tidy
)
build_k8s() (
	cd "$K8S_MOD"
	local pkgs=() b
	for b in "${K8S_BINS[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done
	mkdir -p "$K8S_OUT"
	nice -n 10 go build -trimpath -ldflags "$(k8s_ldflags)" -o "$K8S_OUT/" "${pkgs[@]}"
)

# --- etcd, coredns, containerd -------------------------------------------------------
ETCD_OUT=$OUT/etcd-$ETCD_VERSION
build_etcd() (
	# etcd's server module has sibling replaces: build it as a tool of a module
	local m=$WORK/etcd-build
	mkdir -p "$m" "$ETCD_OUT"
	cd "$m"
	[[ -f go.mod ]] || go mod init capilab.local/etcd-build >/dev/null 2>&1
	quiet etcd-get go get -tool "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
	nice -n 10 go build -trimpath -ldflags "-s -w" -o "$ETCD_OUT/etcd" go.etcd.io/etcd/server/v3
)

COREDNS_OUT=$OUT/coredns-$COREDNS_VERSION
COREDNS_PLUGINS=(errors health ready kubernetes metrics forward cache loop reload loadbalance log hosts)
build_coredns() (
	# Our own main with only the plugins kubeadm's Corefile uses: the full
	# plugin set pulls in every cloud SDK and takes minutes longer to build.
	local m=$WORK/coredns-build p
	mkdir -p "$m" "$COREDNS_OUT"
	cd "$m"
	[[ -f go.mod ]] || go mod init capilab.local/coredns-build >/dev/null 2>&1
	{
		echo "// Code generated by capilab images/kind-node/build.sh. DO NOT EDIT."
		echo "package main"
		echo
		echo "import ("
		echo "	\"github.com/coredns/coredns/coremain\""
		for p in "${COREDNS_PLUGINS[@]}"; do echo "	_ \"github.com/coredns/coredns/plugin/$p\""; done
		echo ")"
		echo
		echo "func main() { coremain.Run() }"
	} >main.go
	quiet coredns-get go get "github.com/coredns/coredns@$COREDNS_VERSION"
	quiet coredns-tidy go mod tidy
	nice -n 10 go build -trimpath -ldflags "-s -w -X github.com/coredns/coredns/coremain.GitCommit=$COREDNS_VERSION" -o "$COREDNS_OUT/coredns" .
)

CONTAINERD_OUT=$OUT/containerd-$CONTAINERD_VERSION
build_containerd() (
	mkdir -p "$CONTAINERD_OUT"
	local mod=github.com/containerd/containerd/v2 c
	local pkgs=()
	for c in containerd containerd-shim-runc-v2 ctr; do pkgs+=("$mod/cmd/$c@$CONTAINERD_VERSION"); done
	GOBIN=$CONTAINERD_OUT GOFLAGS= nice -n 10 go install -trimpath -tags "no_btrfs no_devmapper no_zfs no_aufs" \
		-ldflags "-s -w -X $mod/version.Version=$CONTAINERD_VERSION" "${pkgs[@]}"
)

PAUSE_OUT=$OUT/pause-$PAUSE_VERSION
build_pause() (
	local dir
	dir=$(cd "$K8S_MOD" && modfield "k8s.io/kubernetes@$K8S_VERSION" Dir)
	[[ -f $dir/build/pause/linux/pause.c ]] || die "pause.c not found in $dir/build/pause/linux"
	mkdir -p "$PAUSE_OUT"
	gcc -Os -Wall -Werror -static -DVERSION="v$PAUSE_VERSION-capilab" -o "$PAUSE_OUT/pause" "$dir/build/pause/linux/pause.c"
	strip "$PAUSE_OUT/pause"
)

AGENT_OUT=$WORK/cni-agent
build_agent() (
	mkdir -p "$AGENT_OUT"
	cd "$REPO_ROOT"
	GOFLAGS= nice -n 10 go build -trimpath -ldflags "-s -w" -o "$AGENT_OUT/cni-agent" ./images/kind-node/cni-agent
)

# --- component images ---------------------------------------------------------------
# docker_image NAME BASE CONTEXTDIR DOCKERFILE-BODY: docker build (legacy builder:
# no BuildKit, no registry access: BASE is always a local image or scratch)
docker_image() {
	local name=$1 base=$2 ctx=$3 body=$4
	printf 'FROM %s\n%s\n' "$base" "$body" >"$ctx/Dockerfile"
	DOCKER_BUILDKIT=0 quiet docker-build docker build --pull=false -t "$name" "$ctx"
}

static_base() {
	# passwd/group, CA bundle, /tmp: all a static Go binary needs
	local d=$WORK/static-base key
	rm -rf "$d" && mkdir -p "$d/etc/ssl/certs" "$d/tmp" "$d/var/run"
	chmod 1777 "$d/tmp"
	printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$d/etc/passwd"
	printf 'root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n' >"$d/etc/group"
	printf 'hosts: files dns\n' >"$d/etc/nsswitch.conf"
	cp /etc/ssl/certs/ca-certificates.crt "$d/etc/ssl/certs/"
	key=$(tar -C "$d" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -c . | sha256sum | cut -c1-16)
	STATIC_BASE=capilab-kind/static-base:$key
	if ! docker image inspect "$STATIC_BASE" >/dev/null 2>&1; then
		tar -C "$d" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -c . |
			docker import --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' - "$STATIC_BASE" >/dev/null
	fi
}

component_images() {
	static_base
	local ctx=$WORK/images b
	rm -rf "$ctx" && mkdir -p "$ctx"
	# the exact image names kubeadm will ask for, from the kubeadm just built
	mapfile -t REQUIRED < <("$K8S_OUT/kubeadm" config images list --kubernetes-version "$K8S_VERSION" 2>/dev/null)
	((${#REQUIRED[@]} >= 7)) || die "kubeadm config images list returned ${#REQUIRED[*]} images"
	BUILT=()
	local img name tag
	for img in "${REQUIRED[@]}"; do
		name=${img%:*}; name=${name##*/}; tag=${img##*:}
		mkdir -p "$ctx/$name"
		case $name in
		kube-apiserver | kube-controller-manager | kube-scheduler)
			cp "$K8S_OUT/$name" "$ctx/$name/"
			docker_image "$img" "$STATIC_BASE" "$ctx/$name" "COPY $name /usr/local/bin/$name" ;;
		kube-proxy)
			cp "$K8S_OUT/$name" "$ctx/$name/"
			docker_image "$img" "$ROOTFS_IMAGE" "$ctx/$name" "COPY $name /usr/local/bin/$name" ;;
		etcd)
			[[ $tag == "${ETCD_VERSION#v}"-* ]] || die "kubeadm wants $img but versions.yaml pins etcd $ETCD_VERSION"
			cp "$ETCD_OUT/etcd" "$ctx/$name/"
			docker_image "$img" "$STATIC_BASE" "$ctx/$name" "COPY etcd /usr/local/bin/etcd
ENTRYPOINT [\"/usr/local/bin/etcd\"]" ;;
		coredns)
			[[ $tag == "$COREDNS_VERSION" ]] || die "kubeadm wants $img but versions.yaml pins coredns $COREDNS_VERSION"
			cp "$COREDNS_OUT/coredns" "$ctx/$name/"
			docker_image "$img" "$STATIC_BASE" "$ctx/$name" "COPY coredns /coredns
EXPOSE 53 53/udp
ENTRYPOINT [\"/coredns\"]" ;;
		pause)
			[[ $tag == "$PAUSE_VERSION" ]] || die "kubeadm wants $img but versions.yaml pins pause $PAUSE_VERSION"
			PAUSE_IMAGE=$img
			cp "$PAUSE_OUT/pause" "$ctx/$name/"
			docker_image "$img" scratch "$ctx/$name" "COPY pause /pause
USER 65535:65535
ENTRYPOINT [\"/pause\"]" ;;
		*) die "kubeadm wants $img, which this recipe does not know how to build" ;;
		esac
		BUILT+=("$img")
	done
	mkdir -p "$ctx/cni-agent"
	cp "$AGENT_OUT/cni-agent" "$ctx/cni-agent/"
	AGENT_IMAGE=capilab.local/cni-agent:${CACHE_KEY:0:16}
	docker_image "$AGENT_IMAGE" "$ROOTFS_IMAGE" "$ctx/cni-agent" "COPY cni-agent /usr/local/bin/cni-agent
ENTRYPOINT [\"/usr/local/bin/cni-agent\"]"
	BUILT+=("$AGENT_IMAGE")
	docker save -o "$WORK/images.tar" "${BUILT[@]}"
	# the tags served their purpose (the tar); don't leave registry.k8s.io/* names in the host's docker
	docker rmi "${BUILT[@]}" >/dev/null
}

# --- node image -------------------------------------------------------------------------
node_image() {
	local kind_dir ctx=$WORK/node
	kind_dir=$(cd "$REPO_ROOT" && GOFLAGS= modfield "sigs.k8s.io/kind@$KIND_VERSION" Dir)
	[[ -f $kind_dir/images/base/files/usr/local/bin/entrypoint ]] || die "kind's node files not found in $kind_dir/images/base/files"
	rm -rf "$ctx" && mkdir -p "$ctx/bin"
	cp -r "$kind_dir/images/base/files" "$ctx/files"
	chmod -R u+w "$ctx/files"
	cp "$K8S_OUT/kubeadm" "$K8S_OUT/kubelet" "$K8S_OUT/kubectl" "$CONTAINERD_OUT"/* "$HERE/crictl" "$ctx/bin/"
	sed -e "s/@AGENT_IMAGE@/${AGENT_IMAGE//\//\\/}/" "$HERE/cni-agent.yaml" >"$ctx/default-cni.yaml"
	echo "$K8S_VERSION" >"$ctx/version"
	# kind's containerd config, two changes: the pause image we built, and
	# restrict_oom_score_adj — nothing here may lower oom_score_adj without
	# CAP_SYS_RESOURCE, and containerd must not try.
	sed -i -e "s|^\(\s*sandbox_image\s*=\s*\).*|\1\"$PAUSE_IMAGE\"|" \
		-e 's|^\(\s*restrict_oom_score_adj\s*=\s*\).*|\1true|' "$ctx/files/etc/containerd/config.toml"
	grep -q "sandbox_image = \"$PAUSE_IMAGE\"" "$ctx/files/etc/containerd/config.toml" || die "could not set sandbox_image in kind's containerd config"
	grep -q 'restrict_oom_score_adj = true' "$ctx/files/etc/containerd/config.toml" || die "could not set restrict_oom_score_adj in kind's containerd config"
	# the steps of kind's base Dockerfile (images/base/Dockerfile), on our rootfs
	NODE_BUILD_IMAGE=capilab-kind/node-build:$ROOTFS_KEY
	docker_image "$NODE_BUILD_IMAGE" "$ROOTFS_IMAGE" "$ctx" '
COPY files/ /
COPY bin/kubeadm bin/kubelet bin/kubectl /usr/bin/
COPY bin/containerd bin/containerd-shim-runc-v2 bin/ctr bin/crictl /usr/local/bin/
COPY version /kind/version
COPY default-cni.yaml /kind/manifests/default-cni.yaml
RUN chmod 0755 /usr/local/bin/* /kind /kind/bin /kind/bin/* /usr/bin/kubeadm /usr/bin/kubelet /usr/bin/kubectl \
 && mkdir -p /opt/cni/bin /etc/kubernetes/manifests \
 && for p in /usr/lib/cni/*; do ln -sf "$p" /opt/cni/bin/; done \
 && ctr oci spec | jq ".hooks.createContainer[.hooks.createContainer | length] |= . + {\"path\": \"/kind/bin/mount-product-files.sh\"}" | jq "del(.process.rlimits)" > /etc/containerd/cri-base.json \
 && find /lib/systemd/system/sysinit.target.wants/ -name systemd-tmpfiles-setup.service -delete \
 && rm -f /lib/systemd/system/multi-user.target.wants/* /etc/systemd/system/*.wants/* /lib/systemd/system/local-fs.target.wants/* \
          /lib/systemd/system/sockets.target.wants/*udev* /lib/systemd/system/sockets.target.wants/*initctl* /lib/systemd/system/basic.target.wants/* \
 && echo "ReadKMsg=no" >> /etc/systemd/journald.conf \
 && ln -sf /usr/lib/systemd/systemd /sbin/init \
 && systemctl enable kubelet.service containerd.service undo-mount-hacks.service \
 && systemctl mask systemd-binfmt.service \
 && containerd --version && runc --version | head -n1 && kubelet --version
ENV container=docker
STOPSIGNAL SIGRTMIN+3'

	# import the component images into the node's containerd, as kind does
	BUILD_CTR=capilab-kind-build-$$
	docker run -d --name "$BUILD_CTR" --entrypoint=sleep --security-opt seccomp=unconfined \
		"$NODE_BUILD_IMAGE" infinity >/dev/null
	docker exec "$BUILD_CTR" bash -c 'nohup containerd >/var/log/containerd-build.log 2>&1 & echo $! >/run/containerd-build.pid'
	local i
	for ((i = 0; ; i++)); do
		docker exec "$BUILD_CTR" ctr version >/dev/null 2>&1 && break
		((i < 60)) || { docker exec "$BUILD_CTR" cat /var/log/containerd-build.log >&2; die "containerd in the build container did not answer within 60s"; }
		log "waiting for containerd in the build container ($i/60s)"
		sleep 1
	done
	quiet ctr-import docker exec -i "$BUILD_CTR" ctr --namespace=k8s.io images import --label=io.cri-containerd.pinned=pinned \
		--all-platforms --no-unpack --digests - <"$WORK/images.tar"
	docker exec "$BUILD_CTR" ctr --namespace=k8s.io images ls -q 2>/dev/null | sort >"$WORK/node-images.txt"
	for img in "${BUILT[@]}"; do
		grep -qx "$img" "$WORK/node-images.txt" || grep -qx "docker.io/$img" "$WORK/node-images.txt" ||
			die "$img is missing from the node's containerd after import"
	done
	# (PID 1 of the build container is sleep, which reaps nobody: a zombie counts as stopped)
	docker exec "$BUILD_CTR" bash -c 'p=$(cat /run/containerd-build.pid); kill $p; for i in $(seq 30); do s=$(awk "{print \$3}" /proc/$p/stat 2>/dev/null); [ -z "$s" ] || [ "$s" = Z ] && exit 0; sleep 1; done; exit 1' ||
		die "containerd in the build container did not stop within 30s"
	docker exec "$BUILD_CTR" rm -f /run/containerd-build.pid /var/log/containerd-build.log
	local previous
	previous=$(docker image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)
	docker commit \
		--change 'ENTRYPOINT [ "/usr/local/bin/entrypoint", "/sbin/init" ]' \
		--change 'ENV HTTP_PROXY="" HTTPS_PROXY="" NO_PROXY=""' \
		--change "LABEL $LABEL=$CACHE_KEY dev.capilab.kubernetes=$K8S_VERSION" \
		"$BUILD_CTR" "$IMAGE" >/dev/null
	docker rm -f -v "$BUILD_CTR" >/dev/null
	BUILD_CTR=""
	docker rmi "$NODE_BUILD_IMAGE" >/dev/null
	NODE_BUILD_IMAGE=""
	# the image this one replaces (1.5 GB); kept if a container still uses it
	[[ -z $previous ]] || docker rmi "$previous" >/dev/null 2>&1 || true
	# the build contexts only held copies of the binaries in $OUT
	rm -rf "$WORK/images.tar" "$WORK/images" "$WORK/node"
}

# --- main ---------------------------------------------------------------------------------
log "building $IMAGE (key ${CACHE_KEY:0:16}, cache $CACHE_DIR)"

# rootfs in the background: debootstrap is mostly I/O and overlaps with Go builds
ROOTFS_PID=""
if docker image inspect "$ROOTFS_IMAGE" >/dev/null 2>&1; then
	log "step rootfs: cached ($ROOTFS_IMAGE)"
else
	step rootfs build_rootfs &
	ROOTFS_PID=$!
fi

# our own code first: a compile error should not wait for 15 minutes of k8s
step cni-agent build_agent
if stamped "$K8S_OUT" "$(k8s_ldflags)" && [[ -f $K8S_MOD/go.mod ]]; then
	log "step kubernetes: cached ($K8S_OUT)"
else
	step k8s-module gen_k8s_module
	step kubernetes build_k8s
	stamp "$K8S_OUT" "$(k8s_ldflags)"
fi
for c in etcd coredns containerd pause; do
	var=${c^^}_OUT
	if stamped "${!var}" "$c"; then
		log "step $c: cached (${!var})"
	else
		step "$c" "build_$c"
		stamp "${!var}" "$c"
	fi
done
if [[ -n $ROOTFS_PID ]]; then
	log "waiting for step rootfs"
	wait "$ROOTFS_PID" || die "step rootfs failed"
fi
step component-images component_images
step node-image node_image
log "built $IMAGE in $((SECONDS - T0))s"
