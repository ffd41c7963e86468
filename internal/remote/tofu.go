package remote

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/capilab/capilab/internal/command"
	"github.com/capilab/capilab/internal/fsutil"
)

// Workspace is the OpenTofu working directory of a lab's state
// (<state_dir>/terraform) and the lab's workspace in it (named after the
// prefix). The module is copied from the checkout's terraform/ next to an
// override that pins the provider version, so that everything OpenTofu
// writes — .terraform/, the lock file, the state — stays in the state
// directory, not in the source tree.
type Workspace struct {
	Dir    string // <state_dir>/terraform
	Module string // the checkout's terraform/
	Name   string // workspace: the lab prefix
	Bin    Binary
	// ProviderVersion is pinned exactly (versions.yaml remote.openstackProvider).
	ProviderVersion string
	// CLIConfig, when set, replaces the user's CLI configuration (the
	// filesystem mirror when no registry answers).
	CLIConfig string
	// Env is the environment tofu starts from (nil: this process's).
	Env []string
	Log *slog.Logger
}

// LabDir holds the lab's own files: variables, ssh key, known hosts, records.
func (w *Workspace) LabDir() string { return filepath.Join(w.Dir, w.Name) }

// VarFile is the variables file capilab writes for each plan.
func (w *Workspace) VarFile() string { return filepath.Join(w.LabDir(), "terraform.tfvars.json") }

// StateFile is the workspace's state (local backend).
func (w *Workspace) StateFile() string {
	return filepath.Join(w.Dir, "terraform.tfstate.d", w.Name, "terraform.tfstate")
}

func (w *Workspace) planFile() string { return filepath.Join(w.LabDir(), "plan") }

func (w *Workspace) log() *slog.Logger {
	if w.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return w.Log
}

// overrideFile pins the provider to the version capilab built or expects.
const overrideFile = "capilab_override.tf"

