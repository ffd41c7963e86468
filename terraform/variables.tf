# Every variable is set by capilab from the lab's settings (lab.yaml, the
# environment) after it has checked them against the cloud: the image,
# flavor and external network are passed as IDs it resolved, so a plan
# needs no lookups and cannot pick a different image than the one checked.

variable "prefix" {
  description = "Lab prefix: every resource is named <prefix>-<what>."
  type        = string
  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", var.prefix)) && length(var.prefix) <= 20
    error_message = "The prefix must be a DNS label of at most 20 characters."
  }
}

variable "cloud" {
  description = "clouds.yaml entry the provider authenticates with (empty: OS_* environment variables)."
  type        = string
  default     = ""
}

variable "availability_zone" {
  description = "Nova availability zone of the server and its volume (empty: the cloud's default)."
  type        = string
  default     = ""
}

variable "mgmt_cidr" {
  description = "CIDR of the management network's subnet."
  type        = string
  default     = "10.0.0.0/24"
  validation {
    condition     = can(cidrhost(var.mgmt_cidr, 0))
    error_message = "mgmt_cidr must be a CIDR like 10.0.0.0/24."
  }
}

variable "dns_nameservers" {
  description = "DNS servers of the management subnet."
  type        = list(string)
  default     = []
}

variable "restrict_mgmt_server" {
  description = "CIDRs allowed to reach the management node (ssh, ICMP and the management cluster's API port)."
  type        = list(string)
  validation {
    condition     = length(var.restrict_mgmt_server) > 0 && alltrue([for c in var.restrict_mgmt_server : can(cidrhost(c, 0))])
    error_message = "restrict_mgmt_server must list at least one CIDR like 192.0.2.0/24 or 0.0.0.0/0."
  }
}

variable "kube_api_port" {
  description = "TCP port of the management cluster's API server on the node, opened to restrict_mgmt_server (0: not opened)."
  type        = number
  default     = 6443
}

variable "external_network_id" {
  description = "ID of the external network the router and the floating IP use."
  type        = string
}

variable "external_network_name" {
  description = "Name of the same external network (the floating IP's pool is given by name)."
  type        = string
}

variable "image_id" {
  description = "Glance image ID of the management node (setting mgmt_image)."
  type        = string
}

variable "flavor_id" {
  description = "Nova flavor ID of the management node (setting kind_flavor)."
  type        = string
}

variable "root_volume_size" {
  description = "Size in GiB of a root volume made from the image; 0 boots from the flavor's own disk (capilab sets it when the flavor has none)."
  type        = number
  default     = 0
  validation {
    condition     = var.root_volume_size >= 0
    error_message = "root_volume_size must be 0 or more."
  }
}

variable "ssh_public_key" {
  description = "Public key of the lab's keypair (the private key stays in capilab's state, 0600)."
  type        = string
}

variable "user_data" {
  description = "cloud-init user data of the node (rendered by capilab; holds no secret)."
  type        = string
}
