package image

import (
	"testing"
	"time"
)

func TestPropertiesOfNodeContainerImages(t *testing.T) {
	built := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name           string
		spec           Spec
		want, wantNot  []string
		wantHypervisor string
	}{
		{name: "a VM image: SCS's properties", spec: Spec{KubernetesVersion: "v1.34.3", Source: "/tmp/x.img"},
			want: []string{"hypervisor_type", "hw_disk_bus", "hw_scsi_model", "hw_rng_model", "architecture"}, wantNot: []string{PropNodeContainerImage}, wantHypervisor: "kvm"},
		{name: "a node-container image: no hypervisor or disk model", spec: Spec{KubernetesVersion: "v1.37.2", Source: "/tmp/x.img", NodeContainerImage: "kindest/node:v1.37.2-local"},
			want: []string{PropNodeContainerImage, "architecture", "kubernetes_version"}, wantNot: []string{"hypervisor_type", "hw_disk_bus", "hw_scsi_model", "hw_rng_model"}},
		{name: "a node-container image keeps what the user asked for", spec: Spec{KubernetesVersion: "v1.37.2", Source: "/tmp/x.img", NodeContainerImage: "n:1",
			ExtraProperties: map[string]string{"hypervisor_type": "fake"}}, want: []string{"hypervisor_type"}, wantHypervisor: "fake"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.spec.properties("abc", "up1", built)
			for _, k := range tt.want {
				if _, ok := p[k]; !ok {
					t.Errorf("property %s missing: %v", k, p)
				}
			}
			for _, k := range tt.wantNot {
				if v, ok := p[k]; ok {
					t.Errorf("property %s=%q set", k, v)
				}
			}
			if tt.wantHypervisor != "" && p["hypervisor_type"] != tt.wantHypervisor {
				t.Errorf("hypervisor_type %q, want %q", p["hypervisor_type"], tt.wantHypervisor)
			}
		})
	}
}
