package versions

import (
	"strings"
	"testing"
)

func TestLoadEmbedded(t *testing.T) {
	p, err := Load()
	if err != nil {
		t.Fatalf("embedded versions.yaml does not load: %v", err)
	}
	if _, err := p.ResolveKubernetes(p.Workload.KubernetesDefault); err != nil {
		t.Fatalf("default workload version does not resolve: %v", err)
	}
	if p.KindNode.Image() != "kindest/node:"+p.KindNode.Tag {
		t.Fatalf("kind node image name: %s", p.KindNode.Image())
	}
}

func TestParseRejectsUnknownKeys(t *testing.T) {
	_, err := Parse([]byte("management:\n  kubernets: v1.2.3\n"))
	if err == nil || !strings.Contains(err.Error(), "kubernets") {
		t.Fatalf("want error naming the unknown key, got %v", err)
	}
}

func TestResolveKubernetes(t *testing.T) {
	p := &Pinned{ImageCatalog: []CatalogImage{
		{Kubernetes: "v1.34.3", URL: "u1"},
		{Kubernetes: "v1.34.10", URL: "u2"},
		{Kubernetes: "v1.33.7", URL: "u3"},
	}}
	tests := []struct {
		in, wantURL, wantErr string
	}{
		{in: "v1.34.3", wantURL: "u1"},
		{in: "1.34.3", wantURL: "u1"},
		{in: "v1.34.x", wantURL: "u2"},
		{in: "v1.33.x", wantURL: "u3"},
		{in: "v1.32.x", wantErr: "no v1.32.* image"},
		{in: "v1.34.4", wantErr: "no image in the catalog"},
		{in: "banana", wantErr: "not a version"},
		{in: "v1.34", wantErr: "not a version"},
		{in: "v1.x", wantErr: "not a version"},
		{in: "v1.34.3-rc.1", wantErr: "not a version"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			img, err := p.ResolveKubernetes(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("want error %q, got %v", tt.wantErr, err)
				}
				return
			}
			if err != nil || img.URL != tt.wantURL {
				t.Fatalf("got %+v, %v; want url %s", img, err, tt.wantURL)
			}
		})
	}
}

func TestAddonSourceValidation(t *testing.T) {
	tests := []struct {
		name string
		src  AddonSource
		want string // substring of the error; "" = valid
	}{
		{"module", AddonSource{Pin: "v1.0.0", Module: "m", Releases: []AddonRelease{{Version: "v1.0.0", Sum: "h1:x"}}}, ""},
		{"download", AddonSource{Pin: "v1.0.0", URL: "https://x/{version}/a.yaml", Releases: []AddonRelease{{Version: "v1.0.0"}}}, ""},
		{"module without sum", AddonSource{Module: "m", Releases: []AddonRelease{{Version: "v1.0.0"}}}, "needs its go.sum hash"},
		{"both sources", AddonSource{Module: "m", URL: "u{version}", Releases: []AddonRelease{{Version: "v1.0.0", Sum: "h1:x"}}}, "exactly one of module and url"},
		{"url without placeholder", AddonSource{URL: "https://x/a.yaml", Releases: []AddonRelease{{Version: "v1.0.0"}}}, "has no {version}"},
		{"pin not released", AddonSource{Pin: "v2.0.0", URL: "u{version}", Releases: []AddonRelease{{Version: "v1.0.0"}}}, "pin: v2.0.0 is not among"},
		{"twice", AddonSource{URL: "u{version}", Releases: []AddonRelease{{Version: "v1.0.0"}, {Version: "v1.0.0"}}}, "listed twice"},
		{"bad sha", AddonSource{URL: "u{version}", Releases: []AddonRelease{{Version: "v1.0.0", SHA256: "ABC"}}}, "not 64 lower-case hex"},
		{"crd module without its sum", AddonSource{Module: "m", CRDModule: "c", Releases: []AddonRelease{{Version: "v1.0.0", Sum: "h1:x"}}}, "needs crdSum"},
		{"no releases", AddonSource{Module: "m"}, "no releases"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := tt.src.validate("addons.x")
			if tt.want == "" {
				if len(errs) > 0 {
					t.Fatalf("unexpected: %v", errs)
				}
				return
			}
			for _, err := range errs {
				if strings.Contains(err.Error(), tt.want) {
					return
				}
			}
			t.Fatalf("want an error containing %q, got %v", tt.want, errs)
		})
	}
}
