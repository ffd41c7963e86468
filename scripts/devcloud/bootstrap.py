#!/usr/bin/python3
"""devcloud bootstrap: the parts of `devcloud.sh start` that talk to the APIs.

    bootstrap.py identity     service project/users, roles, catalog, the member user
    bootstrap.py wait         wait for nova-compute (mapped to cell1) and cinder-volume
    bootstrap.py resources    flavors, image, external network, quotas
    bootstrap.py lab-region   the catalog's second region, reachable from containers
    bootstrap.py clouds-yaml  merge the devcloud entries into clouds.yaml

Everything is get-or-create, so re-running is safe. Credentials come from the
environment (OS_* for admin, DEVCLOUD_MEMBER_PASS, DEVCLOUD_SERVICE_PASS) and
are never printed.
"""

import io
import os
import sys
import time

import openstack
import yaml

REGION = "RegionOne"
KEYSTONE = "http://127.0.0.1:5000/v3"
MEMBER = "devcloud-member"  # project and user name
# The second region: the same services, at the gateway address of the external
# network `public` (the host's side of its Docker mirror), where the data-plane
# agent forwards every API port to 127.0.0.1. Reachable from the host, from kind
# pods and from node containers alike. Only `public` endpoints: services that look
# up each other without a region prefer `internal` ones, so they stay on RegionOne.
LAB_REGION = "RegionOne-docker"
LAB_CLOUD = "devcloud-lab"  # clouds.yaml entry: the member user through LAB_REGION
EXTERNAL_NETWORK = "public"
SERVICE_USERS = ["glance", "placement", "neutron", "nova", "octavia", "cinder"]
LB_ROLES = ["load-balancer_member", "load-balancer_observer",
            "load-balancer_global_observer", "load-balancer_quota_admin",
            "load-balancer_admin"]
CATALOG = [  # name, type, URL
    ("glance", "image", "http://127.0.0.1:9292"),
    ("placement", "placement", "http://127.0.0.1:8778"),
    ("nova", "compute", "http://127.0.0.1:8774/v2.1"),
    ("neutron", "network", "http://127.0.0.1:9696"),
    ("octavia", "load-balancer", "http://127.0.0.1:9876"),
    ("cinderv3", "volumev3", "http://127.0.0.1:8776/v3/%(project_id)s"),
    ("cinder", "block-storage", "http://127.0.0.1:8776/v3/%(project_id)s"),
]
# name, vcpus, ram MiB, disk GiB. SCS names as the lab uses them, m1.* for habit.
FLAVORS = [
    ("m1.tiny", 1, 512, 1), ("m1.small", 1, 2048, 20), ("m1.medium", 2, 4096, 40),
    ("SCS-1V-2", 1, 2048, 0), ("SCS-2V-4", 2, 4096, 0), ("SCS-4V-8", 4, 8192, 0),
    ("SCS-2V-4-20s", 2, 4096, 20), ("SCS-4V-16-100s", 4, 16384, 100),
]
# Enough for ~20 clusters' worth of resources per project.
COMPUTE_QUOTAS = dict(instances=200, cores=1000, ram=2048000, key_pairs=200,
                      server_groups=100, server_group_members=100)
NETWORK_QUOTAS = dict(networks=200, subnets=200, ports=2000, routers=100,
                      floating_ips=200, security_groups=300,
                      security_group_rules=6000)
VOLUME_QUOTAS = dict(volumes=300, gigabytes=20000, snapshots=300,
                     backups=100, backup_gigabytes=10000)
LB_QUOTAS = dict(load_balancers=100, listeners=500, pools=500, members=2000,
                 health_monitors=500)


def log(msg):
    print("[bootstrap] " + msg, flush=True)


def wait_for(what, check, timeout):
    log("waiting for %s (up to %ds)" % (what, timeout))
    start = time.monotonic()
    while True:
        try:
            if check():
                log("ready: %s (%.0fs)" % (what, time.monotonic() - start))
                return
        except Exception as e:  # the service may still be starting
            last = e
        else:
            last = None
        if time.monotonic() - start > timeout:
            raise SystemExit("timed out after %ds waiting for %s%s" % (
                timeout, what, ": %s" % last if last else ""))
        time.sleep(1)


def admin():
    return openstack.connect(
        auth_url=KEYSTONE, username="admin", password=os.environ["OS_PASSWORD"],
        project_name="admin", user_domain_name="Default",
        project_domain_name="Default", region_name=REGION,
        identity_api_version="3", interface="public",
        # only these arguments: OS_CLOUD or clouds.yaml would be merged in and
        # could make this connection another user's
        load_yaml_config=False, load_envvars=False)


def get_or_create(find, create, what):
    obj = find()
    if obj is None:
        obj = create()
        log("created %s" % what)
    return obj


