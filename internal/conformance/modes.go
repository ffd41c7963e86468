// Package conformance runs Kubernetes e2e tests against a cluster through
// sonobuoy's Go library (no sonobuoy binary): it turns a mode into sonobuoy's
// e2e plugin settings, starts the run, waits for it with named, bounded
// waits while printing progress, retrieves the results (with retries, also
// after a timeout or Ctrl-C), always removes what sonobuoy put into the
// cluster, and turns the results into a report.Report.
package conformance

import (
	_ "embed"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Mode names a selection of e2e tests.
type Mode string

// The modes of the check targets. quick and certified-conformance are
// sonobuoy's modes of the same name; storage is SCS's; csi runs the
// external storage suite against a CSI driver described by a test-driver
// definition (the Cinder CSI driver by default).
const (
	ModeQuick       Mode = "quick"
	ModeConformance Mode = "certified-conformance"
	ModeStorage     Mode = "storage"
	ModeCSI         Mode = "csi"
)

// Selection is what the e2e plugin runs: ginkgo focus and skip regular
// expressions and the parallelism setting of the conformance image's runner.
type Selection struct {
	Focus    string
	Skip     string
	Parallel string // "", "false", "true" (the runner's choice of processes) or a process count
}

// modeSpec is a mode's selection and default time bound.
type modeSpec struct {
	sel     Selection
	timeout time.Duration
	doc     string
}

// The selections are sonobuoy's (its modes are not exported by its
// library, so their strings are restated here) and SCS's for storage.
// Quick's single test takes seconds; certified conformance takes about two
// hours serially on small clusters; the storage and CSI suites take one to
// two hours against a real cloud (cloud-provider-openstack bounds its own
// Cinder run at 1h45m).
var modes = map[Mode]modeSpec{
	ModeQuick: {
		sel:     Selection{Focus: "Pods should be submitted and removed"},
		timeout: 15 * time.Minute,
		doc:     "one test that creates and deletes a pod",
	},
	ModeConformance: {
		sel:     Selection{Focus: `\[Conformance\]`},
		timeout: 4 * time.Hour,
		doc:     "every [Conformance] test, disruptive ones included",
	},
	ModeStorage: {
		sel:     Selection{Focus: "Storage", Skip: "Disruptive"},
		timeout: 3 * time.Hour,
		doc:     "tests whose name says Storage, disruptive ones left out",
	},
	ModeCSI: {
		sel:     Selection{Focus: `External.Storage`, Skip: csiSkip},
		timeout: 3 * time.Hour,
		doc:     "the external storage suite against the CSI driver of the test-driver definition, disruptive ones left out",
	},
}

// csiSkip leaves out disruptive tests and three specs the Cinder CSI
// driver's own CI leaves out: two provisioning specs that fail in
// single-node clouds and expansion of generic ephemeral volumes.
var csiSkip = strings.Join([]string{
	`\[Disruptive\]`,
	`\[Testpattern:\s+Dynamic\s+PV\s+\(default\s+fs\)\]\s+provisioning\s+should\s+mount\s+multiple\s+PV\s+pointing\s+to\s+the\s+same\s+storage\s+on\s+the\s+same\s+node`,
	`\[Testpattern:\s+Dynamic\s+PV\s+\(default\s+fs\)\]\s+provisioning\s+should\s+provision\s+storage\s+with\s+any\s+volume\s+data\s+source\s+\[Serial\]`,
	`should\s+support\s+expansion\s+of\s+pvcs\s+created\s+for\s+ephemeral\s+pvcs`,
}, "|")

// Modes lists the modes, sorted.
func Modes() []Mode {
	out := make([]Mode, 0, len(modes))
	for m := range modes {
		out = append(out, m)
	}
	slices.Sort(out)
	return out
}

// ParseMode accepts a mode name.
func ParseMode(s string) (Mode, error) {
	m := Mode(strings.TrimSpace(s))
	if _, ok := modes[m]; !ok {
		names := make([]string, 0, len(modes))
		for _, k := range Modes() {
			names = append(names, string(k))
		}
		return "", fmt.Errorf("unknown mode %q (one of %s)", s, strings.Join(names, ", "))
	}
	return m, nil
}

// Selection is the mode's focus, skip and parallelism.
func (m Mode) Selection() Selection { return modes[m].sel }

// DefaultTimeout is the mode's bound on the whole run.
func (m Mode) DefaultTimeout() time.Duration { return modes[m].timeout }

// Doc says in a few words what the mode runs.
func (m Mode) Doc() string { return modes[m].doc }

// NeedsTestDriver reports whether the mode runs against a test-driver
// definition (the external storage suite).
func (m Mode) NeedsTestDriver() bool { return m == ModeCSI }

// Overrides are the user's E2E_FOCUS, E2E_SKIP and E2E_PARALLEL; empty
// fields keep the mode's value.
type Overrides struct {
	Focus, Skip, Parallel string
}

// Resolve applies overrides to the mode's selection.
func (m Mode) Resolve(o Overrides) Selection {
	sel := m.Selection()
	if o.Focus != "" {
		sel.Focus = o.Focus
	}
	if o.Skip != "" {
		sel.Skip = o.Skip
	}
	if o.Parallel != "" {
		sel.Parallel = o.Parallel
	}
	return sel
}

// CinderTestDriver is capilab's test-driver definition of the OpenStack
// Cinder CSI driver, what check-csi runs against unless told otherwise.
//
//go:embed cinder-test-driver.yaml
var CinderTestDriver []byte
