package addons

import (
	"strings"
	"testing"

	"github.com/capilab/capilab/internal/versions"
)

// testPins is a small, fixed pin set: the tests do not move when
// manifests/versions.yaml does.
func testPins() versions.Addons {
	rel := func(vs ...string) []versions.AddonRelease {
		var out []versions.AddonRelease
		for _, v := range vs {
			out = append(out, versions.AddonRelease{Version: v, Sum: "h1:x"})
		}
		return out
	}
	return versions.Addons{
		Cilium:                 versions.AddonSource{Pin: "v1.18.4", Module: "example.com/cilium", Releases: rel("v1.18.4", "v1.17.9")},
		Calico:                 versions.AddonSource{Pin: "v3.30.4", URL: "https://example.com/{version}/calico.yaml", Releases: rel("v3.30.4")},
		CloudProviderOpenStack: versions.AddonSource{Module: "example.com/cpo", Releases: rel("v1.31.2", "v1.34.1", "v1.35.0", "v1.36.0")},
		SnapshotController:     versions.AddonSource{Pin: "v8.4.0", Module: "example.com/snap", Releases: rel("v8.4.0")},
		MetricsServer:          versions.AddonSource{Pin: "v0.8.0", Module: "example.com/ms", Releases: rel("v0.8.0", "v0.7.2")},
		IngressNginx:           versions.AddonSource{Pin: "v1.13.3", URL: "https://example.com/{version}/ingress.yaml", Releases: rel("v1.13.3")},
		CertManager:            versions.AddonSource{Pin: "v1.19.1", URL: "https://example.com/{version}/cm.yaml", Releases: rel("v1.19.1")},
		Flux:                   versions.AddonSource{Pin: "v2.7.3", URL: "https://example.com/{version}/flux.yaml", Releases: rel("v2.7.3")},
		GatewayAPI:             versions.AddonSource{Pin: "v1.4.0", Module: "example.com/gw", Releases: rel("v1.4.0")},
	}
}

func defaults() Settings {
	return Settings{CNI: "cilium", DeployMetrics: "true", DeployNginxIngress: "true", DeployGatewayAPI: "false",
		DeployCertManager: "false", DeployFlux: "false", DeployOCCM: "true", DeployCinderCSI: "true"}
}

func names(as []Addon) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.String())
	}
	return out
}