def identity():
    conn = admin()
    idn = conn.identity
    # List once and compare locally: a get-or-create per object would cost
    # several round trips each (find by ID, then by name).
    projects = {p.name: p for p in idn.projects(domain_id="default")}
    users = {u.name: u for u in idn.users(domain_id="default")}
    roles = {r.name: r for r in idn.roles()}
    services = {s.type: s for s in idn.services()}
    endpoints = {(e.service_id, e.interface): e for e in idn.endpoints()}

    def project(name, description):
        if name not in projects:
            projects[name] = idn.create_project(name=name, domain_id="default",
                                                description=description)
            log("created project " + name)
        return projects[name]

    def user(name, password, default_project=None):
        if name not in users:
            users[name] = idn.create_user(
                name=name, domain_id="default", password=password,
                default_project_id=default_project.id if default_project else None)
            log("created user " + name)
        else:  # keep the password in step with secrets.env
            idn.update_user(users[name], password=password)
        return users[name]

    for r in ["admin", "member", "reader", "service"] + LB_ROLES:
        if r not in roles:
            roles[r] = idn.create_role(name=r)
            log("created role " + r)

    # Re-set admin's password so that it is hashed with devcloud's cheap rounds too
    # (keystone-manage bootstrap hashed it with the default, ~0.3 s of CPU per login).
    user("admin", os.environ["OS_PASSWORD"])

    service_project = project("service", "devcloud service users")
    spw = os.environ["DEVCLOUD_SERVICE_PASS"]
    for u in SERVICE_USERS:
        su = user(u, spw)
        for r in ("admin", "service"):
            idn.assign_project_role_to_user(service_project, su, roles[r])

    for name, stype, url in CATALOG:
        svc = services.get(stype)
        if svc is None:
            svc = idn.create_service(name=name, type=stype, enabled=True)
            log("created service %s (%s)" % (name, stype))
        for iface in ("public", "internal", "admin"):
            e = endpoints.get((svc.id, iface))
            if e is None:
                idn.create_endpoint(service_id=svc.id, interface=iface, url=url,
                                    region_id=REGION, enabled=True)
                log("created %s endpoint of %s" % (iface, stype))
            elif e.url != url:
                idn.update_endpoint(e, url=url)
                log("updated %s endpoint of %s" % (iface, stype))

    mp = project(MEMBER, "devcloud: a tenant, like a real one")
    mu = user(MEMBER, os.environ["DEVCLOUD_MEMBER_PASS"], mp)
    for r in ("member", "load-balancer_member"):
        idn.assign_project_role_to_user(mp, mu, roles[r])
    log("identity: service users, catalog (%d services) and user %s with roles "
        "member, load-balancer_member are in place" % (len(CATALOG), MEMBER))


def wait():
    timeout = int(os.environ.get("DEVCLOUD_WAIT", "180"))
    conn = admin()

    def compute_ready():
        up = [s for s in conn.compute.services()
              if s.binary == "nova-compute" and s.state == "up"]
        hyps = list(conn.compute.hypervisors())
        return bool(up) and bool(hyps)
    wait_for("nova-compute to be up and mapped to cell1", compute_ready, timeout)

    def volume_ready():
        r = conn.block_storage.get("/os-services")
        r.raise_for_status()
        return any(s["binary"] == "cinder-volume" and s["state"] == "up"
                   for s in r.json()["services"])
    wait_for("cinder-volume to be up", volume_ready, timeout)


def resources():
    conn = admin()

    for name, vcpus, ram, disk in FLAVORS:
        if conn.compute.find_flavor(name) is None:
            conn.compute.create_flavor(name=name, vcpus=vcpus, ram=ram,
                                       disk=disk, is_public=True)
            log("created flavor " + name)

    if conn.image.find_image("devcloud-tiny") is None:
        conn.create_image("devcloud-tiny", data=io.BytesIO(b"\0" * 1024),
                          disk_format="raw", container_format="bare",
                          visibility="public", wait=True)
        log("created image devcloud-tiny (1 KiB raw; nothing boots here)")

    net = conn.network.find_network("public")
    if net is None:
        net = conn.network.create_network(
            name="public", is_router_external=True,
            provider_network_type="flat", provider_physical_network="public")
        log("created external network public")
    if conn.network.find_subnet("public-subnet") is None:
        conn.network.create_subnet(
            name="public-subnet", network_id=net.id, ip_version=4,
            cidr="172.24.4.0/24", gateway_ip="172.24.4.1", is_dhcp_enabled=False,
            allocation_pools=[{"start": "172.24.4.10", "end": "172.24.4.250"}])
        log("created subnet public-subnet 172.24.4.0/24")

    for pname in ("admin", MEMBER):
        project = conn.identity.find_project(pname, domain_id="default")
        conn.set_compute_quotas(project.id, **COMPUTE_QUOTAS)
        conn.set_network_quotas(project.id, **NETWORK_QUOTAS)
        conn.set_volume_quotas(project.id, **VOLUME_QUOTAS)
        conn.load_balancer.update_quota(project.id, **LB_QUOTAS)
    log("resources: flavors, image devcloud-tiny, network public, raised quotas "
        "for projects admin and %s" % MEMBER)


