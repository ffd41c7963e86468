package config

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	didyoumean "github.com/capilab/capilab/internal/suggest"
	"github.com/capilab/capilab/internal/versions"
)

// SettingsFileEnv names the environment variable holding the settings file path.
const SettingsFileEnv = "LAB_CONFIG"

// DefaultSettingsFile is read when LAB_CONFIG is not set; it is optional.
const DefaultSettingsFile = "lab.yaml"

// Loaded is the effective settings plus where each value came from.
type Loaded struct {
	Settings Settings
	// Sources maps a knob key to its source: "default", "lab.yaml:12",
	// "clusters/a/cluster.yaml:3" or "env PREFIX".
	Sources map[string]string
	// Versions is the pinned-versions file the defaults came from.
	Versions *versions.Pinned
}

// Options says where Load looks.
type Options struct {
	// Dir is the directory lab.yaml and clusters/ are relative to ("" = cwd).
	Dir string
	// Environ is the process environment as os.Environ returns it.
	Environ []string
}

// Load reads every source in order and validates the result. Any problem —
// unknown key, malformed value, invalid combination — comes back in an
// *InvalidError with one line per problem; callers must then stop before
// making any cloud or cluster call.
func Load(opts Options) (*Loaded, error) {
	pinned, err := versions.Load()
	if err != nil {
		return nil, err
	}
	env := environMap(opts.Environ)
	l := &Loaded{
		Settings: Defaults(pinned.Workload.KubernetesDefault),
		Sources:  map[string]string{},
		Versions: pinned,
	}
	for _, k := range Knobs() {
		l.Sources[k.Key] = "default"
	}
	var problems Problems

	labFile, explicit := filepath.Join(opts.Dir, DefaultSettingsFile), false
	if p := env[SettingsFileEnv]; p != "" {
		labFile, explicit = p, true
		if !filepath.IsAbs(labFile) {
			labFile = filepath.Join(opts.Dir, labFile)
		}
	}
	problems = append(problems, l.applyFile(labFile, displayPath(opts.Dir, labFile), explicit, false)...)

	// The per-cluster file depends on which cluster this run is about, which
	// the environment may set: peek at it before the environment is applied.
	cluster := l.Settings.Cluster
	for _, name := range knobByKey()["cluster"].Env {
		if v := env[name]; v != "" {
			cluster = v
			break
		}
	}
	if isDNSLabel(cluster) {
		clusterFile := filepath.Join(opts.Dir, "clusters", cluster, "cluster.yaml")
		problems = append(problems, l.applyFile(clusterFile, displayPath(opts.Dir, clusterFile), false, true)...)
	}

	problems = append(problems, l.applyEnv(env)...)
	problems = append(problems, l.replacedProblems(env)...)
	// Validate even after parse problems, so one run reports everything, but
	// not the knobs whose value did not parse: their value is a stale default.
	broken := map[string]bool{}
	for _, p := range problems {
		broken[p.Key] = true
	}
	for _, p := range l.validate() {
		if !broken[p.Key] {
			problems = append(problems, p)
		}
	}
	if len(problems) > 0 {
		sort.SliceStable(problems, func(i, j int) bool { return problems[i].Key < problems[j].Key })
		return l, &InvalidError{Problems: problems}
	}
	return l, nil
}

