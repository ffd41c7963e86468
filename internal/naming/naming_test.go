package naming

import (
	"testing"
	"time"
)

func TestNamesAndDescriptions(t *testing.T) {
	tests := []struct {
		prefix, cluster, name, cloud, desc string
	}{
		{"capi", "", "capi-appcred", "capi", "capilab lab=capi"},
		{"capi", "foo-bar", "capi-foo-bar-appcred", "capi-foo-bar", "capilab lab=capi cluster=foo-bar"},
		{"capi-foo", "bar", "capi-foo-bar-appcred", "capi-foo-bar", "capilab lab=capi-foo cluster=bar"},
	}
	for _, tt := range tests {
		if got := AppCred(tt.prefix, tt.cluster); got != tt.name {
			t.Errorf("AppCred(%q, %q) = %q, want %q", tt.prefix, tt.cluster, got, tt.name)
		}
		if got := CloudEntry(tt.prefix, tt.cluster); got != tt.cloud {
			t.Errorf("CloudEntry(%q, %q) = %q, want %q", tt.prefix, tt.cluster, got, tt.cloud)
		}
		if got := AppCredDescription(tt.prefix, tt.cluster); got != tt.desc {
			t.Errorf("AppCredDescription(%q, %q) = %q, want %q", tt.prefix, tt.cluster, got, tt.desc)
		}
		p, c, ok := ParseAppCredDescription(AppCredDescription(tt.prefix, tt.cluster))
		if !ok || p != tt.prefix || c != tt.cluster {
			t.Errorf("ParseAppCredDescription(Description(%q, %q)) = %q, %q, %v", tt.prefix, tt.cluster, p, c, ok)
		}
	}
}

func TestParseAppCredDescription(t *testing.T) {
	tests := []struct {
		desc, prefix, cluster string
		ok                    bool
	}{
		{"capilab lab=capi", "capi", "", true},
		{"capilab lab=capi cluster=a", "capi", "a", true},
		{"capilab cluster=a lab=capi", "capi", "a", true},
		{"capilab lab=capi cluster=a created=2025", "capi", "a", true},
		{"  capilab   lab=capi  ", "capi", "", true},
		{"App Cred capi for cluster testcluster", "", "", false}, // SCS's
		{"", "", "", false},
		{"capilab", "", "", false},
		{"capilab cluster=a", "", "", false},
		{"capilab lab=", "", "", false},
		{"capilab lab=capi cluster=", "", "", false},
		{"capilab lab=capi lab=other", "", "", false},
		{"capilab lab=capi junk", "", "", false},
		{"capilabx lab=capi", "", "", false},
	}
	for _, tt := range tests {
		p, c, ok := ParseAppCredDescription(tt.desc)
		if p != tt.prefix || c != tt.cluster || ok != tt.ok {
			t.Errorf("ParseAppCredDescription(%q) = %q, %q, %v; want %q, %q, %v", tt.desc, p, c, ok, tt.prefix, tt.cluster, tt.ok)
		}
	}
}

func TestAppCredCreatedAt(t *testing.T) {
	at := time.Date(2026, 11, 30, 7, 0, 0, 0, time.UTC)
	d := AppCredDescriptionAt("capi", "a", at.Add(300*time.Millisecond))
	if d != "capilab lab=capi cluster=a created=2026-11-30T07:00:00Z" {
		t.Errorf("AppCredDescriptionAt = %q", d)
	}
	if got := AppCredCreatedAt(d); !got.Equal(at) {
		t.Errorf("AppCredCreatedAt = %v, want %v", got, at)
	}
	for _, d := range []string{"capilab lab=capi", "App Cred capi created=2026-11-30T07:00:00Z", "capilab lab=capi created=yesterday"} {
		if got := AppCredCreatedAt(d); !got.IsZero() {
			t.Errorf("AppCredCreatedAt(%q) = %v, want zero", d, got)
		}
	}
}

func TestNamesReadBack(t *testing.T) {
	if c, ok := ClusterOfAppCred("capi", AppCred("capi", "foo-bar")); !ok || c != "foo-bar" {
		t.Errorf("ClusterOfAppCred: %q %v", c, ok)
	}
	for _, name := range []string{AppCred("capi", ""), "capi-appcred-x", "other-a-appcred"} {
		if c, ok := ClusterOfAppCred("capi", name); ok {
			t.Errorf("ClusterOfAppCred(capi, %q) = %q, want none", name, c)
		}
	}
	if p, ok := LabOfKeypair(Keypair("lab1")); !ok || p != "lab1" {
		t.Errorf("LabOfKeypair: %q %v", p, ok)
	}
	if p, ok := LabOfMgmtServer(MgmtServer("lab1")); !ok || p != "lab1" {
		t.Errorf("LabOfMgmtServer: %q %v", p, ok)
	}
	if p, ok := TaggedLab(LabTag("lab1")); !ok || p != "lab1" {
		t.Errorf("TaggedLab: %q %v", p, ok)
	}
}
