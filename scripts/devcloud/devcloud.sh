#!/usr/bin/env bash
# devcloud.sh — a real OpenStack Zed (Debian 12 packages) on this machine, for tests.
#
#   devcloud.sh install   apt-get install the services (idempotent; no daemon is started by apt)
#   devcloud.sh start     configure on first run, start every service, bootstrap users/catalog/quotas;
#                         a fast no-op when everything already answers
#   devcloud.sh stop      stop exactly the processes start started (PID files), bounded wait
#   devcloud.sh status    one line per service: running/stopped/unhealthy; exit 1 unless all run
#   devcloud.sh env       print shell exports for OS_CLOUD and the clouds.yaml path
#   devcloud.sh reset     stop, drop every database and stored blob, start again from scratch
#   devcloud.sh wipe      stop, drop every database and stored blob (the next start bootstraps anew)
#
# Keystone, Glance, Neutron, Nova+Placement, Octavia and Cinder with fake/noop back ends, all
# bound to 127.0.0.1. Runs as root without systemd: every daemon is started with setsid, its PID
# (= its session id) is written to $DEVCLOUD_STATE/run/<name>.pid, and stop signals exactly those
# sessions. Facts, timings and workarounds: docs/devcloud.md.
#
# The data plane (internal/dataplane): when a Docker engine answers, start builds the agent (Go)
# and runs it like every other daemon. It mirrors the external network `public` as a Docker
# network and forwards every API port from its gateway (172.24.4.1) to 127.0.0.1, so the
# catalog's second region (RegionOne-docker, clouds.yaml entry devcloud-lab) works from kind pods
# and node containers. Without an engine devcloud runs as before, without a data plane.
#
# Environment:
#   DEVCLOUD_STATE   state directory (default /var/lib/devcloud): run/, log/, secrets.env, markers
#   DEVCLOUD_WAIT    seconds any single readiness wait may take (default 180)
#   OS_CLIENT_CONFIG_FILE  clouds.yaml to merge the devcloud entries into
#                    (default ~/.config/openstack/clouds.yaml)
#   GO               the go command that builds the data-plane agent (default: go on PATH, else
#                    /usr/local/go/bin/go)
#   DOCKER_SOCKET    the Docker engine's socket (default /var/run/docker.sock)
#   DEVCLOUD_SELFCHECK  auto (default: start and status prove that a load balancer reaches ACTIVE
#                    and is forwarded and that a server boots into a node container, unless that
#                    passed less than 10 minutes ago), always, or never
set -Eeuo pipefail

# Found before PATH is reset below: the Go toolchain for the data-plane agent.
GO_CMD=${GO:-$(command -v go 2>/dev/null || echo /usr/local/go/bin/go)}

# Debian's python and tools, never a pyenv/venv python that has no OpenStack modules.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
unset PYTHONPATH PYTHONHOME VIRTUAL_ENV PYENV_VERSION || true
export LC_ALL=C.UTF-8 DEBIAN_FRONTEND=noninteractive

