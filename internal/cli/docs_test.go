package cli

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/capilab/capilab/internal/config"
)

// documentedCommand is a `make …`, `bin/mage …` or `go run mage.go …`
// command line of README.md or docs/.
type documentedCommand struct {
	where string // file:line
	tool  string // make, bin/mage, go run mage.go or mage
	args  []string
}

var commandRE = regexp.MustCompile(`^(?:[A-Z_][A-Z0-9_]*=\S*\s+)*(make|bin/mage|go run mage\.go|mage)((?:\s.*)?)$`)

// documentedCommands reads the command lines of code blocks and code spans.
func documentedCommands(t *testing.T, root string) []documentedCommand {
	t.Helper()
	files := []string{filepath.Join(root, "README.md")}
	err := filepath.WalkDir(filepath.Join(root, "docs"), func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".md") {
			files = append(files, path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	span := regexp.MustCompile("`([^`]+)`")
	var out []documentedCommand
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, f)
		inBlock := false
		for i, line := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(line, "```") {
				inBlock = !inBlock
				continue
			}
			texts := []string{line}
			if !inBlock {
				texts = nil
				for _, m := range span.FindAllStringSubmatch(line, -1) {
					texts = append(texts, m[1])
				}
			}
			for _, text := range texts {
				text, _, _ = strings.Cut(text, " #")
				for _, seg := range regexp.MustCompile(`&&|\|\||;|\|`).Split(text, -1) {
					m := commandRE.FindStringSubmatch(strings.TrimSpace(seg))
					if m == nil {
						continue
					}
					out = append(out, documentedCommand{where: rel + ":" + strconv.Itoa(i+1), tool: m[1], args: strings.Fields(m[2])})
				}
			}
		}
	}
	return out
}

// makeGoals reads the Makefile's GOALS and the SCS names it answers (scs.<name>).
func makeGoals(t *testing.T, root string) (goals, answered map[string]bool) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(data), "\\\n", " ")
	m := regexp.MustCompile(`(?m)^GOALS := (.*)$`).FindStringSubmatch(text)
	if m == nil {
		t.Fatal("Makefile has no GOALS := line")
	}
	goals, answered = map[string]bool{}, map[string]bool{}
	for _, g := range strings.Fields(m[1]) {
		goals[g] = true
	}
	for _, m := range regexp.MustCompile(`(?m)^scs\.([a-z-]+) +:=`).FindAllStringSubmatch(text, -1) {
		answered[m[1]] = true
	}
	return goals, answered
}

// TestDocumentedCommandsAreSafeAsWritten: every make, bin/mage and go run
// mage.go command line README.md and docs/ show (and none is a bare
// `mage …`: Mage is not installed, bin/mage is) passes the checks that run
// before anything else — each target exists (or, for an SCS make target
// capilab replaces, is answered with one line), each NAME=value is a
// setting capilab reads — so a command copied from the documentation
// either runs what it says or nothing at all. Lines with placeholders
// (<target>, …, check*, VAR=value) are skipped.
func TestDocumentedCommandsAreSafeAsWritten(t *testing.T) {
	const root = "../.."
	targets := magefileTargets(t)
	goals, answered := makeGoals(t, root)
	checked := 0
	for _, c := range documentedCommands(t, root) {
		if slicesContainsAny(c.args, "<", "…", "*", "VAR=value") {
			continue
		}
		checked++
		if c.tool == "mage" {
			t.Errorf("%s: mage %s: there is no mage on PATH; write bin/mage (make bin/mage builds it) or go run mage.go", c.where, strings.Join(c.args, " "))
			continue
		}
		if c.tool != "make" {
			if p := Parse(c.args, targets, config.EnvName, nil); len(p.Problems) > 0 {
				t.Errorf("%s: %s %s: %s", c.where, c.tool, strings.Join(c.args, " "), strings.Join(p.Problems, "; "))
			}
			continue
		}
		for _, a := range c.args {
			name, _, isVar := strings.Cut(a, "=")
			switch {
			case strings.HasPrefix(a, "-"):
			case isVar:
				if known, hint := config.EnvName(name); !known && name != "GO" && name != "MAGE" {
					t.Errorf("%s: make %s: %s %s", c.where, strings.Join(c.args, " "), name, hint)
				}
			case !goals[a] && !answered[a]:
				t.Errorf("%s: make %s: %s is no make target", c.where, strings.Join(c.args, " "), a)
			}
		}
	}
	if checked < 50 {
		t.Fatalf("checked only %d documented command lines: the scan would prove nothing", checked)
	}
	t.Logf("%d documented command lines checked", checked)
}

func slicesContainsAny(args []string, subs ...string) bool {
	for _, a := range args {
		for _, s := range subs {
			if strings.Contains(a, s) {
				return true
			}
		}
	}
	return false
}