func TestSelect(t *testing.T) {
	tests := []struct {
		name   string
		edit   func(*Settings)
		k8s    string
		local  bool
		want   []string
		notes  []string // substrings, one per expected note
		reject string   // substring of the error; "" = no error
	}{
		{name: "defaults on a cloud", k8s: "v1.34.3",
			want:  []string{"cni (cilium) v1.18.4", "occm v1.34.1", "cinder-csi v1.34.1", "metrics-server v0.8.0", "ingress-nginx v1.13.3"},
			notes: []string{"occm v1.34.1: the release for the cluster's minor v1.34", "cinder-csi v1.34.1"}},
		{name: "everything, calico at a set version", k8s: "v1.35.0",
			edit: func(s *Settings) {
				s.CNI, s.DeployGatewayAPI, s.DeployCertManager, s.DeployFlux = "calico", "true", "true", "true"
			},
			want:  []string{"cni (calico) v3.30.4", "occm v1.35.0", "cinder-csi v1.35.0", "metrics-server v0.8.0", "gateway-api v1.4.0", "ingress-nginx v1.13.3", "cert-manager v1.19.1", "flux v2.7.3"},
			notes: []string{"occm v1.35.0", "cinder-csi v1.35.0"}},
		{name: "a version overrides the pin", k8s: "v1.34.3",
			edit:  func(s *Settings) { s.DeployMetrics, s.CNIVersion, s.DeployOCCM = "v0.7.2", "v1.17.9", "v1.36.0" },
			want:  []string{"cni (cilium) v1.17.9", "occm v1.36.0", "cinder-csi v1.34.1", "metrics-server v0.7.2", "ingress-nginx v1.13.3"},
			notes: []string{"cinder-csi v1.34.1: the release for the cluster's minor"}},
		{name: "no release for the minor: nearest, the older on a tie", k8s: "v1.32.11",
			want:  []string{"cni (cilium) v1.18.4", "occm v1.31.2", "cinder-csi v1.31.2", "metrics-server v0.8.0", "ingress-nginx v1.13.3"},
			notes: []string{"occm v1.31.2: no pinned release for the cluster's minor v1.32; the nearest pinned one", "cinder-csi v1.31.2"}},
		{name: "nearest is newer: the skew policy is named", k8s: "v1.33.7",
			want:  []string{"cni (cilium) v1.18.4", "occm v1.34.1", "cinder-csi v1.34.1", "metrics-server v0.8.0", "ingress-nginx v1.13.3"},
			notes: []string{"occm v1.34.1: no pinned release for the cluster's minor v1.33; the nearest pinned one (newer than the cluster", "cinder-csi"}},
		{name: "local lab: cni-agent, downloads off, OCCM nearest", k8s: "v1.37.2", local: true,
			edit: func(s *Settings) { s.DeployGatewayAPI, s.DeployCertManager, s.DeployFlux = "true", "true", "v2.7.3" },
			want: []string{"cni (cni-agent)", "occm v1.36.0", "cinder-csi v1.36.0", "metrics-server v0.8.0", "gateway-api v1.4.0"},
			notes: []string{"cni-agent (preloaded in the node image) stands in for cilium v1.18.4",
				"occm v1.36.0: no pinned release for the cluster's minor v1.37", "cinder-csi v1.36.0",
				"local lab: ingress-nginx is off (deploy_nginx_ingress=true)", "local lab: cert-manager is off", "local lab: flux is off (deploy_flux=v2.7.3)"}},
		{name: "everything off but the CNI", k8s: "v1.34.3",
			edit: func(s *Settings) {
				s.DeployMetrics, s.DeployNginxIngress, s.DeployOCCM, s.DeployCinderCSI = "false", "false", "false", "false"
			},
			want: []string{"cni (cilium) v1.18.4"}},
		{name: "unknown version", k8s: "v1.34.3", edit: func(s *Settings) { s.DeployMetrics = "v0.7.9" },
			reject: "deploy_metrics: metrics-server v0.7.9 is not a version capilab knows a source for (known: v0.8.0, v0.7.2;"},
		{name: "bad cluster version", k8s: "1.34", reject: "occm: kubernetes version \"1.34\""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := defaults()
			if tc.edit != nil {
				tc.edit(&s)
			}
			sel, err := Select(testPins(), Request{Settings: s, KubernetesVersion: tc.k8s, LocalLab: tc.local})
			if tc.reject != "" {
				if err == nil || !strings.Contains(err.Error(), tc.reject) {
					t.Fatalf("want an error containing %q, got %v", tc.reject, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := names(sel.Addons); strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("selected\n %q\nwant\n %q", got, tc.want)
			}
			if len(sel.Notes) != len(tc.notes) {
				t.Fatalf("notes %q, want %d matching %q", sel.Notes, len(tc.notes), tc.notes)
			}
			for i, n := range tc.notes {
				if !strings.Contains(sel.Notes[i], n) {
					t.Errorf("note %d = %q, want it to contain %q", i, sel.Notes[i], n)
				}
			}
			for _, a := range sel.Addons {
				if a.LocalLab != tc.local {
					t.Errorf("%s: LocalLab = %t", a, a.LocalLab)
				}
			}
		})
	}
}

func TestValidateOneLinePerProblem(t *testing.T) {
	s := defaults()
	s.DeployMetrics = "v9.9.9"
	s.DeployFlux = "latest"
	s.CNIVersion = "v1.0.0"
	s.DeployCinderCSI = "v1.33.1"
	err := Validate(testPins(), s)
	if err == nil {
		t.Fatal("no error")
	}
	lines := strings.Split(err.Error(), "\n")
	want := []string{
		"deploy_cindercsi: cinder-csi v1.33.1 is not a version capilab knows",
		"deploy_metrics: metrics-server v9.9.9 is not",
		`deploy_flux: "latest" is not true, false or a version`,
		"cni_version: cilium v1.0.0 is not",
	}
	if len(lines) != len(want) {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(want), err)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d = %q, want prefix %q", i, lines[i], w)
		}
	}
	s = defaults()
	s.CNI = "flannel"
	if err := Validate(testPins(), s); err == nil || err.Error() != `cni: "flannel" is not cilium or calico` {
		t.Errorf("cni: %v", err)
	}
	if err := Validate(testPins(), defaults()); err != nil {
		t.Errorf("defaults: %v", err)
	}
}

// The pinned set itself: every default selection resolves for every
// Kubernetes version of the image catalog and for the local node image.
func TestSelectWithThePinnedVersions(t *testing.T) {
	p, err := versions.Load()
	if err != nil {
		t.Fatal(err)
	}
	ks := append(p.CatalogVersions(), p.KindNode.Kubernetes)
	for _, k := range ks {
		for _, local := range []bool{false, true} {
			sel, err := Select(p.Addons, Request{Settings: defaults(), KubernetesVersion: k, LocalLab: local})
			if err != nil {
				t.Fatalf("%s (local %t): %v", k, local, err)
			}
			occm, ok := sel.Find(OCCM)
			if !ok || occm.Version == "" {
				t.Fatalf("%s: no OCCM selected", k)
			}
			t.Logf("kubernetes %s local=%t: %q; %q", k, local, names(sel.Addons), sel.Notes)
		}
	}
}
