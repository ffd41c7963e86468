// Package cloudinit is devcloud's own cloud-init: it turns a server's user
// data into files and one shell program that a node container runs, doing
// what cloud-init does with what Cluster API's kubeadm bootstrap emits.
//
//   - `## template: jinja` user data is rendered first from the server's
//     instance data (instance_id, local_hostname, v1.*, ds.meta_data.*);
//     an undefined variable is an error.
//   - #cloud-config: bootcmd (every boot), write_files (encodings b64, gz,
//     gz+b64; owner, permissions, append, defer), runcmd (strings run as
//     shell lines, lists shell-quoted, as cloud-init's runcmd script does).
//     Other modules are ignored and listed in Config.Ignored for a log line.
//   - #! user data is a script, run once per instance.
//
// Program writes the per-boot and per-instance bookkeeping into the
// program itself: the "ran once" record lives under /var (it survives a
// container restart, as /var/lib/cloud does on a VM), the per-boot one
// under /run (tmpfs: gone after a restart, so bootcmd runs again).
package cloudinit

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// InstanceData is what a VM's cloud-init would learn from OpenStack's
// metadata service.
type InstanceData struct {
	InstanceID       string            // the server's UUID
	Name             string            // the server's name
	Hostname         string            // the hostname Nova derived from the name
	AvailabilityZone string            // nova
	Region           string            // RegionOne
	ProjectID        string            // the server's project
	LaunchIndex      int               // 0
	Meta             map[string]string // the server's metadata
	PublicKeys       map[string]string // key name → public key
}

