package report

import (
	"fmt"
	"html/template"
	"io"
	"strings"
)

// WriteHTML writes report.html: one self-contained page (no scripts, no
// external resources) with the verdict, counts, cluster and nodes, the
// run's properties, every failed test with message, location and its full
// text, progress when cut short, notes, artifacts and the passed tests.
func WriteHTML(w io.Writer, r *Report) error {
	c := r.Counts()
	data := htmlData{
		R:       r,
		Summary: r.Summary(),
		Counts:  c,
		Setup:   r.setupLine(),
		Bad:     r.Bad(),
		Status:  string(r.Outcome),
		Title:   fmt.Sprintf("%s: %s", r.Name, strings.ToUpper(string(r.Outcome))),
	}
	for _, k := range r.Cases {
		if k.Status == Passed && !k.Setup {
			data.Passed = append(data.Passed, k)
		}
	}
	if !r.Started.IsZero() {
		data.Started = r.Started.UTC().Format("2006-01-02 15:04:05 UTC")
	}
	data.Duration = round(r.Duration).String()
	if r.Progress != nil && r.Outcome != OutcomePassed && r.Outcome != OutcomeFailed {
		data.Progress = r.Progress
	}
	return htmlTemplate.Execute(w, data)
}

type htmlData struct {
	R        *Report
	Title    string
	Summary  string
	Status   string
	Counts   Counts
	Setup    string
	Bad      []Case
	Passed   []Case
	Started  string
	Duration string
	Progress *Progress
}

var htmlTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"clean":    clean,
	"oneline":  oneLine,
	"round":    round,
	"join":     strings.Join,
	"truncate": func(s string) string { return truncateLines(clean(s), 400) },
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{{.Title}}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em;max-width:70em;color:#222}
h1{font-size:1.5em} h2{font-size:1.2em;margin-top:1.5em}
.v{display:inline-block;padding:.2em .6em;border-radius:.3em;color:#fff;font-weight:bold}
.passed{background:#2a7d2a}.failed,.error{background:#b52a2a}.timeout,.interrupted{background:#b5702a}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f3f3f3} pre{background:#f7f7f7;padding:.6em;overflow-x:auto;white-space:pre-wrap;font-size:.85em}
.case{border-left:4px solid #b52a2a;padding-left:.8em;margin:1em 0} code{font-size:.9em}
</style></head><body>
<h1>{{.R.Name}} <span class="v {{.Status}}">{{.Status}}</span></h1>
<p>{{.Summary}}</p>
{{with .R.Reason}}<p><b>Reason:</b> {{clean .}}</p>{{end}}
<table>
<tr><th>tests</th><td>{{.Counts.Passed}} passed, {{.Counts.Failed}} failed, {{.Counts.Errors}} errors, {{.Counts.Skipped}} skipped (of {{.Counts.Total}})</td></tr>
{{with .Setup}}<tr><th>suite setup/teardown</th><td>{{.}}</td></tr>{{end}}
<tr><th>duration</th><td>{{.Duration}}</td></tr>
{{with .Started}}<tr><th>started</th><td>{{.}}</td></tr>{{end}}
{{with .R.Cluster}}<tr><th>cluster</th><td>{{.Name}}{{with .Server}} ({{.}}){{end}}</td></tr>
<tr><th>Kubernetes</th><td>{{.Version}}</td></tr>
{{with .Provider}}<tr><th>provider</th><td>{{.}}</td></tr>{{end}}{{end}}
{{range .R.Properties}}<tr><th>{{.Name}}</th><td><code>{{clean .Value}}</code></td></tr>
{{end}}</table>
{{with .R.Cluster}}{{if .Nodes}}<h2>Nodes ({{len .Nodes}})</h2>
<table><tr><th>node</th><th>roles</th><th>ready</th><th>kubelet</th><th>OS</th><th>runtime</th><th>address</th></tr>
{{range .Nodes}}<tr><td>{{.Name}}</td><td>{{join .Roles ","}}</td><td>{{.Ready}}</td><td>{{.KubeletVersion}}</td><td>{{.OSImage}}</td><td>{{.ContainerRuntime}}</td><td>{{.InternalIP}}</td></tr>
{{end}}</table>{{end}}{{end}}
{{if .Bad}}<h2>Failed tests ({{len .Bad}})</h2>
{{range $i, $c := .Bad}}<div class="case"><h3>{{$c.Name}}</h3>
<p>{{$c.Status}} after {{round $c.Duration}}{{with $c.Location}} at <code>{{.}}</code>{{end}}</p>
{{with $c.Message}}<p><b>{{oneline .}}</b></p>{{end}}
{{with $c.Detail}}<pre>{{truncate .}}</pre>{{end}}
{{with $c.Output}}<details><summary>output</summary><pre>{{truncate .}}</pre></details>{{end}}
</div>
{{end}}{{end}}
{{with .Progress}}<h2>Progress when the run ended</h2>
<p>{{.Done}} of {{.Total}} tests done: {{.Completed}} passed, {{.Failed}} failed.</p>
{{if .Failures}}<ul>{{range .Failures}}<li>failed: {{.}}</li>{{end}}</ul>{{end}}{{end}}
{{if .R.Notes}}<h2>Notes</h2><ul>{{range .R.Notes}}<li>{{clean .}}</li>{{end}}</ul>{{end}}
{{if .R.Artifacts}}<h2>Artifacts</h2><ul>{{range .R.Artifacts}}<li>{{.Name}}: <code>{{.Path}}</code></li>{{end}}</ul>{{end}}
{{if .Passed}}<details><summary>Passed tests ({{len .Passed}})</summary><ul>
{{range .Passed}}<li>{{.Name}} ({{round .Duration}})</li>
{{end}}</ul></details>{{end}}
</body></html>
`))
