package providers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/capilab/capilab/internal/modbuild"
)

// renderVersion changes when Render's output for the same inputs changes.
const renderVersion = "1"

// ComponentsFile is the name of the components file in the local repository.
const ComponentsFile = "components.yaml"

// Repository is a clusterctl local repository on disk:
// <Dir>/<provider label>/<version>/{components.yaml,metadata.yaml}.
type Repository struct{ Dir string }

// ComponentsURL is the file:// URL clusterctl's provider configuration takes.
func (r Repository) ComponentsURL(p Provider) string {
	return "file://" + filepath.Join(r.Dir, p.Label(), p.Version, ComponentsFile)
}

// Render writes p's components and metadata into the repository, unless
// they are there for the same inputs. modDir returns a module's directory
// (the module cache), downloading it when needed.
func (r Repository) Render(ctx context.Context, p Provider, modDir func(ctx context.Context, module, version string) (string, error)) error {
	dir := filepath.Join(r.Dir, p.Label(), p.Version)
	key := renderKey(p)
	if have, err := os.ReadFile(filepath.Join(dir, ".render-key")); err == nil && string(have) == key {
		return nil
	}
	src, err := modDir(ctx, p.Module, p.ModuleVersion)
	if err != nil {
		return err
	}
	components, err := renderComponents(p, src)
	if err != nil {
		return fmt.Errorf("render the components of %s %s from %s@%s: %w", p.Label(), p.Version, p.Module, p.ModuleVersion, err)
	}
	metadata := []byte(p.MetadataYAML)
	if p.Metadata != "" {
		if metadata, err = os.ReadFile(filepath.Join(src, p.Metadata)); err != nil {
			return fmt.Errorf("metadata of %s: %w", p.Label(), err)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, data := range map[string][]byte{ComponentsFile: components, "metadata.yaml": metadata, ".render-key": []byte(key)} {
		if name == ".render-key" {
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(dir, ".render-key"), []byte(key), 0o644)
}

func renderKey(p Provider) string {
	h := sha256.New()
	fmt.Fprintf(h, "render=%s\nprovider=%s %s %s\nmodule=%s@%s\nconfig=%s manifest=%s metadata=%s %q\n", renderVersion,
		p.Name, p.Type, p.Version, p.Module, p.ModuleVersion, p.ConfigDir, p.Manifest, p.Metadata, p.MetadataYAML)
	for _, img := range p.Images {
		fmt.Fprintf(h, "image %s -> %s\n", img.Placeholder, img.Ref)
	}
	for _, k := range sortedKeys(p.Labels) {
		fmt.Fprintf(h, "label %s=%s\n", k, p.Labels[k])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Kustomization is the kustomization capilab wraps around a provider's own
// configuration: what the providers' release processes do to it, and
// nothing else.
func Kustomization(p Provider, base string) ([]byte, error) {
	k := map[string]any{
		"apiVersion": "kustomize.config.k8s.io/v1beta1",
		"kind":       "Kustomization",
		"resources":  []string{base},
	}
	var images []map[string]string
	for _, img := range p.Images {
		if img.Placeholder == "" {
			continue
		}
		name, tag, ok := strings.Cut(img.Ref[strings.LastIndexByte(img.Ref, '/')+1:], ":")
		_ = name
		if !ok {
			return nil, fmt.Errorf("image %q has no tag", img.Ref)
		}
		images = append(images, map[string]string{"name": img.Placeholder, "newName": strings.TrimSuffix(img.Ref, ":"+tag), "newTag": tag})
	}
	if len(images) > 0 {
		k["images"] = images
	}
	if len(p.Labels) > 0 {
		k["labels"] = []map[string]any{{"pairs": p.Labels}}
	}
	if p.ConfigDir != "" {
		// Development configurations pull "Always"; releases set IfNotPresent,
		// which is also what lets preloaded images run without a registry.
		k["patches"] = []map[string]any{{
			"target": map[string]string{"kind": "Deployment"},
			"patch":  `[{"op": "replace", "path": "/spec/template/spec/containers/0/imagePullPolicy", "value": "IfNotPresent"}]`,
		}}
	}
	return yaml.Marshal(k)
}

// renderComponents runs kustomize (its Go API) over the wrapping
// kustomization.
func renderComponents(p Provider, moduleDir string) ([]byte, error) {
	tmp, err := os.MkdirTemp("", "capilab-render-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	base := filepath.Join(moduleDir, filepath.FromSlash(p.ConfigDir))
	if p.Manifest != "" {
		data, err := os.ReadFile(filepath.Join(moduleDir, filepath.FromSlash(p.Manifest)))
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(tmp, "manifest.yaml"), data, 0o644); err != nil {
			return nil, err
		}
		base = "manifest.yaml"
	} else if p.ConfigDir == "" {
		return nil, errors.New("neither a kustomize directory nor a manifest")
	} else if base, err = filepath.Rel(tmp, base); err != nil { // kustomize takes no absolute base
		return nil, err
	}
	kust, err := Kustomization(p, base)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(tmp, "kustomization.yaml"), kust, 0o644); err != nil {
		return nil, err
	}
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	res, err := k.Run(filesys.MakeFsOnDisk(), tmp)
	if err != nil {
		return nil, err
	}
	out, err := res.AsYaml()
	if err != nil {
		return nil, err
	}
	for _, img := range p.Images {
		if !strings.Contains(string(out), "image: "+img.Ref) {
			return nil, fmt.Errorf("the rendered components do not use image %s (the configuration's image name changed?)", img.Ref)
		}
	}
	return out, nil
}

// BuildImages builds every controller image of ps from its module (local
// source), in the order given; it returns the references.
func BuildImages(ctx context.Context, b *modbuild.Builder, ps []Provider) ([]string, error) {
	var refs []string
	for _, p := range ps {
		for _, img := range p.Images {
			bin, err := b.Build(ctx, img.Program)
			if err != nil {
				return nil, err
			}
			if _, err := b.EnsureImage(ctx, ControllerImage(img.Ref, bin)); err != nil {
				return nil, err
			}
			refs = append(refs, img.Ref)
		}
	}
	return refs, nil
}

// ControllerImage is the image of one controller binary: /manager, run as
// the nonroot user, as the providers' own Dockerfiles build it.
func ControllerImage(ref, binary string) modbuild.Image {
	return modbuild.Image{Ref: ref, Entrypoint: []string{"/manager"}, User: "65532:65532",
		Files:  []modbuild.File{{Path: "/manager", Source: binary, Mode: 0o755}},
		Labels: map[string]string{"dev.capilab.source": "built from its Go module by capilab"}}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