func environMap(environ []string) map[string]string {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

func displayPath(dir, path string) string {
	if dir != "" {
		if rel, err := filepath.Rel(dir, path); err == nil && !strings.HasPrefix(rel, "..") {
			return rel
		}
	}
	return path
}

// applyFile merges one YAML settings file. A missing optional file is not an
// error; a missing file named by LAB_CONFIG is. perCluster files may only
// hold cluster and addon knobs: a lab-wide knob there would silently differ
// between clusters of the same lab.
func (l *Loaded) applyFile(path, display string, required, perCluster bool) Problems {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && !required {
		return nil
	}
	if err != nil {
		return Problems{{Source: display, Message: fmt.Sprintf("cannot read settings file: %v", unwrapPathError(err))}}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return Problems{{Source: display, Message: "not valid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}}
	}
	if len(doc.Content) == 0 { // empty file
		return nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return Problems{{Source: fmt.Sprintf("%s:%d", display, root.Line), Message: "must be a mapping of setting: value"}}
	}
	knobs := knobByKey()
	var problems Problems
	seen := map[string]bool{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		keyNode, valNode := root.Content[i], root.Content[i+1]
		src := fmt.Sprintf("%s:%d", display, keyNode.Line)
		key := keyNode.Value
		k, ok := knobs[key]
		if !ok {
			problems = append(problems, Problem{Source: src, Key: key, Message: "unknown setting" + suggest(key, knobs)})
			continue
		}
		if seen[key] {
			problems = append(problems, Problem{Source: src, Key: key, Message: "set twice in the same file"})
			continue
		}
		seen[key] = true
		if perCluster && (k.Group == "lab" || k.Group == "run") {
			problems = append(problems, Problem{Source: src, Key: key, Message: "is a lab-wide or per-run setting; set it in lab.yaml or the environment, not in a cluster file"})
			continue
		}
		if err := k.setFromNode(&l.Settings, valNode); err != nil {
			problems = append(problems, Problem{Source: src, Key: key, Message: err.Error()})
			continue
		}
		l.Sources[key] = src
	}
	return problems
}

func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// applyEnv applies the environment, the highest source. An empty variable
// counts as unset, so `make target VAR=` does not blank a setting by accident.
func (l *Loaded) applyEnv(env map[string]string) Problems {
	var problems Problems
	for _, k := range Knobs() {
		var set []string // aliases set to different values: which one is meant?
		for _, name := range k.Env {
			if v := env[name]; v != "" && (len(set) == 0 || env[set[0]] != v) {
				set = append(set, name)
			}
		}
		if len(set) > 1 {
			problems = append(problems, Problem{Source: "env " + strings.Join(set, ", env "), Key: k.Key,
				Message: fmt.Sprintf("%s=%s and %s=%s name different values; set one of them", set[0], env[set[0]], set[1], env[set[1]])})
			continue
		}
		for _, name := range k.Env {
			text, ok := env[name]
			if !ok || text == "" {
				continue
			}
			src := "env " + name
			if err := k.setFromString(&l.Settings, text); err != nil {
				problems = append(problems, Problem{Source: src, Key: k.Key, Message: err.Error()})
			} else {
				l.Sources[k.Key] = src
			}
			break // the first name that is set wins over its aliases
		}
	}
	return problems
}

// setFromNode decodes a YAML value into the knob's field, with the same
// leniency users get from the environment: scalars for strings, a list or a
// comma-separated string for lists.
func (k Knob) setFromNode(s *Settings, n *yaml.Node) error {
	v := k.value(s)
	switch v.Interface().(type) {
	case string:
		if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
			return fmt.Errorf("must be a single value")
		}
		v.SetString(n.Value)
	case bool:
		var b bool
		if n.Kind != yaml.ScalarNode || n.Decode(&b) != nil {
			return fmt.Errorf("%q is not true or false", n.Value)
		}
		v.SetBool(b)
	case int:
		var i int
		if n.Kind != yaml.ScalarNode || n.Decode(&i) != nil {
			return fmt.Errorf("%q is not a whole number", n.Value)
		}
		v.SetInt(int64(i))
	case time.Duration:
		if n.Kind != yaml.ScalarNode {
			return fmt.Errorf("must be a duration like 90s, 24h or 7d")
		}
		d, err := parseDuration(n.Value)
		if err != nil {
			return err
		}
		v.SetInt(int64(d))
	case []string:
		switch n.Kind {
		case yaml.ScalarNode:
			list, err := splitListStrict(n.Value)
			if err != nil {
				return err
			}
			v.Set(reflect.ValueOf(list))
		case yaml.SequenceNode:
			list := []string{}
			for _, item := range n.Content {
				if item.Kind != yaml.ScalarNode {
					return fmt.Errorf("list items must be single values")
				}
				list = append(list, item.Value)
			}
			v.Set(reflect.ValueOf(list))
		default:
			return fmt.Errorf("must be a list")
		}
	case map[string]string:
		m := map[string]string{}
		if n.Kind != yaml.MappingNode {
			return fmt.Errorf("must be a mapping of key: value")
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i+1].Kind != yaml.ScalarNode {
				return fmt.Errorf("%s: must be a single value", n.Content[i].Value)
			}
			m[n.Content[i].Value] = n.Content[i+1].Value
		}
		v.Set(reflect.ValueOf(m))
	default:
		return fmt.Errorf("unsupported knob type %s", v.Type())
	}
	return nil
}

// suggest proposes the closest known key for a typo.
func suggest(key string, knobs map[string]Knob) string {
	return didyoumean.DidYouMean(key, slices.Collect(maps.Keys(knobs)))
}
