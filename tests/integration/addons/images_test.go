//go:build integration

package addons_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/capilab/capilab/internal/addons"
	"github.com/capilab/capilab/internal/modbuild"
)

// The local lab's images, without building them (the workload cluster
// test builds, pushes and runs them): for every container of the local
// lab's addons (OCCM, Cinder CSI with the snapshot controller,
// metrics-server, at the releases for the local node image's Kubernetes)
// capilab has a recipe, the Go module (and nested module) it builds from
// is served by the module proxy and verified by the checksum database at
// that version, and the image it assembles starts the container's program
// the way the manifest calls it (command, or args after the image's
// entrypoint, or args naming the program when the image has none).
func TestLocalLabImages(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	log := testLog(t)
	r, _ := renderer(t, log)
	p := pinned(t)
	sel, err := addons.Select(p.Addons, addons.Request{Settings: addons.Settings{CNI: "cilium", DeployMetrics: "true", DeployOCCM: "true",
		DeployCinderCSI: "true", DeployGatewayAPI: "true", DeployNginxIngress: "true", DeployCertManager: "true", DeployFlux: "true"},
		KubernetesVersion: p.KindNode.Kubernetes, LocalLab: true})
	if err != nil {
		t.Fatal(err)
	}
	var wanted []addons.Addon
	for _, a := range sel.Addons {
		if a.Name != addons.CNI { // the cni-agent is in the node image
			wanted = append(wanted, a)
		}
	}
	t.Logf("local lab (Kubernetes %s): %v; notes %q", p.KindNode.Kubernetes, wanted, sel.Notes)
	for _, off := range []addons.Name{addons.IngressNginx, addons.CertManager, addons.Flux} {
		if _, on := sel.Find(off); on {
			t.Errorf("local lab selects %s, whose images cannot be built here", off)
		}
	}
	b, err := r.Render(ctx, cluster, wanted)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range b.Notes() {
		t.Logf("note: %s", n)
	}
	refs := b.Images()
	sort.Strings(refs)
	t.Logf("images the local lab builds and pushes to the mirror: %v", refs)

	modules := map[string]bool{}
	for _, part := range b.Parts {
		for _, o := range part.Objects {
			for _, c := range podContainers(o) {
				ref, _ := c["image"].(string)
				li, err := addons.LocalImageFor(ref)
				if err != nil {
					t.Errorf("%s %s container %v: %v", o.GetKind(), o.GetName(), c["name"], err)
					continue
				}
				modules[li.Program.Module+"@"+li.Program.Version] = true
				for _, e := range li.Program.Edits {
					if n, ok := e.(modbuild.NestedModule); ok {
						modules[n.Module+"@"+n.Version] = true
					}
				}
				img := li.Image("/unused")
				binary := img.Files[0].Path
				command, args := stringSlice(c["command"]), stringSlice(c["args"])
				var runs string
				switch {
				case len(command) > 0:
					runs = command[0]
				case len(img.Entrypoint) > 0:
					runs = img.Entrypoint[0]
				case len(args) > 0:
					runs = args[0]
				default:
					runs = img.Cmd[0]
				}
				if runs != binary {
					t.Errorf("%s %s container %v (%s): runs %q, but the image holds its program at %s", o.GetKind(), o.GetName(), c["name"], ref, runs, binary)
				}
			}
		}
	}
	if len(modules) == 0 {
		t.Fatal("no images in the local lab's addons")
	}
	var list []string
	for m := range modules {
		list = append(list, m)
	}
	sort.Strings(list)
	for _, m := range list {
		info, err := modDownload(ctx, t.TempDir(), m)
		if err != nil {
			t.Error(err)
			continue
		}
		t.Logf("module %s %s", m, info.Sum)
	}
}

type moduleInfo struct{ Dir, Sum, Error string }

// modDownload runs `go mod download -json` outside any module (nothing of
// ours changes); the go command verifies the module against the checksum
// database. A failure to reach the proxy is tried again, twice.
func modDownload(ctx context.Context, dir, module string) (moduleInfo, error) {
	var last error
	for attempt := 0; attempt < 3; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return moduleInfo{}, ctx.Err()
			case <-time.After(time.Duration(attempt) * 5 * time.Second):
			}
		}
		cmd := exec.CommandContext(ctx, "go", "mod", "download", "-json", module)
		cmd.Dir = dir
		cmd.Env = append(cmd.Environ(), "GOFLAGS=")
		out, err := cmd.Output()
		var info moduleInfo
		_ = json.Unmarshal(out, &info)
		if err == nil && info.Error == "" && info.Dir != "" && strings.HasPrefix(info.Sum, "h1:") {
			return info, nil
		}
		last = fmt.Errorf("go mod download %s: %v %s", module, err, info.Error)
		if strings.Contains(info.Error, "verifying") || strings.Contains(info.Error, "SECURITY ERROR") || strings.Contains(info.Error, "not found") {
			return info, last // the module is refused or not served: no retry helps
		}
	}
	return moduleInfo{}, last
}

func podContainers(o *unstructured.Unstructured) []map[string]any {
	var out []map[string]any
	for _, field := range []string{"initContainers", "containers"} {
		cs, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", field)
		for _, c := range cs {
			if m, ok := c.(map[string]any); ok {
				out = append(out, m)
			}
		}
	}
	return out
}

func stringSlice(v any) []string {
	raw, _ := v.([]any)
	var out []string
	for _, r := range raw {
		if s, ok := r.(string); ok {
			out = append(out, s)
		}
	}
	return out
}
