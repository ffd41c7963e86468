package conformance

import (
	"archive/tar"
	"compress/gzip"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/vmware-tanzu/sonobuoy/pkg/client/results"

	"github.com/capilab/capilab/internal/report"
)

// Paths inside sonobuoy's results tarball (the e2e plugin, Job driver).
const (
	resultsItemFile = "plugins/" + pluginName + "/sonobuoy_results.yaml"
	junitFile       = "plugins/" + pluginName + "/results/global/junit_01.xml"
	e2eLogFile      = "plugins/" + pluginName + "/results/global/e2e.log"
)

// Results is what a run's results tarball says.
type Results struct {
	// Cases are the e2e plugin's JUnit test cases, one per spec and suite
	// node, in the order the JUnit lists them.
	Cases []report.Case
	// PluginStatus is the e2e plugin's overall status in sonobuoy's result
	// tree (passed, failed, unknown, ...).
	PluginStatus string
	// Sonobuoy counts the leaves of sonobuoy's result tree as its CLI's
	// `sonobuoy results` does: failed includes timed-out items.
	Sonobuoy report.Counts
	// HasJUnit is false when the plugin left no JUnit (it did not finish).
	HasJUnit bool
	// E2ELog is the e2e binary's log inside the extracted tree ("" when absent).
	E2ELog string
}

// ExtractTarball unpacks a results tarball (gzip'd tar) into dir, refusing
// paths that would leave it.
func ExtractTarball(tarball, dir string) error {
	f, err := os.Open(tarball)
	if err != nil {
		return err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return fmt.Errorf("%s: %w", tarball, err)
	}
	defer gz.Close()
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", tarball, err)
		}
		name := filepath.Clean(h.Name)
		if filepath.IsAbs(name) || name == ".." || strings.HasPrefix(name, ".."+string(filepath.Separator)) {
			continue
		}
		target := filepath.Join(dir, name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			out, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
			if err != nil {
				return err
			}
			_, err = io.Copy(out, tr)
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("%s: %s: %w", tarball, h.Name, err)
			}
		}
	}
}

// ReadResults reads an extracted results tree.
func ReadResults(dir string) (*Results, error) {
	res := &Results{}
	data, err := os.ReadFile(filepath.Join(dir, resultsItemFile))
	switch {
	case err == nil:
		var item results.Item
		if err := yaml.Unmarshal(data, &item); err != nil {
			return nil, fmt.Errorf("%s: %w", resultsItemFile, err)
		}
		res.PluginStatus = item.Status
		res.Sonobuoy = countLeaves(&item)
	case errors.Is(err, fs.ErrNotExist):
		res.PluginStatus = "missing"
	default:
		return nil, err
	}
	f, err := os.Open(filepath.Join(dir, junitFile))
	switch {
	case err == nil:
		defer f.Close()
		res.Cases, err = ParseJUnit(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", junitFile, err)
		}
		res.HasJUnit = true
	case !errors.Is(err, fs.ErrNotExist):
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(dir, e2eLogFile)); err == nil {
		res.E2ELog = filepath.Join(dir, e2eLogFile)
	}
	return res, nil
}

// countLeaves counts sonobuoy's result tree the way `sonobuoy results`
// prints it: every leaf by status, timeouts as failures.
func countLeaves(it *results.Item) report.Counts {
	var c report.Counts
	var walk func(*results.Item)
	walk = func(it *results.Item) {
		if len(it.Items) > 0 {
			for i := range it.Items {
				walk(&it.Items[i])
			}
			return
		}
		c.Total++
		switch it.Status {
		case results.StatusPassed:
			c.Passed++
		case results.StatusFailed, results.StatusTimeout:
			c.Failed++
		case results.StatusSkipped:
			c.Skipped++
		default:
			c.Errors++ // unknown: neither passed nor failed nor skipped
		}
	}
	walk(it)
	return c
}

// suiteNodes are the JUnit names Ginkgo gives suite-level setup and
// teardown nodes; specs are named "[It] <text>".
var suiteNodes = []string{
	"[SynchronizedBeforeSuite]", "[SynchronizedAfterSuite]", "[BeforeSuite]", "[AfterSuite]",
	"[ReportBeforeSuite]", "[ReportAfterSuite]", "[DeferCleanup (Suite)]",
}

// locationRE finds where Ginkgo says a failure happened: "In [It] at:
// path/file.go:123 @ timestamp".
var locationRE = regexp.MustCompile(`(?m)\bat: (\S+\.go:\d+)`)

// ParseJUnit reads Ginkgo's JUnit (as the e2e binary writes it) into
// report cases: the spec's text without Ginkgo's "[It] " prefix, status
// with sonobuoy's rules (an error element counts as failed, as in its
// result tree), duration, failure message, location and text; the spec's
// captured output for failed specs.
func ParseJUnit(r io.Reader) ([]report.Case, error) {
	var doc results.JUnitResult
	if err := xml.NewDecoder(r).Decode(&doc); err != nil {
		return nil, fmt.Errorf("decode JUnit: %w", err)
	}
	var cases []report.Case
	for _, s := range doc.Suites.Suites {
		for _, t := range s.TestCases {
			c := report.Case{Suite: s.Name, Name: strings.TrimPrefix(t.Name, "[It] ")}
			for _, n := range suiteNodes {
				if strings.HasPrefix(t.Name, n) {
					c.Setup = true
				}
			}
			if secs, err := strconv.ParseFloat(strings.TrimSpace(t.Time), 64); err == nil {
				c.Duration = time.Duration(secs * float64(time.Second))
			}
			switch {
			case results.JUnitSkipped(t):
				c.Status = report.Skipped
				c.Message = t.SkipMessage.Message
			case results.JUnitFailed(t):
				c.Status = report.Failed
				c.Message, c.Detail = t.Failure.Message, t.Failure.Contents
			case results.JUnitErrored(t):
				c.Status = report.Failed
				c.Message, c.Detail = t.ErrorMessage.Message, t.ErrorMessage.Contents
			default:
				c.Status = report.Passed
			}
			if c.Status == report.Failed {
				if m := locationRE.FindStringSubmatch(c.Detail); m != nil {
					c.Location = m[1]
				}
				c.Output = strings.TrimSpace(strings.Join([]string{t.SystemOut, t.SystemErr}, "\n"))
				if c.Message == "" {
					c.Message = firstLine(c.Detail)
				}
			}
			cases = append(cases, c)
		}
	}
	return cases, nil
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
