package pipeline

import (
	"fmt"
	"html/template"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/capilab/capilab/internal/report"
)

// failure is one failing case for the renderings.
type failure struct {
	Phase, Suite, Name, Message, Location string
}

func (r *Record) failures() []failure {
	var out []failure
	for _, p := range r.Phases {
		for _, c := range p.Cases {
			if c.Status == report.Failed || c.Status == report.Errored {
				out = append(out, failure{Phase: p.Name, Suite: c.Suite, Name: c.Name, Message: oneLine(c.Message), Location: c.Location})
			}
		}
	}
	return out
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

func round(d time.Duration) string { return d.Round(time.Second).String() }

// WriteMarkdown writes summary.md: the verdict, the phases, the failing
// tests with their messages, leaks with their ownership reason, the
// comparison with the previous run and where the logs are.
func WriteMarkdown(w io.Writer, r *Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s %s: %s\n\n", r.Name, r.ID, r.Verdict)
	fmt.Fprintf(&b, "Started %s, took %s, exit code %d. Clusters: %s.\n\n", r.Start.UTC().Format(time.RFC3339), round(r.End.Sub(r.Start)), r.ExitCode, strings.Join(r.Clusters, ", "))
	b.WriteString("| phase | outcome | time | note |\n|---|---|---|---|\n")
	for _, p := range r.Phases {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", p.Name, p.Outcome, round(p.Duration()), mdCell(oneLine(p.Error)))
	}
	if f := r.failures(); len(f) > 0 {
		fmt.Fprintf(&b, "\n## Failing (%d)\n\n", len(f))
		for _, x := range f {
			fmt.Fprintf(&b, "- **%s** (%s)", mdCell(x.Name), x.Suite)
			if x.Message != "" {
				fmt.Fprintf(&b, ": %s", mdCell(x.Message))
			}
			if x.Location != "" {
				fmt.Fprintf(&b, " at `%s`", x.Location)
			}
			b.WriteString("\n")
		}
	}
	for _, p := range r.Phases {
		if len(p.Leaks) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n## Leaks found by %s (%d)\n\n| type | name | id | cluster | why it is the lab's |\n|---|---|---|---|---|\n", p.Name, len(p.Leaks))
		for _, l := range p.Leaks {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", l.Type, mdCell(l.Name), l.ID, l.Cluster, mdCell(l.Reason))
		}
	}
	if c := r.Comparison; c != nil {
		fmt.Fprintf(&b, "\n## Compared with %s (%s)\n\n| phase | before | now |\n|---|---|---|\n", c.PreviousID, c.PreviousVerdict)
		for _, d := range c.Durations {
			fmt.Fprintf(&b, "| %s | %s | %s |\n", d.Name, round(d.Previous), round(d.Current))
		}
		if len(c.NewlyFailing) > 0 {
			fmt.Fprintf(&b, "\nNewly failing: %s\n", mdCell(strings.Join(c.NewlyFailing, "; ")))
		}
		if len(c.Fixed) > 0 {
			fmt.Fprintf(&b, "\nFixed since: %s\n", mdCell(strings.Join(c.Fixed, "; ")))
		}
	}
	var arts []string
	for _, p := range r.Phases {
		for _, a := range p.Artifacts {
			arts = append(arts, fmt.Sprintf("- %s: [%s](%s)", p.Name, a.Name, a.Path))
		}
	}
	if len(arts) > 0 {
		b.WriteString("\n## Logs and files\n\n" + strings.Join(arts, "\n") + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func mdCell(s string) string { return strings.NewReplacer("|", "\\|", "\n", " ").Replace(s) }

type htmlPhase struct {
	*Phase
	Left, Width float64
	Class       string
	Time        string
}

type htmlRecord struct {
	*Record
	Phases   []htmlPhase
	Failures []failure
	Took     string
	Class    string
	Leaks    []Leak
}

func outcomeClass(o Outcome) string {
	switch o {
	case Passed:
		return "ok"
	case Skipped:
		return "skip"
	case TestsFailed, Leaked:
		return "warn"
	}
	return "bad"
}

// WriteHTML writes index.html: one self-contained page (no scripts, no
// external resources) with the verdict, a timeline of the phases, the
// phase table, failing tests, leaks, the comparison and links to every file.
func WriteHTML(w io.Writer, r *Record) error {
	total := r.End.Sub(r.Start)
	if total <= 0 {
		total = time.Second
	}
	d := htmlRecord{Record: r, Failures: r.failures(), Took: round(total), Class: "ok"}
	if r.Verdict != VerdictPassed {
		d.Class = "bad"
	}
	for _, p := range r.Phases {
		hp := htmlPhase{Phase: p, Class: outcomeClass(p.Outcome), Time: round(p.Duration())}
		if !p.Start.IsZero() {
			hp.Left = 100 * float64(p.Start.Sub(r.Start)) / float64(total)
			hp.Width = max(0.5, 100*float64(p.Duration())/float64(total))
		}
		d.Phases = append(d.Phases, hp)
		d.Leaks = append(d.Leaks, p.Leaks...)
	}
	return pageTemplate.Execute(w, d)
}

var pageTemplate = template.Must(template.New("page").Funcs(template.FuncMap{
	"base": filepath.Base,
	"pct":  func(f float64) string { return fmt.Sprintf("%.2f%%", f) },
	"dur":  round,
	"utc":  func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Name}} {{.ID}}: {{.Verdict}}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
h1 .ok{color:#176c2e} h1 .bad{color:#b3261e}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}
td.ok{background:#dff3e4}td.bad{background:#fbe0de}td.warn{background:#fff1cc}td.skip{background:#eee;color:#666}
.timeline{position:relative;height:{{len .Phases}}.6em;border:1px solid #ccc;margin:1em 0;background:#fafafa}
.bar{position:absolute;height:1.3em;font-size:.75em;overflow:hidden;white-space:nowrap;border-radius:2px;color:#000}
.bar.ok{background:#7bc88f}.bar.bad{background:#e8847c}.bar.warn{background:#f2c94c}.bar.skip{background:#ccc}
code{background:#f4f4f4;padding:0 .2em}
</style></head><body>
<h1>{{.Name}} {{.ID}}: <span class="{{.Class}}" id="verdict">{{.Verdict}}</span></h1>
<p>Started {{utc .Start}}, took {{.Took}}, exit code {{.ExitCode}}. Clusters: {{range $i, $c := .Clusters}}{{if $i}}, {{end}}{{$c}}{{end}}.</p>
<h2>Timeline</h2>
<div class="timeline" id="timeline">{{range $i, $p := .Phases}}<div class="bar {{$p.Class}}" title="{{$p.Name}}: {{$p.Outcome}} ({{$p.Time}})" style="left:{{pct $p.Left}};width:{{pct $p.Width}};top:{{$i}}.3em">{{$p.Name}} {{$p.Time}}</div>{{end}}</div>
<h2>Phases</h2>
<table id="phases"><tr><th>phase</th><th>outcome</th><th>time</th><th>cases</th><th>note</th></tr>
{{range .Phases}}<tr><td>{{.Name}}</td><td class="{{.Class}}">{{.Outcome}}</td><td>{{.Time}}</td><td>{{len .Cases}}</td><td>{{.Error}}{{range .Notes}}<br>{{.}}{{end}}</td></tr>
{{end}}</table>
{{if .Failures}}<h2>Failing ({{len .Failures}})</h2>
<table id="failures"><tr><th>test</th><th>where</th><th>message</th></tr>
{{range .Failures}}<tr><td>{{.Name}}</td><td>{{.Suite}}{{if .Location}}<br><code>{{.Location}}</code>{{end}}</td><td>{{.Message}}</td></tr>
{{end}}</table>{{end}}
{{if .Leaks}}<h2>Leaks ({{len .Leaks}})</h2>
<table id="leaks"><tr><th>type</th><th>name</th><th>id</th><th>cluster</th><th>why it is the lab's</th></tr>
{{range .Leaks}}<tr><td>{{.Type}}</td><td>{{.Name}}</td><td>{{.ID}}</td><td>{{.Cluster}}</td><td>{{.Reason}}</td></tr>
{{end}}</table>{{end}}
{{with .Comparison}}<h2>Compared with {{.PreviousID}} ({{.PreviousVerdict}})</h2>
<table id="comparison"><tr><th>phase</th><th>before</th><th>now</th></tr>
{{range .Durations}}<tr><td>{{.Name}}</td><td>{{dur .Previous}}</td><td>{{dur .Current}}</td></tr>{{end}}</table>
{{if .NewlyFailing}}<p>Newly failing: {{range $i, $n := .NewlyFailing}}{{if $i}}; {{end}}{{$n}}{{end}}</p>{{end}}
{{if .Fixed}}<p>Fixed since: {{range $i, $n := .Fixed}}{{if $i}}; {{end}}{{$n}}{{end}}</p>{{end}}{{end}}
<h2>Logs and files</h2>
<ul id="files"><li><a href="run.json">run.json</a></li><li><a href="junit.xml">junit.xml</a></li><li><a href="summary.md">summary.md</a></li>
{{range .Phases}}{{$p := .Name}}{{range .Artifacts}}<li>{{$p}}: <a href="{{.Path}}">{{.Name}}</a></li>{{end}}{{end}}</ul>
</body></html>
`))
