package image

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// Tag marks the images capilab registered and may replace or delete.
const Tag = "capilab-managed"

// PropSourceSHA256 holds the sha256 of the source file an image was
// registered from; the idempotency check compares it.
const PropSourceSHA256 = "capilab_source_sha256"

// PropNodeContainerImage marks a node image of devcloud's data plane.
const PropNodeContainerImage = "capilab_node_container_image"

// PropUploadID is a random value per create attempt, so that an image whose
// create response was lost can be found and adopted instead of duplicated.
const PropUploadID = "capilab_upload_id"

// NamePrefix is the default image name without the Kubernetes version.
const NamePrefix = "ubuntu-capi-image-"

// DefaultName is the SCS image name for a Kubernetes version: ubuntu-capi-image-v1.2.3.
func DefaultName(kubernetesVersion string) string {
	return NamePrefix + "v" + strings.TrimPrefix(kubernetesVersion, "v")
}

// Spec says which image to register and from where.
type Spec struct {
	// Name is the Glance image name (required).
	Name string
	// Source is an https:// or http:// URL, a file:// URL or a local path (required).
	Source string
	// SHA256 is the expected sha256 (hex) of Source. When empty, ChecksumURL
	// is read; when both are empty (local files only) the file's own hash is
	// recorded.
	SHA256 string
	// ChecksumURL is a published checksum file for Source ("<hex>  <file>"
	// lines as sha256sum writes them, BSD "SHA256 (file) = <hex>", or bare hex).
	ChecksumURL string
	// Raw converts a qcow2 source to raw before upload (kube_image_raw).
	Raw bool
	// KubernetesVersion is recorded as property kubernetes_version (required).
	KubernetesVersion string
	// OSVersion is recorded as os_version when known ("24.04").
	OSVersion string
	// NodeContainerImage marks a node image of devcloud's data plane: its
	// servers run as containers of this image (property
	// capilab_node_container_image); empty for real node images.
	NodeContainerImage string
	// ExtraProperties are added after the SCS properties and may override
	// them; capilab's own (capilab_*) cannot be overridden.
	ExtraProperties map[string]string
	// CacheDir keeps downloads and conversions (required for http(s) sources and Raw).
	CacheDir string
	// Timeout bounds waiting for the image to become active (default 30m).
	Timeout time.Duration
	// ProgressEvery is how often long steps log progress (default 10s).
	ProgressEvery time.Duration
	// PollInterval is how often waits read the image's status (default 2s).
	PollInterval time.Duration
	// RetryDelay is the first backoff between attempts of a failed create,
	// upload or download; it doubles each attempt (default 1s).
	RetryDelay time.Duration
	// HTTPClient downloads sources and checksum files (default: proxy from
	// the environment, no overall timeout, 30s to connect and to get headers).
	HTTPClient *http.Client
	// QemuImg is the qemu-img binary (default: "qemu-img" on PATH).
	QemuImg string
	// ReuseForeign uses an active image of Name that capilab did not
	// register (one the cloud publishes, as SCS reused) as it is, instead
	// of stopping: its source and checksum cannot be verified, and the
	// result says whose it is.
	ReuseForeign bool
}

var hexSHA256 = regexp.MustCompile(`^[0-9a-f]{64}$`)

// sourceKind is how a source is fetched.
type sourceKind int

const (
	sourceLocal sourceKind = iota
	sourceHTTP
)