// Sync copies the module into the working directory (only files that
// differ), removes module files that are gone from the checkout, and
// writes the override and the CLI configuration.
func (w *Workspace) Sync() error {
	if err := os.MkdirAll(w.LabDir(), 0o700); err != nil {
		return err
	}
	if err := os.Chmod(w.Dir, 0o700); err != nil {
		return err
	}
	src, err := filepath.Glob(filepath.Join(w.Module, "*.tf"))
	if err != nil {
		return err
	}
	if len(src) == 0 {
		return fmt.Errorf("no *.tf files in %s: is this a capilab checkout?", w.Module)
	}
	want := map[string][]byte{}
	for _, p := range src {
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		want[filepath.Base(p)] = data
	}
	want[overrideFile] = []byte(fmt.Sprintf(`# Written by capilab: the provider version pinned in manifests/versions.yaml.
terraform {
  required_providers {
    openstack = {
      source  = %q
      version = %q
    }
  }
}
`, providerSource, strings.TrimPrefix(w.ProviderVersion, "v")))
	have, _ := filepath.Glob(filepath.Join(w.Dir, "*.tf"))
	for _, p := range have {
		if _, ok := want[filepath.Base(p)]; !ok {
			if err := os.Remove(p); err != nil {
				return err
			}
		}
	}
	for name, data := range want {
		if err := writeIfChanged(filepath.Join(w.Dir, name), data, 0o644); err != nil {
			return err
		}
	}
	// The lock file records the provider package's checksum, which differs
	// between a registry's package and capilab's build: when the source
	// changes, the old lock goes.
	source := []byte("registry\n")
	if w.CLIConfig != "" {
		source = []byte("mirror\n" + w.CLIConfig)
	}
	marker := filepath.Join(w.Dir, ".capilab-provider-source")
	if cur, err := os.ReadFile(marker); err != nil || !bytes.Equal(cur, source) {
		if err := os.Remove(filepath.Join(w.Dir, ".terraform.lock.hcl")); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if err := writeIfChanged(marker, source, 0o600); err != nil {
			return err
		}
	}
	cli := filepath.Join(w.Dir, ".capilab-cli.tfrc")
	if w.CLIConfig != "" {
		return writeIfChanged(cli, []byte(w.CLIConfig), 0o600)
	}
	if err := os.Remove(cli); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

func writeIfChanged(path string, data []byte, mode os.FileMode) error {
	if cur, err := os.ReadFile(path); err == nil && bytes.Equal(cur, data) {
		return nil
	}
	return fsutil.WriteAtomic(path, data, mode)
}

// cmd is one tofu invocation in the working directory. withWorkspace
// selects the lab's workspace through TF_WORKSPACE.
func (w *Workspace) cmd(withWorkspace bool, args ...string) *command.Cmd {
	env := []string{"TF_IN_AUTOMATION=1", "TF_INPUT=0", "CHECKPOINT_DISABLE=1"}
	if w.CLIConfig != "" {
		env = append(env, "TF_CLI_CONFIG_FILE="+filepath.Join(w.Dir, ".capilab-cli.tfrc"))
	}
	if withWorkspace {
		env = append(env, "TF_WORKSPACE="+w.Name)
	}
	return command.New(w.Bin.Path, args...).WithDir(w.Dir).WithEnv(w.Env, env...)
}

// run runs tofu, logging its output line by line, and keeps the state private.
func (w *Workspace) run(ctx context.Context, c *command.Cmd) error {
	lw := &lineWriter{emit: func(line string) { w.log().Info(w.Bin.Kind + ": " + line) }}
	err := c.WithOutput(lw).Run(ctx)
	lw.Flush()
	if perr := w.private(); perr != nil && err == nil {
		err = perr
	}
	return err
}

// private makes every state and plan file of the workspace 0600 (OpenTofu
// writes them with the process umask; the directory is 0700 as well).
func (w *Workspace) private() error {
	for _, d := range []string{filepath.Join(w.Dir, "terraform.tfstate.d"), filepath.Dir(w.StateFile())} {
		if err := os.Chmod(d, 0o700); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	files, _ := filepath.Glob(filepath.Join(filepath.Dir(w.StateFile()), "*"))
	files = append(files, w.planFile(), filepath.Join(w.Dir, "terraform.tfstate"), filepath.Join(w.Dir, "terraform.tfstate.backup"))
	for _, f := range files {
		if err := os.Chmod(f, 0o600); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// Init installs the provider and selects (or creates) the lab's workspace.
func (w *Workspace) Init(ctx context.Context) error {
	if err := w.run(ctx, w.cmd(false, "init", "-input=false", "-no-color")); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Dir(w.StateFile())); err == nil {
		return nil
	}
	return w.run(ctx, w.cmd(false, "workspace", "new", "-no-color", w.Name))
}

// Validate runs `validate` (after Init).
func (w *Workspace) Validate(ctx context.Context) error {
	return w.run(ctx, w.cmd(true, "validate", "-no-color"))
}

// Plan plans with the variables file and reports whether anything would
// change; the plan is kept for Apply.
func (w *Workspace) Plan(ctx context.Context) (changes bool, err error) {
	err = w.run(ctx, w.cmd(true, "plan", "-input=false", "-no-color", "-detailed-exitcode", "-var-file="+w.VarFile(), "-out="+w.planFile()))
	if command.ExitCode(err) == 2 {
		return true, nil
	}
	return false, err
}

// Apply applies the plan made by Plan.
func (w *Workspace) Apply(ctx context.Context) error {
	defer os.Remove(w.planFile())
	return w.run(ctx, w.cmd(true, "apply", "-input=false", "-no-color", "-auto-approve", w.planFile()))
}

// Destroy destroys everything in the workspace's state.
func (w *Workspace) Destroy(ctx context.Context) error {
	return w.run(ctx, w.cmd(true, "destroy", "-input=false", "-no-color", "-auto-approve", "-var-file="+w.VarFile()))
}

// DeleteWorkspace removes the (empty) workspace; OpenTofu refuses while it
// still tracks resources.
func (w *Workspace) DeleteWorkspace(ctx context.Context) error {
	if _, err := os.Stat(filepath.Dir(w.StateFile())); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	// The selected workspace cannot be deleted: select default first.
	if err := w.run(ctx, w.cmd(false, "workspace", "select", "-no-color", "default")); err != nil {
		return err
	}
	return w.run(ctx, w.cmd(false, "workspace", "delete", "-no-color", w.Name))
}

// State is what capilab reads from a workspace's state file: the
// resources OpenTofu tracks and the outputs.
type State struct {
	Resources []StateResource
	Outputs   map[string]json.RawMessage
}

// StateResource is one tracked resource instance.
type StateResource struct {
	Address string // openstack_compute_instance_v2.mgmt, openstack_networking_secgroup_rule_v2.mgmt["ssh 0.0.0.0/0"]
	Type    string
	ID      string
	Name    string
}

// ReadState reads the workspace's state file (no tofu needed); a missing
// file is an empty state.
func (w *Workspace) ReadState() (*State, error) {
	data, err := os.ReadFile(w.StateFile())
	if errors.Is(err, fs.ErrNotExist) {
		return &State{Outputs: map[string]json.RawMessage{}}, nil
	}
	if err != nil {
		return nil, err
	}
	return parseState(data)
}

func parseState(data []byte) (*State, error) {
	var doc struct {
		Version int `json:"version"`
		Outputs map[string]struct {
			Value json.RawMessage `json:"value"`
		} `json:"outputs"`
		Resources []struct {
			Mode      string `json:"mode"`
			Type      string `json:"type"`
			Name      string `json:"name"`
			Instances []struct {
				IndexKey   any `json:"index_key"`
				Attributes struct {
					ID   string `json:"id"`
					Name string `json:"name"`
				} `json:"attributes"`
			} `json:"instances"`
		} `json:"resources"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("state file: %w", err)
	}
	if doc.Version != 4 {
		return nil, fmt.Errorf("state file: format version %d, capilab reads version 4", doc.Version)
	}
	st := &State{Outputs: map[string]json.RawMessage{}}
	for k, v := range doc.Outputs {
		st.Outputs[k] = v.Value
	}
	for _, r := range doc.Resources {
		if r.Mode != "managed" {
			continue
		}
		for _, in := range r.Instances {
			addr := r.Type + "." + r.Name
			switch k := in.IndexKey.(type) {
			case string:
				addr += fmt.Sprintf("[%q]", k)
			case float64:
				addr += fmt.Sprintf("[%d]", int(k))
			}
			st.Resources = append(st.Resources, StateResource{Address: addr, Type: r.Type, ID: in.Attributes.ID, Name: in.Attributes.Name})
		}
	}
	slices.SortFunc(st.Resources, func(a, b StateResource) int { return strings.Compare(a.Address, b.Address) })
	return st, nil
}

// IDs returns the IDs of the tracked resources of a type.
func (s *State) IDs(typ string) []string {
	var ids []string
	for _, r := range s.Resources {
		if r.Type == typ {
			ids = append(ids, r.ID)
		}
	}
	return ids
}

// Output decodes an output into v; ok is false when there is none.
func (s *State) Output(name string, v any) (ok bool, err error) {
	raw, found := s.Outputs[name]
	if !found {
		return false, nil
	}
	return true, json.Unmarshal(raw, v)
}

// lineWriter calls emit for each complete line written to it.
type lineWriter struct {
	mu   sync.Mutex
	buf  []byte
	emit func(string)
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		if line := strings.TrimRight(string(l.buf[:i]), "\r"); strings.TrimSpace(line) != "" {
			l.emit(line)
		}
		l.buf = l.buf[i+1:]
	}
}

// Flush emits a last unterminated line.
func (l *lineWriter) Flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if line := strings.TrimSpace(string(l.buf)); line != "" {
		l.emit(line)
	}
	l.buf = nil
}

var _ io.Writer = (*lineWriter)(nil)

// Change is one planned change of a resource.
type Change struct {
	Address string
	Actions []string       // create, update, delete, no-op, read
	After   map[string]any // planned attributes (unknown ones absent)
}

// ShowPlan reads the plan Plan made (`show -json`).
func (w *Workspace) ShowPlan(ctx context.Context) ([]Change, error) {
	out, err := w.cmd(true, "show", "-json", "-no-color", w.planFile()).Output(ctx)
	if err != nil {
		return nil, err
	}
	return parsePlan(out)
}

func parsePlan(data []byte) ([]Change, error) {
	var doc struct {
		ResourceChanges []struct {
			Address string `json:"address"`
			Mode    string `json:"mode"`
			Change  struct {
				Actions []string       `json:"actions"`
				After   map[string]any `json:"after"`
			} `json:"change"`
		} `json:"resource_changes"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("plan: %w", err)
	}
	var out []Change
	for _, rc := range doc.ResourceChanges {
		if rc.Mode != "managed" {
			continue
		}
		out = append(out, Change{Address: rc.Address, Actions: rc.Change.Actions, After: rc.Change.After})
	}
	return out, nil
}
