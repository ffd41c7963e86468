package remote

import (
	"encoding/json"
	"slices"

	"github.com/capilab/capilab/internal/config"
	"github.com/capilab/capilab/internal/state"
)

// RootVolumeGiB is the size of the root volume made from the image when
// the flavor has no disk of its own (as SCS's management VM had), or the
// image's min_disk when that is larger.
const RootVolumeGiB = 30

// KubeAPIPort is the port of the management cluster's API server on the
// node, opened to restrict_mgmt_server next to ssh.
const KubeAPIPort = 6443

// Variables are the values capilab passes to terraform/ (variables.tf),
// written as <state_dir>/terraform/<prefix>/terraform.tfvars.json.
type Variables struct {
	Prefix              string   `json:"prefix"`
	Cloud               string   `json:"cloud"`
	AvailabilityZone    string   `json:"availability_zone"`
	MgmtCIDR            string   `json:"mgmt_cidr"`
	DNSNameservers      []string `json:"dns_nameservers"`
	RestrictMgmtServer  []string `json:"restrict_mgmt_server"`
	KubeAPIPort         int      `json:"kube_api_port"`
	ExternalNetworkID   string   `json:"external_network_id"`
	ExternalNetworkName string   `json:"external_network_name"`
	ImageID             string   `json:"image_id"`
	FlavorID            string   `json:"flavor_id"`
	RootVolumeSize      int      `json:"root_volume_size"`
	SSHPublicKey        string   `json:"ssh_public_key"`
	UserData            string   `json:"user_data"`
}

// Resolved is what the preflight found in the cloud for the settings.
type Resolved struct {
	ExternalNetwork Ref
	Image           Image
	Flavor          Flavor
}

// Ref names a cloud resource.
type Ref struct{ ID, Name string }

// Image is the node's image.
type Image struct {
	Ref
	MinDiskGiB int
}

// Flavor is the node's flavor.
type Flavor struct {
	Ref
	DiskGiB int
}

// NewVariables maps the settings and what the preflight resolved to the
// module's variables.
func NewVariables(s *config.Settings, r Resolved, publicKey, userData string) Variables {
	v := Variables{
		Prefix:              s.Prefix,
		Cloud:               s.Cloud,
		AvailabilityZone:    s.AvailabilityZone,
		MgmtCIDR:            s.MgmtCIDR,
		DNSNameservers:      slices.Clone(s.DNSNameservers),
		RestrictMgmtServer:  slices.Clone(s.RestrictMgmtServer),
		KubeAPIPort:         KubeAPIPort,
		ExternalNetworkID:   r.ExternalNetwork.ID,
		ExternalNetworkName: r.ExternalNetwork.Name,
		ImageID:             r.Image.ID,
		FlavorID:            r.Flavor.ID,
		SSHPublicKey:        publicKey,
		UserData:            userData,
	}
	if v.DNSNameservers == nil {
		v.DNSNameservers = []string{}
	}
	if r.Flavor.DiskGiB == 0 {
		v.RootVolumeSize = max(RootVolumeGiB, r.Image.MinDiskGiB)
	}
	return v
}

// Write writes the variables file (0600: it names the cloud and the lab's
// network layout, though no secret).
func (v Variables) Write(path string) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return state.WriteSecretFile(path, append(data, '\n'))
}