trap 'die "failed (exit $?) at line $LINENO: $BASH_COMMAND"' ERR
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# devcloud makes and uses its own credentials: a cloud the caller chose (OS_CLOUD, as `env`
# prints it for users) would be merged into its admin connections and turn them into that cloud.
unset OS_CLOUD
STATE=${DEVCLOUD_STATE:-/var/lib/devcloud}
RUN=$STATE/run
LOGDIR=$STATE/log
WAIT=${DEVCLOUD_WAIT:-180}
CLOUDS_YAML=${OS_CLIENT_CONFIG_FILE:-$HOME/.config/openstack/clouds.yaml}
HOSTNAME_NOVA=devcloud
REGION=RegionOne
KEYSTONE=http://127.0.0.1:5000/v3
PY=/usr/bin/python3
REPO=$(cd "$HERE/../.." && pwd)
DOCKER_SOCKET=${DOCKER_SOCKET:-/var/run/docker.sock}
DATAPLANE_BIN=$STATE/bin/dataplane
DATAPLANE_STATE=$STATE/dataplane
# The registry mirror (distribution, built at its pinned version) on loopback; the agent forwards
# it with the APIs, so containers pull from http://<gateway of public>:5001.
REGISTRY_ADDR=127.0.0.1:5001
# API ports the agent forwards from the external network's gateway to 127.0.0.1.
DATAPLANE_PORTS=5000,9292,8774,8778,9696,9876,8776,${REGISTRY_ADDR##*:}
# capilab's build cache (shared with the lab's targets): CAPILAB_CACHE_DIR, XDG_CACHE_HOME/capilab, ~/.cache/capilab
CACHE_DIR=${CAPILAB_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/capilab}

# Service order matters for start (dependencies first); stop walks it backwards.
SERVICES=(epmd mariadb rabbitmq keystone glance placement neutron nova-api nova-conductor
  nova-scheduler nova-compute octavia-api octavia-worker octavia-housekeeping cinder-api
  cinder-scheduler cinder-volume)

T0=$(date +%s%N)
log() {
  local ms=$((($(date +%s%N) - T0) / 1000000))
  printf '[devcloud %4d.%01ds] %s\n' $((ms / 1000)) $((ms % 1000 / 100)) "$*"
}
die() { printf '[devcloud] ERROR: %s\n' "$*" >&2; exit 1; }
need_root() { [[ $(id -u) == 0 ]] || die "must run as root (installs packages, starts services)"; }

# wait_for DESCRIPTION TIMEOUT CMD...: poll CMD every 0.5 s until it succeeds or TIMEOUT seconds
# pass. With WATCH=<service>, fail at once if that service's processes are gone.
wait_for() {
  local what=$1 timeout=$2; shift 2
  local start; start=$(date +%s)
  log "waiting for $what (up to ${timeout}s)"
  until "$@" >/dev/null 2>&1; do
    if [[ -n ${WATCH:-} ]] && ! is_running "$WATCH"; then
      tail -n 15 "$LOGDIR/$WATCH.out" "$LOGDIR/$WATCH.log" 2>/dev/null >&2 || true
      die "$WATCH exited while waiting for $what (logs: $LOGDIR/$WATCH.out, $LOGDIR/$WATCH.log)"
    fi
    if (($(date +%s) - start >= timeout)); then
      die "timed out after ${timeout}s waiting for $what"
    fi
    sleep 0.5
  done
  log "ready: $what ($(($(date +%s) - start))s)"
}

# ---------------------------------------------------------------------------------------------
# install
# ---------------------------------------------------------------------------------------------
packages() { grep -v -e '^#' -e '^[[:space:]]*$' "$HERE/packages.txt"; }

cmd_install() {
  need_root
  local missing=() p
  for p in $(packages); do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep 'install ok installed' >/dev/null || missing+=("$p")
  done
  if ((${#missing[@]} == 0)); then
    log "install: all $(packages | wc -l) packages already installed"
  else
    log "install: ${#missing[@]} packages missing: ${missing[*]}"
    # No systemd here, and devcloud starts its daemons itself: forbid package scripts from
    # starting services while we install (removed again afterwards if we created it).
    local created_policy=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
      printf '#!/bin/sh\n# devcloud: no daemon starts from package scripts\nexit 101\n' >/usr/sbin/policy-rc.d
      chmod 755 /usr/sbin/policy-rc.d
      created_policy=1
    fi
    # openstack-pkg-tools asks whether to configure DB/rabbit/keystone endpoints: devcloud does it.
    local pkg q sel=""
    for pkg in keystone glance-api glance-common neutron-common neutron-server nova-common nova-api \
      placement-common placement-api octavia-common octavia-api cinder-common cinder-api; do
      for q in configure_db configure_rabbit configure_api-endpoint configure_ksat; do
        sel+="$pkg $pkg/$q boolean false"$'\n'
      done
    done
    sel+="keystone keystone/create-admin-tenant boolean false"$'\n'
    printf '%s' "$sel" | debconf-set-selections
    local t; t=$(date +%s)
    log "install: apt-get update"
    apt-get update -q >"$LOGDIR/apt-update.log" 2>&1 || log "install: apt-get update reported errors (see $LOGDIR/apt-update.log); trying the install anyway"
    log "install: apt-get install (about 400 packages, ~2 min; log: $LOGDIR/apt-install.log)"
    if ! nice -n 10 apt-get install -y -q --no-install-recommends -o Dpkg::Options::=--force-confdef \
      -o Dpkg::Options::=--force-confold "${missing[@]}" >"$LOGDIR/apt-install.log" 2>&1; then
      ((created_policy)) && rm -f /usr/sbin/policy-rc.d
      tail -n 30 "$LOGDIR/apt-install.log" >&2
      die "apt-get install failed (full log: $LOGDIR/apt-install.log)"
    fi
    ((created_policy)) && rm -f /usr/sbin/policy-rc.d
    log "install: apt-get install done in $(($(date +%s) - t))s"
  fi
  install_vip_driver
  log "install: done"
}

# The Neutron L3 plugin whose floating IPs are ACTIVE while associated (no L3 agent runs here):
# a module in Debian's site directory for local packages, selected by its class path. Put in
# place each time Neutron is configured, so a devcloud installed before it gets it too.
install_l3_plugin() {
  local site
  site=$($PY -c 'import site,sys; print([p for p in site.getsitepackages() if p.startswith("/usr/local")][0])')
  mkdir -p "$site"
  install -m 644 "$HERE/neutron/devcloud_neutron_l3.py" "$site/devcloud_neutron_l3.py"
  $PY -c 'import devcloud_neutron_l3' || die "neutron cannot import devcloud's L3 plugin ($site/devcloud_neutron_l3.py)"
}

# The Octavia network driver that gives every load balancer a real Neutron VIP port. Installed
# as a module plus a dist-info (entry point octavia.network.drivers = devcloud_vip_driver) into
# Debian's site directory for local packages, where stevedore finds it.
install_vip_driver() {
  local site=/usr/local/lib/python3/dist-packages
  site=$($PY -c 'import site,sys; print([p for p in site.getsitepackages() if p.startswith("/usr/local")][0])')
  local di=$site/devcloud_octavia_vip-1.0.dist-info
  mkdir -p "$site" "$di"
  install -m 644 "$HERE/octavia/devcloud_octavia_vip.py" "$site/devcloud_octavia_vip.py"
  printf 'Metadata-Version: 2.1\nName: devcloud-octavia-vip\nVersion: 1.0\nSummary: devcloud Octavia network driver with real Neutron VIP ports\n' >"$di/METADATA"
  printf '[octavia.network.drivers]\ndevcloud_vip_driver = devcloud_octavia_vip:VipPortNetworkDriver\n' >"$di/entry_points.txt"
  printf 'devcloud_octavia_vip.py,,\ndevcloud_octavia_vip-1.0.dist-info/METADATA,,\ndevcloud_octavia_vip-1.0.dist-info/entry_points.txt,,\ndevcloud_octavia_vip-1.0.dist-info/RECORD,,\n' >"$di/RECORD"
  if dpkg-query -W python3-octavia >/dev/null 2>&1; then
    $PY - <<'PYEOF' || die "octavia cannot load the devcloud VIP driver via stevedore"
from stevedore import driver
driver.DriverManager("octavia.network.drivers", "devcloud_vip_driver", invoke_on_load=False)
PYEOF
    log "install: Octavia VIP-port network driver registered (entry point devcloud_vip_driver)"
  fi
}

# ---------------------------------------------------------------------------------------------
# secrets: generated once, kept across reset, never printed
# ---------------------------------------------------------------------------------------------
load_secrets() {
  local f=$STATE/secrets.env
  if [[ ! -s $f ]]; then
    umask 077
    {
      echo "ADMIN_PASS=$(openssl rand -hex 16)"
      echo "MEMBER_PASS=$(openssl rand -hex 16)"
      echo "SERVICE_PASS=$(openssl rand -hex 16)"
      echo "DB_PASS=$(openssl rand -hex 16)"
      echo "OCTAVIA_CA_PASS=$(openssl rand -hex 16)"
      echo "OCTAVIA_CERT_PASS=$(openssl rand -hex 16)" # 32 characters, as Octavia requires
    } >"$f.tmp"
    mv "$f.tmp" "$f"
    umask 022
    log "generated service passwords in $f (mode 0600)"
  fi
  chmod 600 "$f"
  # shellcheck disable=SC1090
  source "$f"
}

# ---------------------------------------------------------------------------------------------
# process management: setsid makes every daemon the leader of its own session; stop signals
# every process of exactly those sessions (by session id = the recorded PID).
# ---------------------------------------------------------------------------------------------
pidfile() { echo "$RUN/$1.pid"; }
session_pids() { ps -e -o pid=,sid= | awk -v s="$1" '$2 == s {print $1}'; }
is_running() {
  local f; f=$(pidfile "$1")
  [[ -s $f ]] || return 1
  local pid; pid=$(<"$f")
  [[ -n $(session_pids "$pid") ]]
}

# spawn NAME CMD...: start CMD in a new session, output to $LOGDIR/NAME.out, PID to run/NAME.pid.
spawn() {
  local name=$1; shift
  if is_running "$name"; then
    log "$name: already running (pid $(<"$(pidfile "$name")"))"
    return 0
  fi
  setsid "$@" </dev/null >>"$LOGDIR/$name.out" 2>&1 &
  echo $! >"$(pidfile "$name")"
  log "$name: started (pid $!)"
}

# stop_sessions TIMEOUT NAME...: TERM every process of each named session, wait up to TIMEOUT
# seconds for all of them to exit, then KILL what is left.
stop_sessions() {
  local timeout=$1; shift
  local name pid sids=() names=()
  for name in "$@"; do
    local f; f=$(pidfile "$name")
    [[ -s $f ]] || continue
    pid=$(<"$f")
    if [[ -z $(session_pids "$pid") ]]; then
      rm -f "$f"
      continue
    fi
    log "stop: $name (session $pid)"
    session_pids "$pid" | xargs -r kill -TERM 2>/dev/null || true
    sids+=("$pid")
    names+=("$name")
  done
  ((${#sids[@]})) || return 0
  local start left; start=$(date +%s)
  while :; do
    left=""
    for pid in "${sids[@]}"; do left+=$(session_pids "$pid"); done
    [[ -z $left ]] && break
    if (($(date +%s) - start >= timeout)); then
      log "stop: still running after ${timeout}s, sending KILL to: $(echo $left)"
      for pid in "${sids[@]}"; do session_pids "$pid" | xargs -r kill -KILL 2>/dev/null || true; done
      sleep 0.5
      break
    fi
    sleep 0.2
  done
  for name in "${names[@]}"; do rm -f "$(pidfile "$name")"; done
}

http_ok() { curl -fsS -o /dev/null --max-time "${HTTP_TIMEOUT:-20}" "$1"; }
# http_up URL: any HTTP answer below 500 (the API runs, even if it wants a token).
http_up() {
  local code; code=$(curl -s -o /dev/null -w '%{http_code}' --max-time "${HTTP_TIMEOUT:-20}" "$1") || return 1
  [[ $code =~ ^[1-4][0-9][0-9]$ ]]
}
tcp_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# ---------------------------------------------------------------------------------------------
# configuration (idempotent; crudini --merge sets many keys in one call)
# ---------------------------------------------------------------------------------------------
ini() { crudini --merge "$1"; } # ini FILE <<EOF ... EOF

authtoken() { # authtoken SERVICE_USER: a [keystone_authtoken] section
  cat <<EOF
[keystone_authtoken]
www_authenticate_uri = http://127.0.0.1:5000
auth_url = http://127.0.0.1:5000
auth_type = password
project_domain_name = Default
user_domain_name = Default
project_name = service
username = $1
password = $SERVICE_PASS
region_name = $REGION
service_token_roles_required = true
EOF
}

service_auth() { # service_auth SECTION USER: password auth of a service user in SECTION
  cat <<EOF
[$1]
auth_url = http://127.0.0.1:5000
auth_type = password
project_domain_name = Default
user_domain_name = Default
project_name = service
username = $2
password = $SERVICE_PASS
region_name = $REGION
EOF
}

db() { echo "mysql+pymysql://$1:$DB_PASS@127.0.0.1/$1?charset=utf8"; }
RABBIT=""

configure_mariadb() {
  cat >/etc/mysql/mariadb.conf.d/99-devcloud.cnf <<'EOF'
# devcloud: loopback only, small, many connections for the OpenStack services
[mysqld]
bind-address = 127.0.0.1
skip-name-resolve
max_connections = 1000
innodb_buffer_pool_size = 64M
innodb_flush_log_at_trx_commit = 2
character-set-server = utf8mb4
collation-server = utf8mb4_general_ci
EOF
  install -d -o mysql -g mysql /run/mysqld
}

configure_rabbitmq() {
  cat >/etc/rabbitmq/rabbitmq-env.conf <<'EOF'
# devcloud: loopback only
NODENAME=rabbit@localhost
NODE_IP_ADDRESS=127.0.0.1
NODE_PORT=5672
SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
EOF
  cat >/etc/rabbitmq/rabbitmq.conf <<'EOF'
listeners.tcp.default = 127.0.0.1:5672
loopback_users.guest = true
EOF
}

configure_keystone() {
  ini /etc/keystone/keystone.conf <<EOF
[DEFAULT]
debug = false
[database]
connection = $(db keystone)
[identity]
# a test cloud: cheap password hashing keeps authentication fast on 2 cores
password_hash_rounds = 4
[token]
provider = fernet
[fernet_tokens]
max_active_keys = 3
[cache]
enabled = false
EOF
}

configure_glance() {
  { ini /etc/glance/glance-api.conf; } <<EOF
[DEFAULT]
bind_host = 127.0.0.1
bind_port = 9292
workers = 1
graceful_shutdown_timeout = 5
enabled_backends = file:file
[database]
connection = $(db glance)
$(authtoken glance)
[paste_deploy]
flavor = keystone
[glance_store]
default_backend = file
[file]
filesystem_store_datadir = /var/lib/glance/images/
[os_glance_staging_store]
filesystem_store_datadir = /var/lib/glance/staging/
[os_glance_tasks_store]
filesystem_store_datadir = /var/lib/glance/tasks/
[oslo_concurrency]
lock_path = /var/lib/glance/lock
EOF
  install -d /var/lib/glance/images /var/lib/glance/staging /var/lib/glance/tasks /var/lib/glance/lock
}

configure_placement() {
  ini /etc/placement/placement.conf <<EOF
[placement_database]
connection = $(db placement)
[api]
auth_strategy = keystone
$(authtoken placement)
EOF
}

configure_neutron() {
  install_l3_plugin
  ini /etc/neutron/neutron.conf <<EOF
[DEFAULT]
bind_host = 127.0.0.1
bind_port = 9696
core_plugin = ml2
service_plugins = devcloud_neutron_l3.L3StatusRouterPlugin
auth_strategy = keystone
transport_url = $RABBIT
notify_nova_on_port_status_changes = true
notify_nova_on_port_data_changes = true
api_workers = $(nproc)
rpc_workers = 1
rpc_state_report_workers = 1
agent_down_time = 3600
graceful_shutdown_timeout = 5
allow_overlapping_ips = true
[database]
connection = $(db neutron)
$(authtoken neutron)
$(service_auth nova nova)
[oslo_concurrency]
lock_path = /var/lib/neutron/lock
EOF
  ini /etc/neutron/plugins/ml2/ml2_conf.ini <<'EOF'
[ml2]
type_drivers = flat,vlan,vxlan
tenant_network_types = vxlan
mechanism_drivers = openvswitch
extension_drivers = port_security
[ml2_type_flat]
flat_networks = public
[ml2_type_vlan]
network_vlan_ranges = public
[ml2_type_vxlan]
vni_ranges = 1:65535
[securitygroup]
enable_security_group = true
firewall_driver = openvswitch
EOF
  install -d /var/lib/neutron/lock
}

configure_nova() {
  ini /etc/nova/nova.conf <<EOF
[DEFAULT]
host = $HOSTNAME_NOVA
my_ip = 127.0.0.1
transport_url = $RABBIT
compute_driver = fake.FakeDriver
enabled_apis = osapi_compute
osapi_compute_listen = 127.0.0.1
osapi_compute_listen_port = 8774
osapi_compute_workers = 1
metadata_workers = 1
graceful_shutdown_timeout = 5
state_path = /var/lib/nova
instances_path = /var/lib/nova/instances
[api]
auth_strategy = keystone
[api_database]
connection = $(db nova_api)
[database]
connection = $(db nova)
$(authtoken nova)
$(service_auth placement placement)
$(service_auth neutron neutron)
$(service_auth service_user nova)
[service_user]
# Cinder (since the 2023 attachment-delete fix) only lets a service detach a volume
send_service_user_token = true
[neutron]
service_metadata_proxy = false
[cinder]
os_region_name = $REGION
[glance]
region_name = $REGION
[conductor]
workers = 1
[scheduler]
workers = 1
discover_hosts_in_cells_interval = 5
[vnc]
enabled = false
[oslo_concurrency]
lock_path = /var/lib/nova/lock
[oslo_messaging_notifications]
driver = noop
EOF
  install -d /var/lib/nova/lock /var/lib/nova/instances
}

configure_octavia() {
  local c=/etc/octavia/certs
  if [[ ! -s $c/client.pem ]]; then
    log "octavia: creating a throwaway CA and client certificate in $c"
    install -d -m 700 $c
    export OCTAVIA_CA_PASS
    openssl genrsa -aes256 -passout "env:OCTAVIA_CA_PASS" -out $c/ca.key 2048 2>/dev/null
    openssl req -x509 -new -key $c/ca.key -passin "env:OCTAVIA_CA_PASS" -days 3650 \
      -subj "/CN=devcloud-octavia-ca" -out $c/ca.pem 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout $c/client.key -subj "/CN=devcloud-octavia-client" \
      -out $c/client.csr 2>/dev/null
    openssl x509 -req -in $c/client.csr -CA $c/ca.pem -CAkey $c/ca.key -passin "env:OCTAVIA_CA_PASS" \
      -CAcreateserial -days 3650 -out $c/client.crt 2>/dev/null
    cat $c/client.crt $c/client.key >$c/client.pem
    chmod 600 $c/*.key $c/client.pem
  fi
  ini /etc/octavia/octavia.conf <<EOF
[DEFAULT]
transport_url = $RABBIT
graceful_shutdown_timeout = 5
[api_settings]
bind_host = 127.0.0.1
bind_port = 9876
auth_strategy = keystone
default_provider_driver = amphora
enabled_provider_drivers = amphora:The Octavia Amphora driver (devcloud: noop back ends)
[database]
connection = $(db octavia)
$(authtoken octavia)
$(service_auth service_auth octavia)
[neutron]
region_name = $REGION
endpoint_type = public
[nova]
region_name = $REGION
endpoint_type = public
[glance]
region_name = $REGION
endpoint_type = public
[cinder]
region_name = $REGION
endpoint_type = public
[controller_worker]
workers = 1
amphora_driver = amphora_noop_driver
compute_driver = compute_noop_driver
network_driver = devcloud_vip_driver
volume_driver = volume_noop_driver
image_driver = image_noop_driver
loadbalancer_topology = SINGLE
amp_image_tag = amphora
amp_flavor_id = 1
amp_boot_network_list = 00000000-0000-0000-0000-000000000000
amp_secgroup_list = 00000000-0000-0000-0000-000000000000
client_ca = $c/ca.pem
[certificates]
cert_generator = local_cert_generator
ca_certificate = $c/ca.pem
ca_private_key = $c/ca.key
ca_private_key_passphrase = $OCTAVIA_CA_PASS
server_certs_key_passphrase = $OCTAVIA_CERT_PASS
[haproxy_amphora]
client_cert = $c/client.pem
server_ca = $c/ca.pem
[health_manager]
bind_ip = 127.0.0.1
controller_ip_port_list = 127.0.0.1:5555
heartbeat_key = devcloud
[task_flow]
jobboard_enabled = false
[oslo_messaging]
topic = octavia_prov
[oslo_concurrency]
lock_path = /var/lib/octavia/lock
EOF
  install -d /var/lib/octavia/lock
}

configure_cinder() {
  ini /etc/cinder/cinder.conf <<EOF
[DEFAULT]
host = $HOSTNAME_NOVA
my_ip = 127.0.0.1
transport_url = $RABBIT
auth_strategy = keystone
osapi_volume_listen = 127.0.0.1
osapi_volume_listen_port = 8776
osapi_volume_workers = 1
graceful_shutdown_timeout = 5
enabled_backends = fake
default_volume_type = __DEFAULT__
state_path = /var/lib/cinder
# the image service by address, not by the first catalog entry (there are two regions)
glance_api_servers = http://127.0.0.1:9292
[database]
connection = $(db cinder)
$(authtoken cinder)
$(service_auth nova nova)
[fake]
volume_driver = cinder.tests.fake_driver.FakeLoggingVolumeDriver
volume_backend_name = fake
[oslo_concurrency]
lock_path = /var/lib/cinder/lock
EOF
  install -d /var/lib/cinder/lock
}

# ---------------------------------------------------------------------------------------------
# databases
# ---------------------------------------------------------------------------------------------
DATABASES=(keystone glance placement neutron nova_api nova nova_cell0 octavia cinder)
mysql_root() { mysql --protocol=socket -uroot "$@"; }

create_databases() {
  local sql="" d
  for d in "${DATABASES[@]}"; do
    sql+="CREATE DATABASE IF NOT EXISTS $d CHARACTER SET utf8;"
  done
  local u
  for u in keystone glance placement neutron nova octavia cinder; do
    sql+="CREATE USER IF NOT EXISTS '$u'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';"
    sql+="ALTER USER '$u'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';"
  done
  sql+="GRANT ALL PRIVILEGES ON keystone.* TO 'keystone'@'127.0.0.1';"
  sql+="GRANT ALL PRIVILEGES ON glance.* TO 'glance'@'127.0.0.1';"
  sql+="GRANT ALL PRIVILEGES ON placement.* TO 'placement'@'127.0.0.1';"
  sql+="GRANT ALL PRIVILEGES ON neutron.* TO 'neutron'@'127.0.0.1';"
  sql+="GRANT ALL PRIVILEGES ON nova_api.* TO 'nova'@'127.0.0.1';"
  sql+="GRANT ALL PRIVILEGES ON nova.* TO 'nova'@'127.0.0.1';"
  sql+="GRANT ALL PRIVILEGES ON nova_cell0.* TO 'nova'@'127.0.0.1';"
  sql+="GRANT ALL PRIVILEGES ON octavia.* TO 'octavia'@'127.0.0.1';"
  sql+="GRANT ALL PRIVILEGES ON cinder.* TO 'cinder'@'127.0.0.1';"
  # Passwords travel on stdin, not on a command line.
  printf '%s\n' "$sql" | mysql_root
  # nova_api etc. are reached as user nova: map the per-database users used in db().
  printf '%s\n' "CREATE USER IF NOT EXISTS 'nova_api'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
ALTER USER 'nova_api'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
GRANT ALL PRIVILEGES ON nova_api.* TO 'nova_api'@'127.0.0.1';
CREATE USER IF NOT EXISTS 'nova_cell0'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
ALTER USER 'nova_cell0'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
GRANT ALL PRIVILEGES ON nova_cell0.* TO 'nova_cell0'@'127.0.0.1';" | mysql_root
}

# once NAME CMD...: run CMD unless it succeeded before (marker in $STATE/done; reset clears them).
once() {
  local name=$1; shift
  local m=$STATE/done/$name
  [[ -e $m ]] && return 0
  mkdir -p "$STATE/done"
  local t; t=$(date +%s)
  log "$name: running (log: $LOGDIR/$name.log)"
  if ! "$@" >>"$LOGDIR/$name.log" 2>&1; then
    tail -n 20 "$LOGDIR/$name.log" >&2
    die "$name failed (log: $LOGDIR/$name.log)"
  fi
  touch "$m"
  log "$name: done in $(($(date +%s) - t))s"
}

as_user() { local u=$1; shift; runuser -u "$u" -- "$@"; }

# ---------------------------------------------------------------------------------------------
# start
# ---------------------------------------------------------------------------------------------
ENDPOINTS=(
  "keystone http://127.0.0.1:5000/v3"
  "glance http://127.0.0.1:9292/"
  "placement http://127.0.0.1:8778/"
  "neutron http://127.0.0.1:9696/"
  "nova-api http://127.0.0.1:8774/"
  "octavia-api http://127.0.0.1:9876/"
  "cinder-api http://127.0.0.1:8776/"
)

all_healthy() {
  local s e
  for s in "${SERVICES[@]}"; do is_running "$s" || return 1; done
  for e in "${ENDPOINTS[@]}"; do http_up "${e#* }" || return 1; done
  tcp_open 127.0.0.1 3306 && tcp_open 127.0.0.1 5672
}

# uwsgi's HTTP router (one async process) holds the clients' keep-alive connections and hands
# each request to a free worker. With --http11-socket a worker stays pinned to an idle
# keep-alive connection, and under concurrent clients requests queue for seconds. No
# --http-auto-chunked: it appends a chunk terminator even to 204 responses, which breaks the
# next response on a reused connection ("malformed HTTP response").
# --http-timeout 300: the router's default (60 s) closes the client's connection without a
# response when a worker takes longer, yet the worker finishes the request; on a loaded machine
# a create can take that long, the client sees "Remote end closed connection without response",
# and a client that repeats the create makes a second resource. Clients bound their own waits.
uwsgi_cmd() { # uwsgi_cmd PORT WSGI_FILE PROCESSES UID LOGNAME
  echo uwsgi --plugins python3,http --http "127.0.0.1:$1" --http-keepalive --http-timeout 300 \
    --wsgi-file "$2" --processes "$3" \
    --threads 1 --master --die-on-term --need-app --buffer-size 65535 --uid "$4" --gid "$4" \
    --thunder-lock --lazy-apps \
    --disable-logging --logto "$LOGDIR/$5.log"
}

cmd_start() {
  need_root
  cmd_install_check
  load_secrets
  RABBIT="rabbit://guest:guest@127.0.0.1:5672/"
  if all_healthy; then
    lab_region
    write_clouds_yaml
    dataplane_start
    dataplane_selfcheck since-agent-build || die "start: devcloud runs, but the self-check above found it broken"
    log "start: devcloud is already running and every API answers; nothing to do"
    return 0
  fi
  local t_all; t_all=$(date +%s)

  # -- infrastructure
  configure_mariadb
  spawn mariadb /usr/sbin/mariadbd --user=mysql --pid-file=/run/mysqld/mysqld.pid
  WATCH=mariadb wait_for "mariadb to accept connections" "$WAIT" mysqladmin --protocol=socket -uroot ping
  create_databases

  configure_rabbitmq
  spawn epmd runuser -u rabbitmq -- env ERL_EPMD_ADDRESS=127.0.0.1 /usr/bin/epmd -address 127.0.0.1
  WATCH=epmd wait_for "epmd on 127.0.0.1:4369" "$WAIT" tcp_open 127.0.0.1 4369
  install -d -o rabbitmq -g rabbitmq "$LOGDIR/rabbitmq"
  spawn rabbitmq runuser -u rabbitmq -- env HOME=/var/lib/rabbitmq ERL_EPMD_ADDRESS=127.0.0.1 \
    RABBITMQ_LOG_BASE="$LOGDIR/rabbitmq" sh -c 'cd /var/lib/rabbitmq && exec /usr/lib/rabbitmq/bin/rabbitmq-server'

  # -- keystone (everything else authenticates against it)
  configure_keystone
  once keystone-db-sync as_user keystone keystone-manage db_sync
  once keystone-fernet-setup keystone-manage fernet_setup --keystone-user keystone --keystone-group keystone
  once keystone-credential-setup keystone-manage credential_setup --keystone-user keystone --keystone-group keystone
  once keystone-bootstrap env OS_BOOTSTRAP_PASSWORD="$ADMIN_PASS" keystone-manage bootstrap \
    --bootstrap-admin-url "$KEYSTONE/" --bootstrap-internal-url "$KEYSTONE/" \
    --bootstrap-public-url "$KEYSTONE/" --bootstrap-region-id "$REGION"
  chown -R keystone:keystone /var/log/keystone /etc/keystone/fernet-keys /etc/keystone/credential-keys
  touch "$LOGDIR/keystone.log" "$LOGDIR/placement.log" "$LOGDIR/octavia-api.log"
  chown keystone "$LOGDIR/keystone.log"
  chown placement "$LOGDIR/placement.log" 2>/dev/null || true
  # shellcheck disable=SC2046
  spawn keystone $(uwsgi_cmd 5000 /usr/bin/keystone-wsgi-public 4 keystone keystone)
  WATCH=keystone wait_for "keystone at $KEYSTONE" "$WAIT" http_ok "$KEYSTONE"
  WATCH=rabbitmq wait_for "rabbitmq on 127.0.0.1:5672" "$WAIT" tcp_open 127.0.0.1 5672
  export_admin_env
  once bootstrap-identity $PY "$HERE/bootstrap.py" identity

  # -- configure and sync the databases of the other services, one after the other (CPU bound)
  configure_glance; configure_placement; configure_neutron; configure_nova; configure_octavia; configure_cinder
  once glance-db-sync glance-manage db_sync
  once placement-db-sync as_user placement placement-manage db sync
  once neutron-db-sync neutron-db-manage --config-file /etc/neutron/neutron.conf \
    --config-file /etc/neutron/plugins/ml2/ml2_conf.ini upgrade head
  once nova-api-db-sync nova-manage api_db sync
  once nova-cell0-map nova-manage cell_v2 map_cell0 --database_connection "$(db nova_cell0)"
  once nova-cell1-create sh -c 'nova-manage cell_v2 list_cells | grep -w cell1 >/dev/null || nova-manage cell_v2 create_cell --name=cell1'
  once nova-db-sync nova-manage db sync
  once octavia-db-sync octavia-db-manage --config-file /etc/octavia/octavia.conf upgrade head
  once cinder-db-sync cinder-manage db sync
  fake_ovs_agent

  # -- start the APIs and workers, then wait for all of them
  chown placement "$LOGDIR/placement.log"
  # shellcheck disable=SC2046
  spawn placement $(uwsgi_cmd 8778 /usr/bin/placement-api 2 placement placement)
  spawn glance glance-api --config-file /etc/glance/glance-api.conf --log-file "$LOGDIR/glance.log"
  spawn neutron neutron-server --config-file /etc/neutron/neutron.conf \
    --config-file /etc/neutron/plugins/ml2/ml2_conf.ini --log-file "$LOGDIR/neutron.log"
  spawn nova-api nova-api --config-file /etc/nova/nova.conf --log-file "$LOGDIR/nova-api.log"
  spawn nova-conductor nova-conductor --config-file /etc/nova/nova.conf --log-file "$LOGDIR/nova-conductor.log"
  spawn nova-scheduler nova-scheduler --config-file /etc/nova/nova.conf --log-file "$LOGDIR/nova-scheduler.log"
  # The nova-compute .deb needs libvirt/qemu; python3-nova has the code and the fake driver.
  spawn nova-compute $PY -c 'import sys; sys.argv[0] = "nova-compute"; from nova.cmd.compute import main; main()' \
    --config-file /etc/nova/nova.conf --log-file "$LOGDIR/nova-compute.log"
  # shellcheck disable=SC2046
  spawn octavia-api $(uwsgi_cmd 9876 /usr/bin/octavia-wsgi 2 root octavia-api)
  spawn octavia-worker octavia-worker --config-file /etc/octavia/octavia.conf --log-file "$LOGDIR/octavia-worker.log"
  spawn octavia-housekeeping octavia-housekeeping --config-file /etc/octavia/octavia.conf \
    --log-file "$LOGDIR/octavia-housekeeping.log"
  spawn cinder-api cinder-api --config-file /etc/cinder/cinder.conf --log-file "$LOGDIR/cinder-api.log"
  spawn cinder-scheduler cinder-scheduler --config-file /etc/cinder/cinder.conf --log-file "$LOGDIR/cinder-scheduler.log"
  spawn cinder-volume cinder-volume --config-file /etc/cinder/cinder.conf --log-file "$LOGDIR/cinder-volume.log"

  local e
  for e in "${ENDPOINTS[@]}"; do
    WATCH=${e%% *} wait_for "${e%% *} API at ${e#* }" "$WAIT" http_up "${e#* }"
  done
  local s
  for s in "${SERVICES[@]}"; do is_running "$s" || die "$s exited during start (log: $LOGDIR/$s.log, $LOGDIR/$s.out)"; done

  # -- cloud content: flavors, image, external network, quotas; compute/volume services up
  DEVCLOUD_WAIT=$WAIT $PY "$HERE/bootstrap.py" wait
  once bootstrap-resources $PY "$HERE/bootstrap.py" resources
  lab_region
  write_clouds_yaml
  dataplane_start
  dataplane_selfcheck || die "start: devcloud runs, but the self-check above found it broken"
  date +%s >"$STATE/started"
  log "start: devcloud is up in $(($(date +%s) - t_all))s; use OS_CLOUD=devcloud-member (or devcloud for admin)"
}

# The ML2/openvswitch mechanism driver binds a port only for a live OVS agent on the port's
# host. No agent runs here; one agent row with a far-future heartbeat makes binding work.
fake_ovs_agent() {
  mysql_root neutron <<EOF
INSERT IGNORE INTO agents (id, agent_type, \`binary\`, topic, host, admin_state_up, created_at,
  started_at, heartbeat_timestamp, description, configurations, \`load\`, availability_zone,
  resource_versions, resources_synced)
VALUES ('9e1a5c4e-0d7a-4f5e-9d1d-de0c10ad0001', 'Open vSwitch agent', 'neutron-openvswitch-agent',
  'N/A', '$HOSTNAME_NOVA', 1, NOW(), NOW(), '2099-01-01 00:00:00',
  'devcloud: fake agent row so that ports bind (no agent runs)',
  '{"bridge_mappings": {"public": "br-ex"}, "tunnel_types": ["vxlan"], "tunneling_ip": "127.0.0.1", "l2_population": false, "integration_bridge": "br-int", "ovs_hybrid_plug": false, "datapath_type": "system", "ovs_capabilities": {"datapath_types": ["system"], "iface_types": ["internal", "vxlan"]}, "enable_distributed_routing": false}',
  0, NULL, NULL, 1);
EOF
}

cmd_install_check() {
  local p
  for p in keystone neutron-server nova-api octavia-api cinder-volume python3-openstackclient; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep 'install ok installed' >/dev/null ||
      die "package $p is not installed: run '$0 install' first"
  done
}

export_admin_env() {
  export OS_AUTH_URL=$KEYSTONE OS_USERNAME=admin OS_PASSWORD=$ADMIN_PASS OS_PROJECT_NAME=admin
  export OS_USER_DOMAIN_NAME=Default OS_PROJECT_DOMAIN_NAME=Default OS_REGION_NAME=$REGION
  export OS_IDENTITY_API_VERSION=3 OS_INTERFACE=public DEVCLOUD_MEMBER_PASS=$MEMBER_PASS
  export DEVCLOUD_SERVICE_PASS=$SERVICE_PASS
}

write_clouds_yaml() {
  export_admin_env
  CLOUDS_YAML=$CLOUDS_YAML DEVCLOUD_LAB_GATEWAY=$(lab_gateway) $PY "$HERE/bootstrap.py" clouds-yaml
  unset OS_PASSWORD DEVCLOUD_MEMBER_PASS DEVCLOUD_SERVICE_PASS
}

# lab_region: the catalog's second region, RegionOne-docker (get-or-create, a few calls); writes
# the gateway address of `public` to $STATE/lab-gateway.
lab_region() {
  export_admin_env
  DEVCLOUD_LAB_GATEWAY_FILE=$STATE/lab-gateway $PY "$HERE/bootstrap.py" lab-region >>"$LOGDIR/lab-region.log" 2>&1 ||
    { tail -n 20 "$LOGDIR/lab-region.log" >&2; die "lab-region failed (log: $LOGDIR/lab-region.log)"; }
  unset OS_PASSWORD DEVCLOUD_MEMBER_PASS DEVCLOUD_SERVICE_PASS
  log "catalog: region RegionOne-docker at $(lab_gateway) (clouds.yaml entry devcloud-lab)"
}
lab_gateway() { [[ -s $STATE/lab-gateway ]] && cat "$STATE/lab-gateway" || true; }

# ---------------------------------------------------------------------------------------------
# data plane: the agent runs only when a Docker engine answers
# ---------------------------------------------------------------------------------------------
docker_answers() { [[ $(curl -s --max-time 5 --unix-socket "$DOCKER_SOCKET" http://docker/_ping 2>/dev/null) == OK ]]; }

# dataplane_build: (re)build the agent; sets DATAPLANE_CHANGED=1 when the binary is new.
DATAPLANE_CHANGED=0
dataplane_build() {
  [[ -x $GO_CMD ]] || command -v "$GO_CMD" >/dev/null || die "data plane: no Go toolchain ($GO_CMD); set GO"
  mkdir -p "$(dirname "$DATAPLANE_BIN")"
  local t; t=$(date +%s)
  # Static, so helper containers can run the same binary. Without version-control stamps: the
  # binary must change only with its code (a checkout's untracked files would change the stamp
  # and restart the agent for nothing).
  if ! (cd "$REPO" && CGO_ENABLED=0 "$GO_CMD" build -trimpath -buildvcs=false -o "$DATAPLANE_BIN.new" ./internal/dataplane/cmd/dataplane) \
    >"$LOGDIR/dataplane-build.log" 2>&1; then
    tail -n 20 "$LOGDIR/dataplane-build.log" >&2
    die "data plane: building the agent failed (log: $LOGDIR/dataplane-build.log)"
  fi
  if [[ -x $DATAPLANE_BIN ]] && cmp -s "$DATAPLANE_BIN.new" "$DATAPLANE_BIN"; then
    rm -f "$DATAPLANE_BIN.new"
  else
    mv "$DATAPLANE_BIN.new" "$DATAPLANE_BIN"
    log "data plane: agent built in $(($(date +%s) - t))s ($DATAPLANE_BIN)"
    DATAPLANE_CHANGED=1
  fi
}

# registry_start: build (cached by content) and run the registry mirror on $REGISTRY_ADDR.
registry_start() {
  if is_running registry && http_up "http://$REGISTRY_ADDR/v2/"; then return 0; fi
  mkdir -p "$STATE/registry/data"
  local bin t; t=$(date +%s)
  if ! bin=$("$DATAPLANE_BIN" registry --cache-dir "$CACHE_DIR/modbuild" --go "$GO_CMD" --repo "$REPO" \
    --config "$STATE/registry/config.yml" --listen "$REGISTRY_ADDR" --root "$STATE/registry/data" 2>>"$LOGDIR/registry-build.log"); then
    tail -n 20 "$LOGDIR/registry-build.log" >&2
    die "registry mirror: build failed (log: $LOGDIR/registry-build.log)"
  fi
  log "registry mirror: binary ready in $(($(date +%s) - t))s ($bin)"
  spawn registry env OTEL_TRACES_EXPORTER=none "$bin" serve "$STATE/registry/config.yml"
  WATCH=registry wait_for "the registry mirror at http://$REGISTRY_ADDR/v2/" "$WAIT" http_up "http://$REGISTRY_ADDR/v2/"
}

# dataplane_selfcheck: prove with real resources (in the admin project, removed again) that a load
# balancer reaches ACTIVE and is forwarded and that a server boots into a node container and runs
# its cloud-init; say what is broken otherwise. A pass younger than 10 minutes is not repeated
# (DEVCLOUD_SELFCHECK=always repeats it, never skips it). With since-agent-build (start on a
# running devcloud, which must stay a quick no-op) a pass since the agent's binary last changed
# is enough: the same code was proven on the same running services. A restart of that same
# binary (a crash, or a test restarting only the agent) needs no new proof: start has just
# waited for it to forward the APIs.
SELFCHECK_MAX_AGE=600
dataplane_selfcheck() {
  local mode=${DEVCLOUD_SELFCHECK:-auto} f=$DATAPLANE_STATE/selfcheck.json
  [[ $mode == never ]] && return 0
  if [[ ! -x $DATAPLANE_BIN ]]; then
    log "self-check: not run (the data-plane binary is built when a Docker engine answers)"
    return 0
  fi
  if [[ $mode == auto && ${1:-} == since-agent-build && -s $f && $f -nt $DATAPLANE_BIN ]] && grep -q '"ok": true' "$f"; then
    log "self-check: passed since the data-plane agent's binary last changed; not repeated (status repeats it)"
    return 0
  fi
  if [[ $mode == auto && -s $f ]] && (($(date +%s) - $(stat -c %Y "$f") < SELFCHECK_MAX_AGE)) && grep -q '"ok": true' "$f"; then
    log "self-check: passed $(($(date +%s) - $(stat -c %Y "$f")))s ago; not repeated"
    return 0
  fi
  local t; t=$(date +%s)
  log "self-check: a load balancer and a server through the data plane (each wait bounded; DEVCLOUD_SELFCHECK=never skips)"
  if OS_CLIENT_CONFIG_FILE=$CLOUDS_YAML "$DATAPLANE_BIN" selfcheck --cloud devcloud --state-dir "$DATAPLANE_STATE" \
    --docker-socket "$DOCKER_SOCKET" 2>>"$LOGDIR/selfcheck.log"; then
    log "self-check: passed in $(($(date +%s) - t))s"
  else
    log "self-check: FAILED after $(($(date +%s) - t))s (details above; log: $LOGDIR/selfcheck.log)"
    return 1
  fi
}

dataplane_start() {
  if ! docker_answers; then
    log "data plane: no Docker engine answers at $DOCKER_SOCKET: not started (scripts/docker-engine.sh start, then start again)"
    return 0
  fi
  dataplane_build
  registry_start
  if ((DATAPLANE_CHANGED)) && is_running dataplane; then
    log "data plane: the agent's code changed: restarting it"
    stop_sessions 30 dataplane
  fi
  mkdir -p "$DATAPLANE_STATE"
  spawn dataplane env OS_CLIENT_CONFIG_FILE="$CLOUDS_YAML" "$DATAPLANE_BIN" agent --cloud devcloud \
    --state-dir "$DATAPLANE_STATE" --api-ports "$DATAPLANE_PORTS" --docker-socket "$DOCKER_SOCKET"
  local gw; gw=$(lab_gateway)
  [[ -n $gw ]] || die "data plane: the gateway of network public is unknown ($STATE/lab-gateway)"
  WATCH=dataplane wait_for "the data plane to forward the APIs at $gw" "$WAIT" http_up "http://$gw:5000/v3"
}


# ---------------------------------------------------------------------------------------------
# stop, status, env, reset
# ---------------------------------------------------------------------------------------------
cmd_stop() {
  need_root
  local t; t=$(date +%s)
  local apis=() i
  for ((i = ${#SERVICES[@]} - 1; i >= 0; i--)); do
    case ${SERVICES[i]} in epmd | mariadb | rabbitmq) ;; *) apis+=("${SERVICES[i]}") ;; esac
  done
  stop_sessions 30 dataplane # removes its firewall rules on TERM; containers and networks stay
  stop_sessions 10 registry
  stop_sessions 10 "${apis[@]}" # stateless APIs and workers: KILL after 10 s
  stop_sessions 30 rabbitmq
  stop_sessions 60 epmd mariadb
  rm -f "$STATE/started"
  local left=""
  for s in "${SERVICES[@]}" dataplane registry; do is_running "$s" && left+=" $s"; done
  [[ -z $left ]] || die "stop: still running:$left"
  log "stop: all devcloud processes stopped in $(($(date +%s) - t))s"
}

cmd_status() {
  local s rc=0 pid
  for s in "${SERVICES[@]}"; do
    if is_running "$s"; then
      pid=$(<"$(pidfile "$s")")
      printf '%-22s running  pid %-7s %s processes\n' "$s" "$pid" "$(session_pids "$pid" | wc -l)"
    else
      printf '%-22s stopped\n' "$s"
      rc=1
    fi
  done
  local e
  for e in "${ENDPOINTS[@]}"; do
    if http_up "${e#* }"; then
      printf '%-22s answers  %s\n' "${e%% *} API" "${e#* }"
    else
      printf '%-22s DOWN     %s\n' "${e%% *} API" "${e#* }"
      rc=1
    fi
  done
  dataplane_status || rc=1
  local rss
  rss=$(for s in "${SERVICES[@]}" dataplane registry; do is_running "$s" && session_pids "$(<"$(pidfile "$s")")"; done |
    xargs -r ps -o rss= -p 2>/dev/null | awk '{s += $1} END {printf "%.0f", s / 1024}')
  echo "memory (RSS sum of all devcloud processes): ${rss:-0} MiB"
  return $rc
}

# dataplane_status: the agent, its API forwarding and the problems it reports. Without a Docker
# engine there is no data plane, which is not an error of devcloud.
dataplane_status() {
  if ! docker_answers; then
    printf '%-22s off      no Docker engine answers at %s\n' dataplane "$DOCKER_SOCKET"
    return 0
  fi
  local rc=0 pid gw
  if is_running dataplane; then
    pid=$(<"$(pidfile dataplane)")
    printf '%-22s running  pid %-7s %s\n' dataplane "$pid" "log: $LOGDIR/dataplane.out"
  else
    printf '%-22s stopped  (a Docker engine answers: start devcloud again to run it)\n' dataplane
    rc=1
  fi
  if is_running registry && http_up "http://$REGISTRY_ADDR/v2/"; then
    printf '%-22s answers  %s\n' "registry mirror" "http://$REGISTRY_ADDR (containers: http://$(lab_gateway):${REGISTRY_ADDR##*:})"
  else
    printf '%-22s DOWN     %s\n' "registry mirror" "http://$REGISTRY_ADDR/v2/"
    rc=1
  fi
  gw=$(lab_gateway)
  if [[ -n $gw ]] && http_up "http://$gw:5000/v3"; then
    printf '%-22s answers  %s\n' "API via $gw" "http://$gw:5000/v3 (region RegionOne-docker, cloud devcloud-lab)"
  else
    printf '%-22s DOWN     %s\n' "API via ${gw:-gateway}" "http://${gw:-?}:5000/v3: pods and node containers cannot reach devcloud"
    rc=1
  fi
  if [[ ${DEVCLOUD_SELFCHECK:-auto} != never && $(id -u) == 0 ]]; then
    dataplane_selfcheck || rc=1
  fi
  if [[ -s $DATAPLANE_STATE/status.json ]]; then
    $PY - "$DATAPLANE_STATE/status.json" <<'PYEOF' || rc=1
import json, sys, time, os
st = json.load(open(sys.argv[1]))
age = time.time() - os.path.getmtime(sys.argv[1])
print("%-22s pass %d %.0fs ago (%d ms), %d networks mirrored" % (
    "dataplane status", st.get("pass", 0), age, st.get("pass_ms", 0), len(st.get("networks") or [])))
bad = False
# A loaded cloud fails a pass now and then and the next pass retries: the data plane is
# broken when passes keep failing, not after one.
FAILED_IN_A_ROW = 3
if st.get("error"):
    n = st.get("failed_passes")
    if n is None:  # an agent from before the count
        print("%-22s ERROR    %s" % ("dataplane", st["error"])); bad = True
    elif n >= FAILED_IN_A_ROW:
        print("%-22s ERROR    %d passes in a row failed (since %s): %s" % ("dataplane", n, st.get("failing_since", "?"), st["error"])); bad = True
    else:
        print("%-22s RETRYING the last pass failed (%d in a row; broken from %d): %s" % ("dataplane", n, FAILED_IN_A_ROW, st["error"]))
for k, v in sorted((st.get("problems") or {}).items()):
    print("%-22s PROBLEM  %s" % ("dataplane", v))
# status.json is written after each pass; a pass may take up to the agent's pass timeout.
limit = (st.get("pass_timeout_ms", 90000) + st.get("interval_ms", 2000)) / 1000 + 30
if age > limit:
    print("%-22s STALE    no pass for %.0fs (a pass takes at most %.0fs)" % ("dataplane", age, limit - 30)); bad = True
sys.exit(1 if bad else 0)
PYEOF
  fi
  return $rc
}

cmd_env() {
  echo "export OS_CLIENT_CONFIG_FILE=$CLOUDS_YAML"
  echo "export OS_CLOUD=devcloud-member"
  echo "# admin: export OS_CLOUD=devcloud"
}

cmd_wipe() {
  need_root
  log "wipe: stopping, then dropping every devcloud database and stored blob"
  cmd_stop
  configure_mariadb
  spawn mariadb /usr/sbin/mariadbd --user=mysql --pid-file=/run/mysqld/mysqld.pid
  WATCH=mariadb wait_for "mariadb to accept connections" "$WAIT" mysqladmin --protocol=socket -uroot ping
  local d sql=""
  for d in "${DATABASES[@]}"; do sql+="DROP DATABASE IF EXISTS $d;"; done
  printf '%s\n' "$sql" | mysql_root
  stop_sessions 60 mariadb
  rm -rf "$STATE/done" /var/lib/glance/images/* /etc/keystone/fernet-keys /etc/keystone/credential-keys
  rm -f /var/lib/nova/instances/compute_id "$STATE/lab-gateway"
  log "wipe: state removed; the next start bootstraps from scratch"
}

cmd_reset() {
  cmd_wipe
  cmd_start
}

# ---------------------------------------------------------------------------------------------
main() {
  mkdir -p "$RUN" "$LOGDIR"
  local cmd=${1:-}
  case $cmd in
    install) cmd_install ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status && exit 0 || exit 1 ;;
    env) cmd_env ;;
    reset) cmd_reset ;;
    wipe) cmd_wipe ;;
    *) sed -n '2,22p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; [[ -n $cmd ]] && exit 2; exit 0 ;;
  esac
}
main "$@"
