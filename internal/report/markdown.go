package report

import (
	"fmt"
	"io"
	"strings"
)

// maxDetailLines bounds how much of one failure's text the summaries show;
// JUnit and JSON keep all of it.
const maxDetailLines = 40

// WriteMarkdown writes summary.md: the verdict, counts, duration, cluster
// and nodes, the run's properties, every failed test with its message and
// location, progress when the run was cut short, notes and artifacts.
func WriteMarkdown(w io.Writer, r *Report) error {
	var b strings.Builder
	c := r.Counts()
	fmt.Fprintf(&b, "# %s: %s\n\n", r.Name, strings.ToUpper(string(r.Outcome)))
	fmt.Fprintf(&b, "%s\n\n", mdEscape(r.Summary()))
	if r.Reason != "" {
		fmt.Fprintf(&b, "Reason: %s\n\n", mdEscape(r.Reason))
	}
	b.WriteString("| | |\n|---|---|\n")
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, "| %s | %s |\n", k, mdCell(v))
		}
	}
	row("tests", fmt.Sprintf("%d passed, %d failed, %d errors, %d skipped (of %d)", c.Passed, c.Failed, c.Errors, c.Skipped, c.Total))
	if s := r.setupLine(); s != "" {
		row("suite setup/teardown", s)
	}
	row("duration", round(r.Duration).String())
	if !r.Started.IsZero() {
		row("started", r.Started.UTC().Format("2006-01-02 15:04:05 UTC"))
	}
	if cl := r.Cluster; cl != nil {
		row("cluster", strings.TrimSpace(cl.Name+" "+paren(cl.Server)))
		row("Kubernetes", cl.Version)
		row("provider", cl.Provider)
		row("nodes", fmt.Sprintf("%d", len(cl.Nodes)))
	}
	for _, p := range r.Properties {
		if p.Value != "" {
			fmt.Fprintf(&b, "| %s | %s |\n", mdCell(p.Name), mdCode(p.Value))
		}
	}
	b.WriteString("\n")

	if cl := r.Cluster; cl != nil && len(cl.Nodes) > 0 {
		b.WriteString("## Nodes\n\n| node | roles | ready | kubelet | OS | runtime | address |\n|---|---|---|---|---|---|---|\n")
		for _, n := range cl.Nodes {
			fmt.Fprintf(&b, "| %s | %s | %t | %s | %s | %s | %s |\n", mdCell(n.Name), mdCell(strings.Join(n.Roles, ",")), n.Ready,
				mdCell(n.KubeletVersion), mdCell(n.OSImage), mdCell(n.ContainerRuntime), mdCell(n.InternalIP))
		}
		b.WriteString("\n")
	}

	if bad := r.Bad(); len(bad) > 0 {
		fmt.Fprintf(&b, "## Failed tests (%d)\n\n", len(bad))
		for i, k := range bad {
			fmt.Fprintf(&b, "### %d. %s\n\n", i+1, mdEscape(k.Name))
			if k.Location != "" {
				fmt.Fprintf(&b, "- location: `%s`\n", strings.ReplaceAll(k.Location, "`", "'"))
			}
			fmt.Fprintf(&b, "- status: %s, after %s\n", k.Status, round(k.Duration))
			if k.Message != "" {
				fmt.Fprintf(&b, "- message: %s\n", mdEscape(oneLine(k.Message)))
			}
			if k.Detail != "" {
				fmt.Fprintf(&b, "\n````text\n%s\n````\n", truncateLines(clean(k.Detail), maxDetailLines))
			}
			b.WriteString("\n")
		}
	}

	if p := r.Progress; p != nil && r.Outcome != OutcomePassed && r.Outcome != OutcomeFailed {
		fmt.Fprintf(&b, "## Progress when the run ended\n\n%d of %d tests done: %d passed, %d failed.\n\n", p.Done(), p.Total, p.Completed, p.Failed)
		for _, f := range p.Failures {
			fmt.Fprintf(&b, "- failed: %s\n", mdEscape(f))
		}
		if len(p.Failures) > 0 {
			b.WriteString("\n")
		}
	}
	if len(r.Notes) > 0 {
		b.WriteString("## Notes\n\n")
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "- %s\n", mdEscape(n))
		}
		b.WriteString("\n")
	}
	if len(r.Artifacts) > 0 {
		b.WriteString("## Artifacts\n\n")
		for _, a := range r.Artifacts {
			fmt.Fprintf(&b, "- %s: `%s`\n", mdEscape(a.Name), a.Path)
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// setupLine counts the setup nodes, empty when there are none.
func (r *Report) setupLine() string {
	var s Counts
	for _, k := range r.Cases {
		if k.Setup {
			s.add(k.Status)
		}
	}
	if s.Total == 0 {
		return ""
	}
	return fmt.Sprintf("%d passed, %d failed, %d errors, %d skipped", s.Passed, s.Failed, s.Errors, s.Skipped)
}

func paren(s string) string {
	if s == "" {
		return ""
	}
	return "(" + s + ")"
}

func oneLine(s string) string {
	s = clean(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i] + " …"
	}
	return s
}

func truncateLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) <= n {
		return strings.Join(lines, "\n")
	}
	return strings.Join(lines[:n], "\n") + fmt.Sprintf("\n… (%d more lines in junit.xml)", len(lines)-n)
}

var mdReplacer = strings.NewReplacer("\\", "\\\\", "*", "\\*", "_", "\\_", "`", "\\`", "<", "&lt;", ">", "&gt;", "[", "\\[", "]", "\\]")

func mdEscape(s string) string { return mdReplacer.Replace(clean(s)) }

func mdCell(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(mdEscape(s), "|", "\\|"), "\n", " ")
}

// mdCode is a value as inline code in a table cell (regular expressions
// read as they are typed).
func mdCode(s string) string {
	s = strings.ReplaceAll(strings.ReplaceAll(clean(s), "`", "'"), "\n", " ")
	return "`" + strings.ReplaceAll(s, "|", "\\|") + "`"
}
