# The remote management node of a capilab lab (MGMT_MODE=remote).
#
# capilab runs this module with OpenTofu or Terraform from a copy in the
# lab's state directory (state/terraform/, one workspace per prefix) and
# passes every variable in variables.tf; see docs/remote.md. The exact
# provider version comes from manifests/versions.yaml through an override
# file capilab writes next to the copy; this constraint is what the module
# itself needs.
terraform {
  required_version = ">= 1.6"

  required_providers {
    openstack = {
      source  = "terraform-provider-openstack/openstack"
      version = "~> 3.4"
    }
  }
}

provider "openstack" {
  # A clouds.yaml entry (OS_CLOUD); null: the OS_* environment variables.
  cloud = var.cloud == "" ? null : var.cloud
}
