package lab

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"golang.org/x/mod/semver"

	"github.com/capilab/capilab/internal/image"
)

// ImageSpec is the node image registration the settings ask for: the
// catalog entry of kubernetes_version (URL, sha256 or checksum file, OS
// version), or image_url / image_sha256 when set.
func (r *Run) ImageSpec() (image.Spec, error) {
	s := r.Settings
	if r.LocalLab() && s.ImageURL == "" {
		return r.localLabImageSpec()
	}
	spec := image.Spec{
		Raw:             s.KubeImageRaw,
		ExtraProperties: s.ImageExtraProperties,
		CacheDir:        filepath.Join(string(r.State()), "cache", "images"),
		Timeout:         s.ImageTimeout,
		ReuseForeign:    s.ImageReuseForeign,
	}
	if s.ImageURL != "" {
		spec.Source = s.ImageURL
		if !strings.Contains(s.ImageURL, "://") {
			spec.Source = r.Path(s.ImageURL) // a local path, relative to the working directory
		}
		spec.SHA256 = s.ImageSHA256
		spec.KubernetesVersion = "v" + strings.TrimPrefix(s.KubernetesVersion, "v")
		if semver.Canonical(spec.KubernetesVersion) != spec.KubernetesVersion {
			// v1.N.x: the patch the catalog pins names the image.
			entry, err := r.Loaded.Versions.ResolveKubernetes(s.KubernetesVersion)
			if err != nil {
				return image.Spec{}, &ExitError{Code: ExitBadInput, Err: err}
			}
			spec.KubernetesVersion = entry.Kubernetes
		}
	} else {
		entry, err := r.Loaded.Versions.ResolveKubernetes(s.KubernetesVersion)
		if err != nil {
			return image.Spec{}, &ExitError{Code: ExitBadInput, Err: err}
		}
		spec.Source, spec.SHA256, spec.ChecksumURL = entry.URL, entry.SHA256, entry.ChecksumURL
		spec.KubernetesVersion, spec.OSVersion = entry.Kubernetes, entry.OSVersion
	}
	spec.Name = s.ImageName
	if spec.Name == "" {
		spec.Name = image.DefaultName(spec.KubernetesVersion)
	}
	return spec, nil
}

// ImageRegister is `make image`: register the CAPI node image of
// kubernetes_version in Glance, or do nothing when it is there.
func ImageRegister(ctx context.Context, r *Run) error {
	spec, err := r.ImageSpec()
	if err != nil {
		return err
	}
	c, err := r.Cloud(ctx)
	if err != nil {
		return err
	}
	g, err := image.GlanceOf(c)
	if err != nil {
		return err
	}
	res, err := image.Register(ctx, g, spec, r.Log)
	if err != nil {
		return err
	}
	if res.Action == image.ReusedForeign {
		fmt.Fprintf(r.Stdout, "image %s: %s (id %s, owner project %s, visibility %s, %s, min_disk %d GiB) in %s\n",
			res.Name, res.Action, res.ID, res.Owner, res.Visibility, res.DiskFormat, res.MinDiskGiB, res.Took.Round(1e6))
	} else {
		fmt.Fprintf(r.Stdout, "image %s: %s (id %s, %s, min_disk %d GiB, sha256 %s) in %s\n",
			res.Name, res.Action, res.ID, res.DiskFormat, res.MinDiskGiB, res.SourceSHA256, res.Took.Round(1e6))
	}
	r.Log.Debug("image:register done", "requests", c.Stats.Requests(), "retries", c.Stats.Retries())
	return nil
}
