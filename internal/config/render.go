package config

import (
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/tabwriter"
)

const redacted = "<redacted>"

// display is the knob's value as `make config` prints it: secrets redacted,
// and credentials inside URLs (http_proxy=http://user:pass@host) masked.
func (k Knob) display(s *Settings) string {
	v := k.Format(s)
	if u, err := url.Parse(v); err == nil && u.User != nil {
		if _, hasPassword := u.User.Password(); hasPassword {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
			v = strings.Replace(u.String(), "xxxxx", redacted, 1)
		}
	}
	return v
}

// groupTitles orders and names the knob groups.
var groupTitles = []struct{ group, title string }{
	{"lab", "Lab (management side)"},
	{"cluster", "Workload clusters"},
	{"addons", "Addons (true, false or a version)"},
	{"run", "This run"},
}

// WriteTable prints the effective settings with the source of each value.
func (l *Loaded) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	knobs := Knobs()
	for i, g := range groupTitles {
		if i > 0 {
			fmt.Fprintln(tw)
		}
		fmt.Fprintf(tw, "# %s\n", g.title)
		for _, k := range knobs {
			if k.Group == g.group {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", k.Key, k.display(&l.Settings), l.Sources[k.Key])
			}
		}
	}
	return tw.Flush()
}

// MarkdownTable is the README's settings table, generated from the model so
// it cannot go stale (a test compares it with README.md).
func MarkdownTable(kubernetesDefault string) string {
	d := Defaults(kubernetesDefault)
	var b strings.Builder
	for _, g := range groupTitles {
		fmt.Fprintf(&b, "\n**%s**\n\n| setting (lab.yaml) | environment | default | meaning |\n|---|---|---|---|\n", g.title)
		for _, k := range Knobs() {
			if k.Group != g.group {
				continue
			}
			def := k.display(&d)
			if def == "" {
				def = "—"
			}
			fmt.Fprintf(&b, "| `%s` | %s | `%s` | %s |\n", k.Key, "`"+strings.Join(k.Env, "`, `")+"`", def, strings.ReplaceAll(k.Doc, "|", "\\|"))
		}
	}
	return b.String()
}
