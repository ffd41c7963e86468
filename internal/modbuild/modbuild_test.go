package modbuild

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestProgramKeyCoversEveryInput(t *testing.T) {
	b := &Builder{CacheDir: t.TempDir()}
	base := Program{Name: "capo", Module: "sigs.k8s.io/cluster-api-provider-openstack", Version: "v0.14.7", Package: ".",
		Edits: []Edit{DropRequire{Path: "sigs.k8s.io/cluster-api/test"}}}
	key := func(p Program) string {
		k, err := b.programKey(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	k0 := key(base)
	if k0 != key(base) {
		t.Fatal("key is not stable")
	}
	variants := map[string]func(p *Program){
		"version": func(p *Program) { p.Version = "v0.14.8" },
		"package": func(p *Program) { p.Package = "./cmd/x" },
		"edits":   func(p *Program) { p.Edits = nil },
		"ldflags": func(p *Program) { p.LDFlags = []string{"-X a.b=c"} },
		"tags":    func(p *Program) { p.Tags = []string{"netgo"} },
		"test":    func(p *Program) { p.Test = true },
		"synthetic": func(p *Program) {
			p.Synthetic = &Synthetic{Require: []string{"k8s.io/kubernetes v1.37.2"}}
		},
	}
	for name, change := range variants {
		p := base
		change(&p)
		if key(p) == k0 {
			t.Errorf("changing %s does not change the key", name)
		}
	}
}

func TestDropRequireEditsGoMod(t *testing.T) {
	dir := t.TempDir()
	gomod := "module example.com/m\n\ngo 1.24\n\nrequire (\n\texample.com/a v1.0.0\n\texample.com/test v1.2.3\n)\n\nexclude example.com/test v1.2.3\n"
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(gomod), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := (DropRequire{Path: "example.com/test"}).apply(context.Background(), nil, dir); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(filepath.Join(dir, "go.mod"))
	if strings.Contains(string(got), "example.com/test") {
		t.Errorf("go.mod still names the dropped module:\n%s", got)
	}
	if !strings.Contains(string(got), "example.com/a v1.0.0") {
		t.Errorf("go.mod lost another requirement:\n%s", got)
	}
}

func TestCopyTreeMakesFilesWritable(t *testing.T) {
	src := t.TempDir()
	if err := os.MkdirAll(filepath.Join(src, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "sub", "a.go"), []byte("package a"), 0o444); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "run.sh"), []byte("#!/bin/sh"), 0o555); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "copy")
	if err := copyTree(src, dst); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]os.FileMode{"sub/a.go": 0o644, "run.sh": 0o755} {
		st, err := os.Stat(filepath.Join(dst, name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != want {
			t.Errorf("%s: mode %o, want %o", name, st.Mode().Perm(), want)
		}
	}
}

func TestImageKeyAndChanges(t *testing.T) {
	b := &Builder{CacheDir: t.TempDir()}
	img := Image{Ref: "registry.k8s.io/x:v1", Entrypoint: []string{"/manager"}, User: "65532:65532",
		Files: []File{{Path: "/manager", Data: []byte("binary"), Mode: 0o755}}, Labels: map[string]string{"a": "b"}}
	k1, err := b.imageKey(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	img2 := img
	img2.Files = []File{{Path: "/manager", Data: []byte("binary2"), Mode: 0o755}}
	k2, _ := b.imageKey(context.Background(), img2)
	if k1 == k2 {
		t.Error("a changed file does not change the image key")
	}
	got := strings.Join(changes(img, k1), "\n")
	for _, want := range []string{`ENTRYPOINT ["/manager"]`, "USER 65532:65532", `LABEL dev.capilab.cache-key="` + k1 + `"`, `LABEL a="b"`, "ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"} {
		if !strings.Contains(got, want) {
			t.Errorf("changes lack %q:\n%s", want, got)
		}
	}
}

func TestRootfsHasBaseAndFiles(t *testing.T) {
	var buf bytes.Buffer
	img := Image{Files: []File{{Path: "/usr/local/bin/tool", Data: []byte("x"), Mode: 0o755}}}
	if err := writeRootfs(&buf, img); err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(&buf)
	seen := map[string]*tar.Header{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		seen[h.Name] = h
	}
	for _, name := range []string{"etc/passwd", "etc/group", "tmp/", "home/nonroot/", "usr/", "usr/local/", "usr/local/bin/", "usr/local/bin/tool"} {
		if seen[name] == nil {
			t.Errorf("rootfs lacks %s", name)
		}
	}
	if h := seen["usr/local/bin/tool"]; h != nil && h.Mode != 0o755 {
		t.Errorf("tool mode %o", h.Mode)
	}
	if h := seen["tmp/"]; h != nil && h.Mode != 0o1777 {
		t.Errorf("tmp mode %o", h.Mode)
	}
	if h := seen["home/nonroot/"]; h != nil && h.Uid != NonRootUID {
		t.Errorf("home/nonroot owned by %d", h.Uid)
	}
}
