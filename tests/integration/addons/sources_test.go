//go:build integration

package addons_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/capilab/capilab/internal/addons"
)

var cluster = addons.ClusterInfo{Name: "sources", Namespace: "sources", KubernetesVersion: "v1.34.3", PodCIDR: "192.168.0.0/16", MTU: 1450,
	CloudConf: []byte("[Global]\nauth-url=\"http://keystone.invalid/v3\"\n")}

// Every pinned module source renders, at every pinned release, with the
// cluster's name where OCCM and Cinder CSI need it; on a cloud the
// upstream images stay as they are, in the local lab every image the
// manifests name is one the lab can build.
func TestPinnedModuleSourcesRender(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	log := testLog(t)
	r, _ := renderer(t, log)
	p := pinned(t)
	for _, rel := range p.Addons.CloudProviderOpenStack.Releases {
		for _, local := range []bool{false, true} {
			sel := []addons.Addon{{Name: addons.OCCM, Version: rel.Version, LocalLab: local}, {Name: addons.CinderCSI, Version: rel.Version, LocalLab: local}}
			b, err := r.Render(ctx, cluster, sel)
			if err != nil {
				t.Fatalf("cloud-provider-openstack %s (local %t): %v", rel.Version, local, err)
			}
			assertClusterName(t, b, cluster.Name)
			if local {
				for _, img := range b.Images() {
					if !addons.Buildable(img) {
						t.Errorf("%s local: manifests name %s, for which capilab has no build recipe", rel.Version, img)
					}
				}
				t.Logf("cloud-provider-openstack %s, local lab: images %v; notes %q", rel.Version, b.Images(), b.Notes())
			} else if len(b.Notes()) > 0 {
				t.Errorf("%s on a cloud: manifests changed: %q", rel.Version, b.Notes())
			}
			if _, err := b.Objects(); err != nil {
				t.Errorf("%s: %v", rel.Version, err)
			}
		}
	}
	for _, sel := range [][]addons.Addon{
		{{Name: addons.MetricsServer, Version: p.Addons.MetricsServer.Pin}},
		{{Name: addons.GatewayAPI, Version: p.Addons.GatewayAPI.Pin}},
	} {
		b, err := r.Render(ctx, cluster, sel)
		if err != nil {
			t.Fatalf("%s: %v", sel[0], err)
		}
		if _, err := b.Objects(); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d objects, images %v", sel[0], len(b.Parts[0].Objects), b.Images())
	}
}

// cilium's chart, from the cilium module, rendered by helm built from its
// module: no registry and no chart repository needed.
func TestCiliumChartRenders(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	r, _ := renderer(t, testLog(t))
	p := pinned(t)
	start := time.Now()
	b, err := r.Render(ctx, cluster, []addons.Addon{{Name: addons.CNI, Variant: addons.Cilium, Version: p.Addons.Cilium.Pin}})
	if err != nil {
		t.Fatal(err)
	}
	objs := b.Parts[0].Objects
	t.Logf("cilium %s: %d objects in %s, images %v", p.Addons.Cilium.Pin, len(objs), time.Since(start).Round(time.Second), b.Images())
	cm := find(objs, "ConfigMap", "cilium-config")
	if cm == nil {
		t.Fatal("no ConfigMap cilium-config")
	}
	data, _, _ := unstructured.NestedStringMap(cm.Object, "data")
	if data["cluster-name"] != cluster.Name || data["ipam"] != "kubernetes" || data["mtu"] != "1450" {
		t.Errorf("cilium-config: cluster-name %q ipam %q mtu %q", data["cluster-name"], data["ipam"], data["mtu"])
	}
	for _, img := range b.Images() {
		if !strings.Contains(img, ":v"+strings.TrimPrefix(p.Addons.Cilium.Pin, "v")) && !strings.Contains(img, "@sha256:") {
			t.Errorf("image %s is neither the release's tag nor pinned by digest", img)
		}
	}
	if _, err := b.Objects(); err != nil {
		t.Fatal(err)
	}
}

