# The management node's own network, routed to the external network.
# Names are the ones SCS's management VM used, so fullclean finds the
# resources of labs made by either tool.

resource "openstack_networking_network_v2" "mgmt" {
  name        = "${var.prefix}-net"
  description = "capilab lab ${var.prefix}: management node network"
  tags        = ["capilab-lab=${var.prefix}"]
}

resource "openstack_networking_subnet_v2" "mgmt" {
  name            = "${var.prefix}-subnet"
  description     = "capilab lab ${var.prefix}: management node subnet"
  network_id      = openstack_networking_network_v2.mgmt.id
  ip_version      = 4
  cidr            = var.mgmt_cidr
  dns_nameservers = var.dns_nameservers
  tags            = ["capilab-lab=${var.prefix}"]
}

resource "openstack_networking_router_v2" "mgmt" {
  name                = "${var.prefix}-rtr"
  description         = "capilab lab ${var.prefix}: management node router"
  external_network_id = var.external_network_id
  tags                = ["capilab-lab=${var.prefix}"]
}

resource "openstack_networking_router_interface_v2" "mgmt" {
  router_id = openstack_networking_router_v2.mgmt.id
  subnet_id = openstack_networking_subnet_v2.mgmt.id
}

# ssh and ICMP (and the management cluster's API port) from
# restrict_mgmt_server only.
resource "openstack_networking_secgroup_v2" "mgmt" {
  name        = "${var.prefix}-mgmt"
  description = "capilab lab ${var.prefix}: management node (ssh, ICMP, API from restrict_mgmt_server)"
  tags        = ["capilab-lab=${var.prefix}"]
}

locals {
  # One rule per allowed CIDR and service; IPv6 CIDRs get IPv6 rules.
  mgmt_services = merge(
    { ssh = { protocol = "tcp", port = 22 } },
    var.kube_api_port > 0 ? { kubeapi = { protocol = "tcp", port = var.kube_api_port } } : {},
  )
  mgmt_rules = merge(
    { for pair in setproduct(keys(local.mgmt_services), var.restrict_mgmt_server) :
      "${pair[0]} ${pair[1]}" => merge(local.mgmt_services[pair[0]], { cidr = pair[1] })
    },
    { for cidr in var.restrict_mgmt_server : "icmp ${cidr}" => { protocol = "icmp", port = 0, cidr = cidr } },
  )
}

resource "openstack_networking_secgroup_rule_v2" "mgmt" {
  for_each = local.mgmt_rules

  security_group_id = openstack_networking_secgroup_v2.mgmt.id
  direction         = "ingress"
  ethertype         = strcontains(each.value.cidr, ":") ? "IPv6" : "IPv4"
  protocol          = each.value.protocol == "icmp" && strcontains(each.value.cidr, ":") ? "ipv6-icmp" : each.value.protocol
  port_range_min    = each.value.port > 0 ? each.value.port : null
  port_range_max    = each.value.port > 0 ? each.value.port : null
  remote_ip_prefix  = each.value.cidr
  description       = "capilab lab ${var.prefix}: ${each.key}"
}
