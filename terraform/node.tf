# The management node: a server with its port, a root volume when the
# flavor has no disk, and a floating IP.

resource "openstack_compute_keypair_v2" "lab" {
  name       = "${var.prefix}-keypair"
  public_key = var.ssh_public_key
}

resource "openstack_networking_port_v2" "mgmt" {
  name               = "${var.prefix}-mgmtcluster"
  description        = "capilab lab ${var.prefix}: management node port"
  network_id         = openstack_networking_network_v2.mgmt.id
  security_group_ids = [openstack_networking_secgroup_v2.mgmt.id]
  tags               = ["capilab-lab=${var.prefix}"]

  fixed_ip {
    subnet_id = openstack_networking_subnet_v2.mgmt.id
  }
}

resource "openstack_blockstorage_volume_v3" "root" {
  count = var.root_volume_size > 0 ? 1 : 0

  name              = "${var.prefix}-mgmtcluster"
  description       = "capilab lab ${var.prefix}: management node root volume"
  size              = var.root_volume_size
  image_id          = var.image_id
  availability_zone = var.availability_zone == "" ? null : var.availability_zone

  lifecycle {
    # A newer image of the same name must not replace a running node.
    ignore_changes = [image_id]
  }
}

resource "openstack_compute_instance_v2" "mgmt" {
  name              = "${var.prefix}-mgmtcluster"
  flavor_id         = var.flavor_id
  image_id          = var.root_volume_size > 0 ? null : var.image_id
  availability_zone = var.availability_zone == "" ? null : var.availability_zone
  key_pair          = openstack_compute_keypair_v2.lab.name
  user_data         = var.user_data
  metadata = {
    "capilab-lab" = var.prefix
  }

  network {
    port = openstack_networking_port_v2.mgmt.id
  }

  dynamic "block_device" {
    for_each = openstack_blockstorage_volume_v3.root
    content {
      uuid                  = block_device.value.id
      source_type           = "volume"
      destination_type      = "volume"
      boot_index            = 0
      delete_on_termination = false
    }
  }

  lifecycle {
    # The node is set up once: a later run from another git reference, a
    # newer image or an edited cloud-init must not replace it (and the
    # management cluster on it). `make clean` then `make create` does.
    ignore_changes = [user_data, image_id, image_name, block_device]
  }
}

resource "openstack_networking_floatingip_v2" "mgmt" {
  pool        = var.external_network_name
  port_id     = openstack_networking_port_v2.mgmt.id
  description = "capilab lab ${var.prefix}: management node"
  tags        = ["${var.prefix}-mgmtcluster", "capilab-lab=${var.prefix}"]

  # The port's subnet must be routed to the external network first.
  depends_on = [openstack_networking_router_interface_v2.mgmt]
}
