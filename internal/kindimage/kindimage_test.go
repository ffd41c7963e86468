package kindimage

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/capilab/capilab/internal/versions"
)

func pins(t *testing.T) *versions.Pinned {
	t.Helper()
	p, err := versions.Load()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestKeyChangesWithEveryInput(t *testing.T) {
	base := Inputs{
		Pins:        pins(t).KindNode,
		KindVersion: "v0.1.0",
		GoModPins:   map[string]string{"k8s.io/client-go": "v0.1.0"},
		GoVersion:   "go1.0",
		RecipeHash:  "abc",
	}
	if base.Key() != base.Key() {
		t.Fatal("key is not deterministic")
	}
	seen := map[string]string{base.Key(): "base"}
	for name, mutate := range map[string]func(*Inputs){
		"kubernetes":  func(in *Inputs) { in.Pins.Kubernetes += "-x" },
		"etcd":        func(in *Inputs) { in.Pins.Etcd += "-x" },
		"coredns":     func(in *Inputs) { in.Pins.CoreDNS += "-x" },
		"pause":       func(in *Inputs) { in.Pins.Pause += "-x" },
		"containerd":  func(in *Inputs) { in.Pins.Containerd += "-x" },
		"debianSuite": func(in *Inputs) { in.Pins.DebianSuite += "-x" },
		"tag":         func(in *Inputs) { in.Pins.Tag += "-x" },
		"kind":        func(in *Inputs) { in.KindVersion += "-x" },
		"go":          func(in *Inputs) { in.GoVersion += "-x" },
		"recipe":      func(in *Inputs) { in.RecipeHash += "-x" },
		"gomod":       func(in *Inputs) { in.GoModPins = map[string]string{"k8s.io/client-go": "v0.2.0"} },
	} {
		in := base
		in.GoModPins = map[string]string{"k8s.io/client-go": "v0.1.0"}
		mutate(&in)
		k := in.Key()
		if prev, dup := seen[k]; dup {
			t.Errorf("changing %s gives the same key as %s", name, prev)
		}
		seen[k] = name
	}
}

func TestHashRecipe(t *testing.T) {
	fsys := fstest.MapFS{
		"build.sh":             {Data: []byte("echo hi\n"), Mode: 0o755},
		"cni-agent/main.go":    {Data: []byte("package main\n")},
		"cni-agent/x_test.go":  {Data: []byte("package main // test\n")},
		"cni-agent/agent.yaml": {Data: []byte("kind: DaemonSet\n")},
	}
	h1, err := HashRecipe(fsys)
	if err != nil {
		t.Fatal(err)
	}
	// a test file does not change the image
	fsys["cni-agent/x_test.go"] = &fstest.MapFile{Data: []byte("package main // changed\n")}
	if h2, _ := HashRecipe(fsys); h2 != h1 {
		t.Error("changing a _test.go file changed the recipe hash")
	}
	// content, mode and names do
	for name, change := range map[string]func(fstest.MapFS){
		"content": func(m fstest.MapFS) { m["build.sh"] = &fstest.MapFile{Data: []byte("echo ho\n"), Mode: 0o755} },
		"mode":    func(m fstest.MapFS) { m["build.sh"] = &fstest.MapFile{Data: []byte("echo hi\n"), Mode: 0o644} },
		"added":   func(m fstest.MapFS) { m["new.sh"] = &fstest.MapFile{Data: []byte("x")} },
	} {
		m := fstest.MapFS{}
		for k, v := range fsys {
			m[k] = v
		}
		change(m)
		h, err := HashRecipe(m)
		if err != nil {
			t.Fatal(err)
		}
		if h == h1 {
			t.Errorf("%s change did not change the recipe hash", name)
		}
	}
	if _, err := HashRecipe(fstest.MapFS{}); err == nil {
		t.Error("an empty recipe hashed without error")
	}
}

func TestModulePins(t *testing.T) {
	kind, k8s, err := ModulePins([]byte("module x\n\ngo 1.26\n\nrequire (\n\tsigs.k8s.io/kind v0.9.0\n\tk8s.io/client-go v0.9.1\n\tgithub.com/a/b v1.0.0\n)\n"))
	if err != nil {
		t.Fatal(err)
	}
	if kind != "v0.9.0" || k8s["k8s.io/client-go"] != "v0.9.1" || len(k8s) != 1 {
		t.Fatalf("got kind=%q k8s=%v", kind, k8s)
	}
	if _, _, err := ModulePins([]byte("module x\n")); err == nil {
		t.Fatal("go.mod without kind accepted")
	}
}

func TestBuildEnvCarriesEveryPin(t *testing.T) {
	p := pins(t).KindNode
	env := strings.Join(BuildEnv(Inputs{Pins: p, KindVersion: "v0.9.0"}, p.Image(), "k", "/repo", "/cache"), "\n")
	for _, want := range []string{
		"K8S_VERSION=" + p.Kubernetes, "ETCD_VERSION=" + p.Etcd, "COREDNS_VERSION=" + p.CoreDNS,
		"CONTAINERD_VERSION=" + p.Containerd, "PAUSE_VERSION=" + p.Pause, "DEBIAN_SUITE=" + p.DebianSuite,
		"KIND_VERSION=v0.9.0", "IMAGE=" + p.Image(), "CACHE_KEY=k", "REPO_ROOT=/repo", "CACHE_DIR=/cache",
	} {
		if !strings.Contains(env, want+"\n") && !strings.HasSuffix(env, want) {
			t.Errorf("build env lacks %s", want)
		}
	}
}

// fakeDocker knows images and their cache-key labels.
type fakeDocker struct {
	images map[string]string
	down   bool
}

func (f fakeDocker) ImageLabel(_ context.Context, image, _ string) (string, bool, error) {
	v, ok := f.images[image]
	return v, ok, nil
}

func (f fakeDocker) Ping(context.Context) error {
	if f.down {
		return errors.New("cannot connect")
	}
	return nil
}

func TestEnsureIsANoOpWhenTheKeyMatches(t *testing.T) {
	p := pins(t).KindNode
	b := &Builder{RepoRoot: "../..", Output: io.Discard}
	in, err := b.Inputs(p)
	if err != nil {
		t.Fatal(err)
	}
	// RepoRoot's build.sh must never run here: a matching label returns at once
	b.Docker = fakeDocker{images: map[string]string{p.Image(): in.Key()}}
	img, err := b.Ensure(context.Background(), p)
	if err != nil || img != p.Image() {
		t.Fatalf("Ensure = %q, %v", img, err)
	}
	st, err := b.Check(context.Background(), p)
	if err != nil || !st.Current {
		t.Fatalf("Check = %+v, %v", st, err)
	}
	b.Docker = fakeDocker{down: true}
	if _, err := b.Ensure(context.Background(), p); err == nil || !strings.Contains(err.Error(), "docker-engine.sh") {
		t.Fatalf("Ensure without an engine: %v", err)
	}
}

func TestSelect(t *testing.T) {
	p := pins(t)
	resolves := func(context.Context, string) ([]string, error) { return []string{"192.0.2.1"}, nil }
	fails := func(context.Context, string) ([]string, error) { return nil, errors.New("no such host") }
	empty := fakeDocker{images: map[string]string{}}
	withUpstream := fakeDocker{images: map[string]string{p.Management.KindNodeImage: ""}}
	for _, tc := range []struct {
		name      string
		explicit  string
		docker    fakeDocker
		resolve   Resolver
		wantImage string
		wantLocal bool
	}{
		{"explicit wins", "example.org/node:x", empty, resolves, "example.org/node:x", false},
		{"explicit local", p.KindNode.Image(), empty, resolves, p.KindNode.Image(), true},
		{"upstream present", "", withUpstream, fails, p.Management.KindNodeImage, false},
		{"registry resolves", "", empty, resolves, p.Management.KindNodeImage, false},
		{"offline", "", empty, fails, p.KindNode.Image(), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Select(context.Background(), tc.explicit, p, tc.docker, tc.resolve)
			if err != nil {
				t.Fatal(err)
			}
			if c.Image != tc.wantImage || c.Local != tc.wantLocal || c.Reason == "" {
				t.Fatalf("Select = %+v, want %s local=%t", c, tc.wantImage, tc.wantLocal)
			}
		})
	}
}

func TestRegistryHost(t *testing.T) {
	for in, want := range map[string]string{
		"kindest/node:v1":               "registry-1.docker.io",
		"busybox":                       "registry-1.docker.io",
		"registry.k8s.io/pause:3":       "registry.k8s.io",
		"localhost/x:y":                 "localhost",
		"myreg:5000/team/img:tag":       "myreg:5000",
		"capilab.local/cni-agent:1234a": "capilab.local",
	} {
		if got := RegistryHost(in); got != want {
			t.Errorf("RegistryHost(%q) = %q, want %q", in, got, want)
		}
	}
}