def lab_gateway(conn):
    """The gateway address of the external network's IPv4 subnet, from Neutron."""
    net = conn.network.find_network(EXTERNAL_NETWORK)
    if net is None:
        raise SystemExit("lab-region: no network %r (run the resources step first)" % EXTERNAL_NETWORK)
    for sid in net.subnet_ids:
        sub = conn.network.get_subnet(sid)
        if sub.ip_version == 4 and sub.gateway_ip:
            return sub.gateway_ip
    raise SystemExit("lab-region: network %r has no IPv4 subnet with a gateway" % EXTERNAL_NETWORK)


def lab_url(url, gateway):
    return url.replace("127.0.0.1", gateway, 1)


def lab_region():
    """Region LAB_REGION: public endpoints of every service at the gateway of
    `public`. RegionOne stays exactly as it is."""
    conn = admin()
    idn = conn.identity
    gw = lab_gateway(conn)
    if LAB_REGION not in {r.id for r in idn.regions()}:
        idn.create_region(id=LAB_REGION, description=(
            "devcloud: the same services at %s, reachable from Docker containers "
            "through the data-plane agent" % gw))
        log("created region " + LAB_REGION)
    services = {s.type: s for s in idn.services()}
    endpoints = {(e.service_id, e.interface, e.region_id): e for e in idn.endpoints()}
    want = [(services["identity"], lab_url(KEYSTONE, gw))]
    for _, stype, url in CATALOG:
        want.append((services[stype], lab_url(url, gw)))
    for svc, url in want:
        e = endpoints.get((svc.id, "public", LAB_REGION))
        if e is None:
            idn.create_endpoint(service_id=svc.id, interface="public", url=url,
                                region_id=LAB_REGION, enabled=True)
            log("created %s endpoint of %s: %s" % (LAB_REGION, svc.type, url))
        elif e.url != url:
            idn.update_endpoint(e, url=url)
            log("updated %s endpoint of %s: %s" % (LAB_REGION, svc.type, url))
    log("lab-region: region %s has public endpoints of %d services at %s"
        % (LAB_REGION, len(want), gw))
    with open(os.environ["DEVCLOUD_LAB_GATEWAY_FILE"], "w") as f:
        f.write(gw + "\n")  # devcloud.sh passes it on to clouds-yaml and the agent


def clouds_yaml():
    path = os.environ["CLOUDS_YAML"]
    common = dict(region_name=REGION, interface="public", identity_api_version=3)
    entries = {
        "devcloud": dict(auth=dict(
            auth_url=KEYSTONE, username="admin", password=os.environ["OS_PASSWORD"],
            project_name="admin", user_domain_name="Default",
            project_domain_name="Default"), **common),
        MEMBER: dict(auth=dict(
            auth_url=KEYSTONE, username=MEMBER,
            password=os.environ["DEVCLOUD_MEMBER_PASS"], project_name=MEMBER,
            user_domain_name="Default", project_domain_name="Default"), **common),
    }
    gw = os.environ.get("DEVCLOUD_LAB_GATEWAY")
    if gw:
        entries[LAB_CLOUD] = dict(
            auth=dict(auth_url=lab_url(KEYSTONE, gw), username=MEMBER,
                      password=os.environ["DEVCLOUD_MEMBER_PASS"], project_name=MEMBER,
                      user_domain_name="Default", project_domain_name="Default"),
            region_name=LAB_REGION, interface="public", identity_api_version=3)
    doc = {}
    if os.path.exists(path):
        with open(path) as f:
            doc = yaml.safe_load(f) or {}
    clouds = doc.setdefault("clouds", {}) or {}
    doc["clouds"] = clouds
    if all(clouds.get(k) == v for k, v in entries.items()):
        os.chmod(path, 0o600)
        log("clouds.yaml: entries %s up to date in %s" % (", ".join(sorted(entries)), path))
        return
    clouds.update(entries)
    os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
    tmp = path + ".devcloud.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(doc, f, default_flow_style=False, sort_keys=True)
    os.replace(tmp, path)
    log("clouds.yaml: wrote entries %s into %s (other entries kept)" % (", ".join(sorted(entries)), path))


if __name__ == "__main__":
    cmds = {"identity": identity, "wait": wait, "resources": resources,
            "lab-region": lab_region, "clouds-yaml": clouds_yaml}
    if len(sys.argv) != 2 or sys.argv[1] not in cmds:
        raise SystemExit("usage: bootstrap.py " + "|".join(cmds))
    cmds[sys.argv[1]]()
