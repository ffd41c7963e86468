package modbuild

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/semver"
)

// Edit changes the writable copy of a module before it is built.
type Edit interface {
	apply(ctx context.Context, b *Builder, dir string) error
	key() string
}

// DropRequire removes a requirement from go.mod: for a module the proxy
// does not serve that only the module's tests import.
type DropRequire struct{ Path string }

func (e DropRequire) key() string { return "droprequire " + e.Path }

func (e DropRequire) apply(_ context.Context, _ *Builder, dir string) error {
	return editGoMod(dir, func(f *modfile.File) error {
		if err := f.DropRequire(e.Path); err != nil {
			return err
		}
		for _, x := range f.Exclude {
			if x.Mod.Path == e.Path {
				if err := f.DropExclude(x.Mod.Path, x.Mod.Version); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// NestedModule puts Module@Version into Dir (relative to the module root),
// where a `replace Module => ./Dir` of the module's go.mod expects it: the
// module zip leaves nested modules out.
type NestedModule struct{ Module, Version, Dir string }

func (e NestedModule) key() string { return fmt.Sprintf("nested %s@%s %s", e.Module, e.Version, e.Dir) }

func (e NestedModule) apply(ctx context.Context, b *Builder, dir string) error {
	src, err := b.download(ctx, e.Module, e.Version)
	if err != nil {
		return err
	}
	target := filepath.Join(dir, filepath.FromSlash(e.Dir))
	if err := os.RemoveAll(target); err != nil {
		return err
	}
	return copyTree(src, target)
}

func editsKey(edits []Edit) string {
	h := sha256.New()
	for _, e := range edits {
		fmt.Fprintln(h, e.key())
	}
	return hex.EncodeToString(h.Sum(nil))
}

func editGoMod(dir string, edit func(*modfile.File) error) error {
	path := filepath.Join(dir, "go.mod")
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	f, err := modfile.Parse(path, data, nil)
	if err != nil {
		return err
	}
	if err := edit(f); err != nil {
		return err
	}
	f.Cleanup()
	out, err := f.Format()
	if err != nil {
		return err
	}
	return os.WriteFile(path, out, 0o644)
}

// Synthetic is a module generated for one build: it requires modules and
// builds a package of one of them (a program whose module cannot be built
// on its own, like Kubernetes' e2e.test).
type Synthetic struct {
	// Require lists "module version" pairs.
	Require []string
	// KubernetesStaging, when set to a k8s.io/kubernetes version, replaces
	// every staging module k8s.io/kubernetes' go.mod points at
	// ./staging/src/… with its published version (v1.M.P → v0.M.P).
	KubernetesStaging string
}

func (b *Builder) writeSynthetic(ctx context.Context, dir string, p Program) error {
	if fileExists(filepath.Join(dir, ".capilab-ready")) {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f := &modfile.File{}
	if err := f.AddModuleStmt("capilab.local/build/" + p.Name); err != nil {
		return err
	}
	for _, r := range p.Synthetic.Require {
		mod, ver, ok := strings.Cut(r, " ")
		if !ok {
			return fmt.Errorf("require %q is not \"module version\"", r)
		}
		if err := f.AddRequire(mod, ver); err != nil {
			return err
		}
	}
	if v := p.Synthetic.KubernetesStaging; v != "" {
		replaces, err := b.kubernetesStagingReplaces(ctx, v)
		if err != nil {
			return err
		}
		for _, r := range replaces {
			if err := f.AddReplace(r[0], "", r[0], r[1]); err != nil {
				return err
			}
		}
	}
	f.Cleanup()
	data, err := f.Format()
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), data, 0o644); err != nil {
		return err
	}
	// Resolve the rest of the module graph (fills go.sum) for the package.
	args := []string{"list", "-deps"}
	if p.Test {
		args = append(args, "-test")
	}
	args = append(args, "-f", "{{.ImportPath}}", p.Package)
	if _, err := b.gocmd(dir, args...).Output(ctx); err != nil {
		return fmt.Errorf("resolve the module graph of %s: %w", p.Package, err)
	}
	return os.WriteFile(filepath.Join(dir, ".capilab-ready"), nil, 0o644)
}

// kubernetesStagingReplaces reads k8s.io/kubernetes@version's go.mod and
// maps each `k8s.io/X => ./staging/src/k8s.io/X` to [k8s.io/X, v0.M.P].
func (b *Builder) kubernetesStagingReplaces(ctx context.Context, version string) ([][2]string, error) {
	if !semver.IsValid(version) || !strings.HasPrefix(version, "v1.") {
		return nil, fmt.Errorf("kubernetes version %q is not v1.M.P", version)
	}
	staging := "v0." + strings.TrimPrefix(version, "v1.")
	dir, err := b.download(ctx, "k8s.io/kubernetes", version)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return nil, err
	}
	f, err := modfile.Parse("go.mod", data, nil)
	if err != nil {
		return nil, err
	}
	var out [][2]string
	for _, r := range f.Replace {
		if strings.HasPrefix(r.New.Path, "./staging/") {
			out = append(out, [2]string{r.Old.Path, staging})
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("k8s.io/kubernetes@%s: go.mod has no staging replaces", version)
	}
	return out, nil
}