// Download sources: this machine reaches only the Go module proxy, so each
// must fail loudly naming its URL; where the URL answers, its checksum is
// recorded and verified.
func TestDownloadSources(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	r, _ := renderer(t, testLog(t))
	p := pinned(t)
	for _, a := range []addons.Addon{
		{Name: addons.CNI, Variant: addons.Calico, Version: p.Addons.Calico.Pin},
		{Name: addons.IngressNginx, Version: p.Addons.IngressNginx.Pin},
		{Name: addons.CertManager, Version: p.Addons.CertManager.Pin},
		{Name: addons.Flux, Version: p.Addons.Flux.Pin},
	} {
		src := map[addons.Name]func() string{
			addons.CNI:          func() string { return addons.URL(p.Addons.Calico, a.Version) },
			addons.IngressNginx: func() string { return addons.URL(p.Addons.IngressNginx, a.Version) },
			addons.CertManager:  func() string { return addons.URL(p.Addons.CertManager, a.Version) },
			addons.Flux:         func() string { return addons.URL(p.Addons.Flux, a.Version) },
		}[a.Name]()
		b, err := r.Render(ctx, cluster, []addons.Addon{a})
		if reachable(ctx, src) {
			if err != nil {
				t.Errorf("%s: %s answers, yet: %v", a, src, err)
				continue
			}
			if _, err := r.Render(ctx, cluster, []addons.Addon{a}); err != nil {
				t.Errorf("%s: second render (verified against the recorded checksum): %v", a, err)
			}
			t.Logf("%s: %d objects from %s", a, len(b.Parts[0].Objects), src)
			continue
		}
		if err == nil || !strings.Contains(err.Error(), "download "+src) {
			t.Errorf("%s: want a failure naming %s, got %v", a, src, err)
			continue
		}
		var ce *addons.ChecksumError
		if errors.As(err, &ce) {
			t.Errorf("%s: unexpected checksum error: %v", a, err)
		}
		t.Logf("%s (offline here): %v", a, err)
	}
}

// reachable tells whether a URL's host accepts a TCP connection.
func reachable(ctx context.Context, url string) bool {
	host := strings.SplitN(strings.TrimPrefix(url, "https://"), "/", 2)[0]
	d := net.Dialer{Timeout: 5 * time.Second}
	c, err := d.DialContext(ctx, "tcp", host+":443")
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func find(objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	return nil
}

// assertClusterName checks OCCM's --cluster-name and Cinder CSI's
// --cluster resolve to the cluster's name (the markers of what they create).
func assertClusterName(t *testing.T, b *addons.Bundle, name string) {
	t.Helper()
	checked := 0
	for _, part := range b.Parts {
		for _, o := range part.Objects {
			if o.GetKind() != "DaemonSet" && o.GetKind() != "Deployment" {
				continue
			}
			cs, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
			for _, c := range cs {
				cm := c.(map[string]any)
				env := map[string]string{}
				envs, _ := cm["env"].([]any)
				for _, e := range envs {
					em := e.(map[string]any)
					if v, ok := em["value"].(string); ok {
						env[em["name"].(string)] = v
					}
				}
				args, _ := cm["args"].([]any)
				for _, a := range args {
					s := a.(string)
					for _, flag := range []string{"--cluster-name=", "--cluster="} {
						if v, ok := strings.CutPrefix(s, flag); ok {
							for k, ev := range env {
								v = strings.ReplaceAll(v, "$("+k+")", ev)
							}
							if v != name {
								t.Errorf("%s %s container %v: %s%s", o.GetKind(), o.GetName(), cm["name"], flag, v)
							}
							checked++
						}
					}
				}
			}
		}
	}
	if checked < 2 {
		t.Errorf("only %d cluster-name flags found: OCCM and the Cinder CSI controller must both carry one", checked)
	}
}