// withDefaults validates the spec and fills in defaults.
func (s Spec) withDefaults() (Spec, error) {
	var errs []error
	if s.Name == "" {
		errs = append(errs, errors.New("no image name"))
	}
	if s.Source == "" {
		errs = append(errs, errors.New("no image source"))
	}
	if s.KubernetesVersion == "" {
		errs = append(errs, errors.New("no kubernetes version"))
	}
	s.SHA256 = strings.ToLower(strings.TrimSpace(s.SHA256))
	if s.SHA256 != "" && !hexSHA256.MatchString(s.SHA256) {
		errs = append(errs, fmt.Errorf("sha256 %q is not 64 hex digits", s.SHA256))
	}
	kind, _, err := parseSource(s.Source)
	if err != nil {
		errs = append(errs, err)
	}
	if kind == sourceHTTP && s.SHA256 == "" && s.ChecksumURL == "" {
		errs = append(errs, fmt.Errorf("source %s: a download needs a sha256 or a checksum URL to be verified", s.Source))
	}
	if (kind == sourceHTTP || s.Raw) && s.CacheDir == "" {
		errs = append(errs, errors.New("no cache directory for the download or conversion"))
	}
	for k := range s.ExtraProperties {
		if strings.HasPrefix(k, "capilab_") {
			errs = append(errs, fmt.Errorf("extra property %q: capilab_ properties are set by capilab", k))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return s, fmt.Errorf("image %s: %w", s.Name, err)
	}
	if s.Timeout <= 0 {
		s.Timeout = 30 * time.Minute
	}
	if s.ProgressEvery <= 0 {
		s.ProgressEvery = 10 * time.Second
	}
	if s.PollInterval <= 0 {
		s.PollInterval = 2 * time.Second
	}
	if s.RetryDelay <= 0 {
		s.RetryDelay = time.Second
	}
	if s.QemuImg == "" {
		s.QemuImg = "qemu-img"
	}
	if s.HTTPClient == nil {
		s.HTTPClient = defaultHTTPClient()
	}
	s.ExtraProperties = maps.Clone(s.ExtraProperties)
	return s, nil
}

// parseSource classifies a source and returns its local path (local
// sources) or URL (downloads).
func parseSource(src string) (sourceKind, string, error) {
	u, err := url.Parse(src)
	if err != nil {
		return sourceLocal, "", fmt.Errorf("source %q is not a URL or path", src)
	}
	switch u.Scheme {
	case "http", "https":
		return sourceHTTP, src, nil
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return sourceLocal, "", fmt.Errorf("source %s: file URLs on another host are not supported", src)
		}
		return sourceLocal, u.Path, nil
	case "":
		return sourceLocal, src, nil
	}
	return sourceLocal, "", fmt.Errorf("source %s: scheme %q is not supported (https, http, file or a local path)", src, u.Scheme)
}

// sourceURL is the image_source property: the URL, or a file:// URL for a path.
func sourceURL(src string) string {
	kind, path, err := parseSource(src)
	if err != nil || kind == sourceHTTP {
		return src
	}
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	return (&url.URL{Scheme: "file", Path: path}).String()
}

// properties are the Glance properties of a new image: SCS's (§2(b)), the
// extra ones, then capilab's own.
func (s Spec) properties(sha256hex, uploadID string, built time.Time) map[string]string {
	version := "v" + strings.TrimPrefix(s.KubernetesVersion, "v")
	date := built.UTC().Format(time.DateOnly)
	until := built.UTC().AddDate(1, 0, 0).Format(time.DateOnly)
	desc := "CAPI node image for Kubernetes " + version
	if s.OSVersion != "" {
		desc += " on Ubuntu " + s.OSVersion
	}
	p := map[string]string{
		"image_build_date":    date,
		"image_original_user": "ubuntu",
		"architecture":        "x86_64",
		"hypervisor_type":     "kvm",
		"os_distro":           "ubuntu",
		"hw_disk_bus":         "scsi",
		"hw_scsi_model":       "virtio-scsi",
		"hw_rng_model":        "virtio",
		"image_source":        sourceURL(s.Source),
		"image_description":   desc + ", registered by capilab",
		"kubernetes_version":  version,
		"replace_frequency":   "never",
		"provided_until":      until,
		"uuid_validity":       until,
	}
	if s.OSVersion != "" {
		p["os_version"] = s.OSVersion
	}
	maps.Copy(p, s.ExtraProperties)
	if s.NodeContainerImage != "" {
		// Servers of this image run as containers of the data plane, on
		// whatever hypervisor the cloud reports: a hypervisor type or a
		// virtual disk model would only make Nova's ImagePropertiesFilter
		// refuse every host ("No valid host was found").
		for _, k := range []string{"hypervisor_type", "hw_disk_bus", "hw_scsi_model", "hw_rng_model"} {
			if _, extra := s.ExtraProperties[k]; !extra {
				delete(p, k)
			}
		}
		p[PropNodeContainerImage] = s.NodeContainerImage
	}
	p[PropSourceSHA256] = sha256hex
	p[PropUploadID] = uploadID
	return p
}
