package cleanup

import (
	"fmt"
	"strings"
)

// RulesMarkdown renders the ownership rules as the table docs/cleanup.md
// shows (a test keeps the two in step).
func RulesMarkdown() string {
	var b strings.Builder
	b.WriteString("| rule | types | owner | matches |\n|---|---|---|---|\n")
	for _, r := range Rules {
		owner := "cluster"
		if r.Lab {
			owner = "lab"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", r.ID, typeList(r.Types), owner, describePattern(r))
	}
	b.WriteString("\n| relation | types | owned because |\n|---|---|---|\n")
	for _, r := range Relations {
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", r.ID, typeList(r.Types), r.Reason)
	}
	return b.String()
}

func typeList(ts []Type) string {
	parts := make([]string, len(ts))
	for i, t := range ts {
		parts[i] = string(t)
	}
	return strings.Join(parts, ", ")
}

func describePattern(r Rule) string {
	p := r.Pattern
	var parts []string
	q := func(s string) string { return "`" + s + "`" }
	if p.Name != "" {
		parts = append(parts, "name = "+q(p.Name))
	}
	if p.NamePrefix != "" {
		parts = append(parts, "name starts with "+q(p.NamePrefix))
	}
	if len(p.Description) > 0 {
		var ds []string
		for _, d := range p.Description {
			ds = append(ds, q(d))
		}
		parts = append(parts, "description = "+strings.Join(ds, " or "))
	}
	if p.DescPrefix != "" || p.DescSuffix != "" {
		parts = append(parts, fmt.Sprintf("description starts with %s and ends with %s", q(p.DescPrefix), q(p.DescSuffix)))
	}
	if p.MetaKey != "" {
		parts = append(parts, fmt.Sprintf("metadata %s = %s", q(p.MetaKey), q(p.MetaValue)))
	}
	if len(p.Tags) > 0 {
		var ts []string
		for _, t := range p.Tags {
			ts = append(ts, q(t))
		}
		parts = append(parts, "tags "+strings.Join(ts, " and "))
	}
	s := strings.Join(parts, "; ")
	if r.Guard != nil {
		s += " (and: " + guardNote[r.ID] + ")"
	}
	return strings.ReplaceAll(s, "|", "\\|")
}

var guardNote = map[string]string{
	"occm-lb":             "exactly `<namespace>_<service>` follows",
	"lab-cluster-appcred": "a capilab description, if any, names this lab and cluster",
	"lab-appcred":         "a capilab description, if any, names this lab",
}
