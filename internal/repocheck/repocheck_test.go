package repocheck

import (
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/capilab/capilab/internal/cleanup"
	"github.com/capilab/capilab/internal/config"
	"github.com/capilab/capilab/internal/lab"
	"github.com/capilab/capilab/internal/versions"
	"github.com/capilab/capilab/manifests"
)

var update = flag.Bool("update", false, "rewrite the generated README sections")

const root = "../.."

// scsTargets are the make targets SCS users know, plus capilab's own.
var scsTargets = []string{
	"create", "create_cluster", "delete_cluster", "get-kubeconfig", "check", "check-quick",
	"check-conformance", "check-storage", "check-csi", "clean", "fullclean", "leakcheck",
	"image", "appcred", "config", "help", "test", "test-integration",
	"appcred-delete", "appcred-list", "config-check", "mgmt-delete",
}

// scsReplaced are SCS make targets capilab does not have: the Makefile
// must answer each with what replaces it (scs.<name>), before anything runs.
var scsReplaced = []string{
	"init", "dry-run", "show", "list", "attach", "detach", "state-push", "gitchk", "ssh", "login",
	"k9s", "openstack", "log", "console", "watch", "deploy", "forceclean", "purge", "deploy-cso", "deploy-cspo",
}

// versionStrings collects every version-looking scalar of versions.yaml.
func versionStrings(t *testing.T) []string {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal(manifests.Versions, &doc); err != nil {
		t.Fatal(err)
	}
	versionRE := regexp.MustCompile(`^v?\d+\.\d+(\.\d+)?(-[0-9a-z.]+)?$`)
	seen := map[string]bool{}
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.ScalarNode {
			v := n.Value
			if i := strings.LastIndex(v, ":"); i >= 0 && strings.Contains(v, "/") { // image refs: check the tag
				v = v[i+1:]
			}
			if versionRE.MatchString(v) && strings.Count(v, ".") >= 2 {
				seen[v] = true
				seen[strings.TrimPrefix(v, "v")] = true
			}
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(&doc)
	var out []string
	for v := range seen {
		out = append(out, v)
	}
	sort.Strings(out)
	if len(out) < 10 {
		t.Fatalf("found only %d versions in versions.yaml: the scan would prove nothing", len(out))
	}
	return out
}

// TestNoHardcodedVersions fails when a version pinned in versions.yaml is
// spelled in code, scripts, templates or build files: they must read it.
func TestNoHardcodedVersions(t *testing.T) {
	vs := versionStrings(t)
	patterns := make([]*regexp.Regexp, len(vs))
	for i, v := range vs {
		// Not part of a longer version (1.37.2 inside v1.37.20 or 11.37.2).
		patterns[i] = regexp.MustCompile(`(^|[^0-9A-Za-z.])` + regexp.QuoteMeta(v) + `($|[^0-9])`)
	}
	skipDir := map[string]bool{".git": true, "bin": true, "state": true, "artifacts": true, "docs": true, "testdata": true, "node_modules": true}
	skipFile := map[string]bool{"go.mod": true, "go.sum": true, "manifests/versions.yaml": true}
	scanned := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if skipDir[d.Name()] || (strings.HasPrefix(d.Name(), ".") && rel != "." && d.Name() != ".ci") {
				return filepath.SkipDir
			}
			return nil
		}
		if skipFile[rel] || strings.HasSuffix(rel, ".md") || strings.HasSuffix(rel, "_test.go") {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil || !isText(data) {
			return nil
		}
		scanned++
		for lineNo, line := range strings.Split(string(data), "\n") {
			for i, re := range patterns {
				// The substring test first: the regexp only confirms a hit
				// (scanning every line with every regexp took minutes under -race).
				if strings.Contains(line, vs[i]) && re.MatchString(line) {
					t.Errorf("%s:%d: version %s is pinned in manifests/versions.yaml; read it from there", rel, lineNo+1, vs[i])
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if scanned < 20 {
		t.Fatalf("scanned only %d files", scanned)
	}
}

func isText(b []byte) bool {
	n := min(len(b), 8000)
	for _, c := range b[:n] {
		if c == 0 {
			return false
		}
	}
	return true
}

// makeTargets parses "## name: doc" lines and each target's $(MAGE) call.
func makeTargets(t *testing.T) (docs map[string]string, mage map[string]string, order []string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	docs, mage = map[string]string{}, map[string]string{}
	docRE := regexp.MustCompile(`^## ([a-z_-]+): (.+)$`)
	ruleRE := regexp.MustCompile(`^([a-z_-]+):`)
	mageRE := regexp.MustCompile(`\$\(MAGE\) ([a-z]+:[a-z]+)`)
	current := ""
	for _, line := range strings.Split(string(data), "\n") {
		if m := docRE.FindStringSubmatch(line); m != nil {
			docs[m[1]] = m[2]
			order = append(order, m[1])
			continue
		}
		if m := ruleRE.FindStringSubmatch(line); m != nil {
			current = m[1]
			continue
		}
		if m := mageRE.FindStringSubmatch(line); m != nil && current != "" {
			mage[current] = m[1]
		}
	}
	return docs, mage, order
}

// mageTargets parses magefiles/*.go: namespace methods and their docs.
func mageTargets(t *testing.T) map[string]string {
	t.Helper()
	fset := token.NewFileSet()
	out := map[string]string{}
	files, _ := filepath.Glob(filepath.Join(root, "magefiles", "*.go"))
	for _, f := range files {
		af, err := parser.ParseFile(fset, f, nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range af.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Recv == nil || !fn.Name.IsExported() {
				continue
			}
			ns := fmt.Sprint(fn.Recv.List[0].Type)
			name := strings.ToLower(ns) + ":" + strings.ToLower(fn.Name.Name)
			doc := ""
			if fn.Doc != nil {
				doc = fn.Doc.Text()
			}
			if !strings.HasPrefix(doc, fn.Name.Name+" ") {
				t.Errorf("%s: doc comment must start with %q (mage -l strips that word)", name, fn.Name.Name+" ")
			}
			out[name] = doc
		}
	}
	return out
}

func TestMakeTargetsDocumentedAndBacked(t *testing.T) {
	docs, mage, _ := makeTargets(t)
	mageDocs := mageTargets(t)
	for _, name := range scsTargets {
		if docs[name] == "" {
			t.Errorf("make target %s lacks a \"## %s: doc\" line", name, name)
		}
	}
	for target, mt := range mage {
		if _, ok := mageDocs[mt]; !ok {
			t.Errorf("make %s calls mage %s, which magefiles/ does not define", target, mt)
		}
	}
	// Every lab target has a mage method, and every mage method of a lab
	// namespace is a lab target (devcloud drives a script instead).
	labTargets := lab.Targets()
	for name := range labTargets {
		if _, ok := mageDocs[name]; !ok {
			t.Errorf("lab target %s has no mage method", name)
		}
	}
	for name := range mageDocs {
		ns := strings.SplitN(name, ":", 2)[0]
		if _, ok := labTargets[name]; !ok && ns != "devcloud" {
			t.Errorf("mage target %s is not in lab.Targets()", name)
		}
	}
}

// TestMakeGoalsAreChecked: the Makefile's GOALS (checked before anything
// runs) are exactly its documented targets plus bin/mage, and every SCS
// name it lacks has a replacement line.
func TestMakeGoalsAreChecked(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(data), "\\\n", " ")
	m := regexp.MustCompile(`(?m)^GOALS := (.*)$`).FindStringSubmatch(text)
	if m == nil {
		t.Fatal("Makefile has no GOALS := line")
	}
	goals := map[string]bool{}
	for _, g := range strings.Fields(m[1]) {
		goals[g] = true
	}
	docs, _, _ := makeTargets(t)
	for name := range docs {
		if !goals[name] {
			t.Errorf("make %s is documented but not in GOALS: `make %s` would be refused", name, name)
		}
	}
	for g := range goals {
		if docs[g] == "" && g != "bin/mage" {
			t.Errorf("GOALS lists %s, which has no \"## %s: doc\" line", g, g)
		}
	}
	for _, name := range scsReplaced {
		if goals[name] {
			continue
		}
		if !regexp.MustCompile(`(?m)^scs\.` + regexp.QuoteMeta(name) + ` +:= \S`).MatchString(text) {
			t.Errorf("SCS make target %s is neither a goal nor answered by a scs.%s line", name, name)
		}
	}
}

// TestPackagesTakeTheProcessThroughOptions: the packages of the settings,
// cleanup, credentials, images, state and the lab layer never read the
// process environment or write to its stdout/stderr themselves; everything
// arrives through lab.Options (OptionsFromProcess, called by the magefiles,
// is the one place that reads the process) or cli.Process (mage.go).
func TestPackagesTakeTheProcessThroughOptions(t *testing.T) {
	forbidden := regexp.MustCompile(`\bos\.(Getenv|LookupEnv|Environ|Setenv|Stdout|Stderr|Stdin)\b`)
	allowed := map[string]bool{"internal/lab/lab.go:OptionsFromProcess": true}
	fset := token.NewFileSet()
	for _, dir := range []string{"internal/lab", "internal/config", "internal/cleanup", "internal/appcred", "internal/image", "internal/state", "internal/cli"} {
		files, _ := filepath.Glob(filepath.Join(root, dir, "*.go"))
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			af, err := parser.ParseFile(fset, f, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			src, _ := os.ReadFile(f)
			for _, decl := range af.Decls {
				fn, ok := decl.(*ast.FuncDecl)
				if !ok {
					continue
				}
				body := string(src[fset.Position(fn.Pos()).Offset:fset.Position(fn.End()).Offset])
				rel := filepath.ToSlash(filepath.Join(dir, filepath.Base(f)))
				if m := forbidden.FindString(body); m != "" && !allowed[rel+":"+fn.Name.Name] {
					t.Errorf("%s: %s uses %s: take it from Options instead", rel, fn.Name.Name, m)
				}
			}
		}
	}
}

// replaceSection swaps the text between <!-- name:begin --> and <!-- name:end -->.
func replaceSection(readme, name, content string) (string, bool) {
	begin, end := "<!-- "+name+":begin -->", "<!-- "+name+":end -->"
	i, j := strings.Index(readme, begin), strings.Index(readme, end)
	if i < 0 || j < i {
		return readme, false
	}
	return readme[:i+len(begin)] + "\n" + content + "\n" + readme[j:], true
}

// TestREADMEGenerated fails when README's settings or target tables differ
// from what the settings model and the Makefile say.
func TestREADMEGenerated(t *testing.T) {
	path := filepath.Join(root, "README.md")
	pinned, err := versions.Load()
	if err != nil {
		t.Fatal(err)
	}
	docs, mage, order := makeTargets(t)
	var targets strings.Builder
	targets.WriteString("| make target | mage target | what it does |\n|---|---|---|\n")
	for _, name := range order {
		mt := mage[name]
		if mt == "" {
			mt = "—"
		} else {
			mt = "`" + mt + "`"
		}
		fmt.Fprintf(&targets, "| `make %s` | %s | %s |\n", name, mt, docs[name])
	}
	checkGenerated(t, path, map[string]string{
		"settings": strings.TrimSpace(config.MarkdownTable(pinned.Workload.KubernetesDefault)),
		"targets":  strings.TrimSpace(targets.String()),
	})
}

// TestCleanupDocGenerated keeps docs/cleanup.md's rules table in step with
// the rules in internal/cleanup.
func TestCleanupDocGenerated(t *testing.T) {
	checkGenerated(t, filepath.Join(root, "docs", "cleanup.md"), map[string]string{"rules": strings.TrimSpace(cleanup.RulesMarkdown())})
}

// checkGenerated compares (or with -update rewrites) generated sections.
func checkGenerated(t *testing.T, path string, sections map[string]string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	want := text
	for name, content := range sections {
		var ok bool
		if want, ok = replaceSection(want, name, content); !ok {
			t.Fatalf("%s lacks the <!-- %s:begin --> / <!-- %s:end --> markers", path, name, name)
		}
	}
	if want == text {
		return
	}
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatalf("%s is stale: run `go test ./internal/repocheck -update`", path)
}

// TestDocLinksStayInTheRepository: every relative link of README.md and
// the Markdown files under docs/ names a file or directory of this repository (a link that
// leaves it, or names nothing, is dead for whoever reads the project on
// its own).
func TestDocLinksStayInTheRepository(t *testing.T) {
	abs, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	files := []string{filepath.Join(root, "README.md")}
	err = filepath.WalkDir(filepath.Join(root, "docs"), func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".md") {
			files = append(files, path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	link := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	checked := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, f)
		for _, m := range link.FindAllStringSubmatch(string(data), -1) {
			target, _, _ := strings.Cut(m[1], "#")
			if target == "" || strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			p := filepath.Join(filepath.Dir(f), target)
			if filepath.IsAbs(target) {
				p = target
			}
			pAbs, err := filepath.Abs(p)
			if err != nil {
				t.Fatal(err)
			}
			checked++
			if inside, err := filepath.Rel(abs, pAbs); err != nil || inside == ".." || strings.HasPrefix(inside, "../") {
				t.Errorf("%s: link %s leaves the repository", rel, m[1])
				continue
			}
			if _, err := os.Stat(pAbs); err != nil {
				t.Errorf("%s: link %s names nothing in the repository", rel, m[1])
			}
		}
	}
	if checked < 5 {
		t.Fatalf("checked only %d links: the scan would prove nothing", checked)
	}
}