// Vars is the jinja context: the instance-data layout cloud-init renders
// templates with (v1 keys also at the top level).
func (d InstanceData) Vars() map[string]any {
	keys := map[string]any{}
	for k, v := range d.PublicKeys {
		keys[k] = v
	}
	meta := map[string]any{}
	for k, v := range d.Meta {
		meta[k] = v
	}
	var sshKeys []any
	for _, k := range sortedKeys(d.PublicKeys) {
		sshKeys = append(sshKeys, d.PublicKeys[k])
	}
	v1 := map[string]any{
		"availability_zone": d.AvailabilityZone,
		"availability-zone": d.AvailabilityZone,
		"cloud_name":        "openstack",
		"cloud-name":        "openstack",
		"cloud_id":          "openstack",
		"instance_id":       d.InstanceID,
		"instance-id":       d.InstanceID,
		"local_hostname":    d.Hostname,
		"local-hostname":    d.Hostname,
		"platform":          "openstack",
		"region":            d.Region,
		"subplatform":       "metadata (devcloud data plane)",
		"public_ssh_keys":   sshKeys,
	}
	vars := map[string]any{
		"v1": v1,
		"ds": map[string]any{
			"meta_data": map[string]any{
				"uuid":              d.InstanceID,
				"name":              d.Name,
				"hostname":          d.Hostname,
				"availability_zone": d.AvailabilityZone,
				"launch_index":      d.LaunchIndex,
				"project_id":        d.ProjectID,
				"meta":              meta,
				"public_keys":       keys,
			},
		},
	}
	for k, v := range v1 {
		vars[k] = v
	}
	return vars
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Config is what the agent executes.
type Config struct {
	BootCmd    []string // shell lines, every boot
	WriteFiles []File
	RunCmd     []string // shell lines, once per instance
	Script     []byte   // a #! user-data script, once per instance
	// Ignored lists the top-level modules of the cloud-config that are not
	// executed (users, ntp, mounts, …), for a log line.
	Ignored []string
}

// File is one write_files entry, decoded.
type File struct {
	Path        string
	Content     []byte
	Owner       string // user:group
	Permissions uint32 // unix mode bits, e.g. 0o640
	Append      bool
	Defer       bool
}

// Parse decodes user data (as Nova returns it, already base64-decoded;
// gzip is undone as cloud-init does), renders it when it is a jinja
// template and parses the result.
func Parse(userData []byte, data InstanceData) (*Config, error) {
	if len(userData) >= 2 && userData[0] == 0x1f && userData[1] == 0x8b {
		r, err := gzip.NewReader(bytes.NewReader(userData))
		if err != nil {
			return nil, fmt.Errorf("user data: gzip: %w", err)
		}
		userData, err = io.ReadAll(io.LimitReader(r, 64<<20))
		if err != nil {
			return nil, fmt.Errorf("user data: gzip: %w", err)
		}
	}
	text := string(userData)
	if first, rest, _ := strings.Cut(text, "\n"); strings.TrimSpace(first) == Header {
		rendered, err := Render(rest, data.Vars())
		if err != nil {
			return nil, fmt.Errorf("user data: jinja template: %w", err)
		}
		text = rendered
	}
	first, _, _ := strings.Cut(text, "\n")
	first = strings.TrimSpace(first)
	switch {
	case strings.HasPrefix(first, "#cloud-config"):
		return parseCloudConfig([]byte(text))
	case strings.HasPrefix(first, "#!"):
		return &Config{Script: []byte(text)}, nil
	case strings.TrimSpace(text) == "":
		return &Config{}, nil
	case strings.HasPrefix(first, "Content-Type: multipart") || strings.HasPrefix(first, "MIME-Version"):
		return nil, errors.New("user data: multi-part MIME is not supported by devcloud's cloud-init")
	default:
		return nil, fmt.Errorf("user data: first line %q: neither #cloud-config nor a #! script", truncate(first, 40))
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

type rawFile struct {
	Path        string    `yaml:"path"`
	Content     *string   `yaml:"content"`
	Encoding    string    `yaml:"encoding"`
	Owner       string    `yaml:"owner"`
	Permissions yaml.Node `yaml:"permissions"`
	Append      bool      `yaml:"append"`
	Defer       bool      `yaml:"defer"`
	Source      yaml.Node `yaml:"source"`
}

func parseCloudConfig(doc []byte) (*Config, error) {
	var top map[string]yaml.Node
	if err := yaml.Unmarshal(doc, &top); err != nil {
		return nil, fmt.Errorf("cloud-config: %w", err)
	}
	cfg := &Config{}
	for _, k := range sortedKeys(top) {
		n := top[k]
		var err error
		switch k {
		case "bootcmd":
			cfg.BootCmd, err = commands(k, &n)
		case "runcmd":
			cfg.RunCmd, err = commands(k, &n)
		case "write_files":
			cfg.WriteFiles, err = writeFiles(&n)
		default:
			cfg.Ignored = append(cfg.Ignored, k)
		}
		if err != nil {
			return nil, fmt.Errorf("cloud-config: %w", err)
		}
	}
	return cfg, nil
}

// commands turns a bootcmd/runcmd list into shell lines the way cloud-init's
// shellify does: a string is a line as it is, a list is its items
// single-quoted and joined.
func commands(module string, n *yaml.Node) ([]string, error) {
	if n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.Tag == "!!null") {
		return nil, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("%s (line %d): a list of commands expected", module, n.Line)
	}
	var out []string
	for _, item := range n.Content {
		switch item.Kind {
		case yaml.ScalarNode:
			out = append(out, item.Value)
		case yaml.SequenceNode:
			var args []string
			for _, a := range item.Content {
				if a.Kind != yaml.ScalarNode {
					return nil, fmt.Errorf("%s (line %d): command arguments must be strings", module, a.Line)
				}
				args = append(args, ShellQuote(a.Value))
			}
			out = append(out, strings.Join(args, " "))
		default:
			return nil, fmt.Errorf("%s (line %d): a command is a string or a list of strings", module, item.Line)
		}
	}
	return out, nil
}

func writeFiles(n *yaml.Node) ([]File, error) {
	var raws []rawFile
	if err := n.Decode(&raws); err != nil {
		return nil, fmt.Errorf("write_files: %w", err)
	}
	out := make([]File, 0, len(raws))
	for i, r := range raws {
		where := fmt.Sprintf("write_files[%d] (%s)", i, r.Path)
		if r.Path == "" {
			return nil, fmt.Errorf("write_files[%d]: no path", i)
		}
		if !path.IsAbs(r.Path) {
			return nil, fmt.Errorf("%s: path must be absolute", where)
		}
		if r.Source.Kind != 0 {
			return nil, fmt.Errorf("%s: source is not supported by devcloud's cloud-init (give content)", where)
		}
		content := ""
		if r.Content != nil {
			content = *r.Content
		}
		data, err := decode(content, r.Encoding)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		perm, err := permissions(&r.Permissions)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		owner := r.Owner
		if owner == "" {
			owner = "root:root"
		}
		out = append(out, File{Path: path.Clean(r.Path), Content: data, Owner: owner, Permissions: perm, Append: r.Append, Defer: r.Defer})
	}
	return out, nil
}

// decode applies a write_files encoding (cloud-init's names and aliases).
func decode(content, encoding string) ([]byte, error) {
	e := strings.ToLower(strings.TrimSpace(encoding))
	b64 := func(s string) ([]byte, error) {
		d, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(s), ""))
		if err != nil {
			return nil, fmt.Errorf("encoding %s: %w", encoding, err)
		}
		return d, nil
	}
	gunzip := func(b []byte) ([]byte, error) {
		r, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("encoding %s: %w", encoding, err)
		}
		out, err := io.ReadAll(io.LimitReader(r, 64<<20))
		if err != nil {
			return nil, fmt.Errorf("encoding %s: %w", encoding, err)
		}
		return out, nil
	}
	switch e {
	case "", "text/plain":
		return []byte(content), nil
	case "b64", "base64":
		return b64(content)
	case "gz", "gzip":
		return gunzip([]byte(content))
	case "gz+b64", "gz+base64", "gzip+b64", "gzip+base64":
		d, err := b64(content)
		if err != nil {
			return nil, err
		}
		return gunzip(d)
	default:
		return nil, fmt.Errorf("unknown encoding %q", encoding)
	}
}

// permissions reads write_files' permissions: a string is octal
// ('0640'), as is a YAML integer with a leading zero (YAML 1.1 octal, which
// is how cloud-init's PyYAML reads 0640); any other integer is taken as the
// number it is. Default 0644.
func permissions(n *yaml.Node) (uint32, error) {
	if n.Kind == 0 || n.Tag == "!!null" {
		return 0o644, nil
	}
	if n.Kind != yaml.ScalarNode {
		return 0, fmt.Errorf("permissions: not a scalar")
	}
	v := strings.TrimSpace(n.Value)
	base := 8
	if n.Tag == "!!int" && !strings.HasPrefix(v, "0") {
		base = 10
	}
	v = strings.TrimPrefix(strings.TrimPrefix(v, "0o"), "0O")
	p, err := strconv.ParseUint(v, base, 32)
	if err != nil || p > 0o7777 {
		return 0, fmt.Errorf("permissions %q: not a file mode", n.Value)
	}
	return uint32(p), nil
}

// ShellQuote quotes s for /bin/sh as cloud-init does for list commands.
func ShellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
