package appcred

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/capilab/capilab/internal/fsutil"
	"github.com/capilab/capilab/internal/state"
	"github.com/capilab/capilab/internal/wait"
)

// Endpoint is what a written configuration needs to reach the cloud.
type Endpoint struct {
	AuthURL   string // Keystone, e.g. https://keystone.example:5000/v3
	Region    string
	Interface string // public, internal or admin ("" = public)
	CACert    string // CA bundle of the source cloud, if it has one (absolute path)
}

// LoadBalancer is the [LoadBalancer] section of cloud.conf beyond SCS's
// defaults (manage-security-groups, use-octavia, enable-ingress-hostname).
type LoadBalancer struct {
	Provider      string // lb-provider, e.g. ovn ("" = the cloud's default)
	Method        string // lb-method, e.g. SOURCE_IP_PORT
	CreateMonitor bool   // create-monitor
}

// ProjectKey is the top-level key of a clouds.yaml entry that records the
// credential's project. It cannot go into auth: keystoneauth (Debian 12's
// 5.0) then sends a scope, and Keystone answers "Application credentials
// cannot request a scope" (the keystoneauth bug SCS patched in place).
// openstacksdk and gophercloud ignore the key.
const ProjectKey = "capilab_project_id"

// LabKey and ClusterKey are top-level keys of a clouds.yaml entry that name
// the lab and cluster whose credential it holds (clients ignore them), so
// the state's entries of a lab can be found without guessing from names
// (prefix "capi" + cluster "foo-bar" and "capi-foo" + "bar" give the same).
const (
	LabKey     = "capilab_lab"
	ClusterKey = "capilab_cluster"
)

// stored is what the state's clouds.yaml says about one credential.
type stored struct {
	ID, Secret, ProjectID string
	Lab, Cluster          string // LabKey, ClusterKey ("" in entries written before they existed)
}

// cloudsDoc is the state's clouds.yaml; entries capilab did not write are
// kept as they are.
type cloudsDoc struct {
	Clouds map[string]map[string]any `yaml:"clouds"`
}

func readClouds(path string) (cloudsDoc, error) {
	doc := cloudsDoc{}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		doc.Clouds = map[string]map[string]any{}
		return doc, nil
	}
	if err != nil {
		return doc, err
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return doc, fmt.Errorf("%s: not valid YAML: %w", path, err)
	}
	if doc.Clouds == nil {
		doc.Clouds = map[string]map[string]any{}
	}
	return doc, nil
}

func (d cloudsDoc) get(name string) (stored, bool) {
	e, ok := d.Clouds[name]
	if !ok {
		return stored{}, false
	}
	auth, _ := e["auth"].(map[string]any)
	s := stored{}
	s.ID, _ = auth["application_credential_id"].(string)
	s.Secret, _ = auth["application_credential_secret"].(string)
	s.ProjectID, _ = e[ProjectKey].(string)
	s.Lab, _ = e[LabKey].(string)
	s.Cluster, _ = e[ClusterKey].(string)
	return s, s.ID != "" && s.Secret != ""
}

func (d cloudsDoc) write(path string) error {
	data, err := yaml.Marshal(d)
	if err != nil {
		return err
	}
	return state.WriteSecretFile(path, data)
}

// cloudsEntry is the clouds.yaml entry of a credential.
func cloudsEntry(ep Endpoint, prefix, cluster, id, secret, projectID string) map[string]any {
	e := map[string]any{
		"auth_type": "v3applicationcredential",
		"auth": map[string]any{
			"auth_url":                      ep.AuthURL,
			"application_credential_id":     id,
			"application_credential_secret": secret,
		},
		"identity_api_version": 3,
		"interface":            firstOf(ep.Interface, "public"),
	}
	if ep.Region != "" {
		e["region_name"] = ep.Region
	}
	if projectID != "" {
		e[ProjectKey] = projectID
	}
	if ep.CACert != "" {
		e["cacert"] = ep.CACert
	}
	e[LabKey] = prefix
	if cluster != "" {
		e[ClusterKey] = cluster
	}
	return e
}

// cloudConf renders the cloud.conf of a cluster's OCCM and Cinder CSI
// (SCS's cloud.conf.tmpl plus tenant-id, as prepare_openstack.sh adds).
func cloudConf(ep Endpoint, id, secret, projectID string, lb LoadBalancer) []byte {
	var b strings.Builder
	line := func(k, v string) { fmt.Fprintf(&b, "%s=%s\n", k, quote(v)) }
	b.WriteString("[Global]\n")
	line("auth-url", ep.AuthURL)
	if ep.Region != "" {
		line("region", ep.Region)
	}
	line("application-credential-id", id)
	line("application-credential-secret", secret)
	if projectID != "" {
		line("tenant-id", projectID)
	}
	b.WriteString("\n[LoadBalancer]\n")
	b.WriteString("manage-security-groups=true\nuse-octavia=true\nenable-ingress-hostname=true\n")
	if lb.Provider != "" {
		line("lb-provider", lb.Provider)
	}
	if lb.Method != "" {
		line("lb-method", lb.Method)
	}
	if lb.CreateMonitor {
		b.WriteString("create-monitor=true\n")
	}
	return []byte(b.String())
}

// quote makes a gcfg (INI) string value: double quotes, with \ and " escaped,
// so that ; and # in a value are not read as comments.
func quote(v string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(v) + `"`
}

func firstOf(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// lockState takes the state directory's credential lock, so that two runs
// (two clusters created at once) do not lose each other's clouds.yaml
// entries or rotate the same credential twice. Bounded: a run holding it
// for minutes is stuck.
func lockState(ctx context.Context, log *slog.Logger, dir state.Dir) (func(), error) {
	if err := os.MkdirAll(string(dir), 0o700); err != nil {
		return nil, fmt.Errorf("state %s: %w", dir, err)
	}
	path := filepath.Join(string(dir), ".clouds.yaml.lock")
	return fsutil.Lock(ctx, log, path, wait.Spec{What: "the lock on " + path + " (another capilab run is changing credentials)", Timeout: 2 * time.Minute, Interval: 100 * time.Millisecond})
}

func marshal(v any) (string, error) {
	b, err := yaml.Marshal(v)
	return string(b), err
}
