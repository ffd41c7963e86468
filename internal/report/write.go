package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/capilab/capilab/internal/fsutil"
)

// jsonReport is the JSON form: the report plus what is derived from it, so
// a machine need not recount.
type jsonReport struct {
	*Report
	Summary         string  `json:"summary"`
	OK              bool    `json:"ok"`
	DurationSeconds float64 `json:"duration_seconds"`
	Counts          Counts  `json:"counts"`
	AllCounts       Counts  `json:"all_counts"` // setup nodes included
}

// WriteJSON writes the report as indented JSON.
func WriteJSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(jsonReport{Report: r, Summary: r.Summary(), OK: r.OK(), DurationSeconds: r.Duration.Seconds(), Counts: r.Counts(), AllCounts: r.AllCounts()})
}

// ReadJSON reads a report written by WriteJSON.
func ReadJSON(rd io.Reader) (*Report, error) {
	var r Report
	if err := json.NewDecoder(rd).Decode(&r); err != nil {
		return nil, fmt.Errorf("read report: %w", err)
	}
	return &r, nil
}

// File names WriteFiles uses.
const (
	JUnitFile    = "junit.xml"
	MarkdownFile = "summary.md"
	HTMLFile     = "report.html"
	JSONFile     = "report.json"
)

// Files are the paths WriteFiles wrote.
type Files struct {
	JUnit, Markdown, HTML, JSON string
}

// WriteFiles renders the report into dir (created if needed) as junit.xml,
// summary.md, report.html and report.json, and lists them as artifacts of
// the report first, so each rendering names all four. Every file is written
// whole or not at all (temporary file, then rename).
func WriteFiles(dir string, r *Report) (Files, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Files{}, fmt.Errorf("report dir: %w", err)
	}
	f := Files{
		JUnit:    filepath.Join(dir, JUnitFile),
		Markdown: filepath.Join(dir, MarkdownFile),
		HTML:     filepath.Join(dir, HTMLFile),
		JSON:     filepath.Join(dir, JSONFile),
	}
	have := map[string]bool{}
	for _, a := range r.Artifacts {
		have[a.Path] = true
	}
	for _, a := range []Artifact{{"HTML report", f.HTML}, {"summary", f.Markdown}, {"JUnit XML", f.JUnit}, {"JSON", f.JSON}} {
		if !have[a.Path] {
			r.Artifacts = append(r.Artifacts, a)
		}
	}
	for path, render := range map[string]func(io.Writer, *Report) error{
		f.JUnit: WriteJUnit, f.Markdown: WriteMarkdown, f.HTML: WriteHTML, f.JSON: WriteJSON,
	} {
		var buf bytes.Buffer
		if err := render(&buf, r); err != nil {
			return Files{}, fmt.Errorf("render %s: %w", filepath.Base(path), err)
		}
		if err := fsutil.WriteAtomic(path, buf.Bytes(), 0o644); err != nil {
			return Files{}, err
		}
	}
	return f, nil
}
