# What capilab's targets read after an apply (`tofu output -json`).

output "floating_ip" {
  description = "Address to reach the management node (ssh, API)."
  value       = openstack_networking_floatingip_v2.mgmt.address
}

output "server_id" {
  value = openstack_compute_instance_v2.mgmt.id
}

output "server_name" {
  value = openstack_compute_instance_v2.mgmt.name
}

output "fixed_ip" {
  value = openstack_networking_port_v2.mgmt.all_fixed_ips[0]
}

output "resources" {
  description = "Name and ID of every resource, for checks and reports."
  value = {
    network        = { name = openstack_networking_network_v2.mgmt.name, id = openstack_networking_network_v2.mgmt.id }
    subnet         = { name = openstack_networking_subnet_v2.mgmt.name, id = openstack_networking_subnet_v2.mgmt.id }
    router         = { name = openstack_networking_router_v2.mgmt.name, id = openstack_networking_router_v2.mgmt.id }
    security_group = { name = openstack_networking_secgroup_v2.mgmt.name, id = openstack_networking_secgroup_v2.mgmt.id }
    keypair        = { name = openstack_compute_keypair_v2.lab.name, id = openstack_compute_keypair_v2.lab.id }
    port           = { name = openstack_networking_port_v2.mgmt.name, id = openstack_networking_port_v2.mgmt.id }
    server         = { name = openstack_compute_instance_v2.mgmt.name, id = openstack_compute_instance_v2.mgmt.id }
    floating_ip    = { name = openstack_networking_floatingip_v2.mgmt.address, id = openstack_networking_floatingip_v2.mgmt.id }
    volume         = length(openstack_blockstorage_volume_v3.root) > 0 ? { name = openstack_blockstorage_volume_v3.root[0].name, id = openstack_blockstorage_volume_v3.root[0].id } : null
  }
}
