package conformance

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestModeSelections(t *testing.T) {
	tests := []struct {
		mode        Mode
		focus, skip string
		timeout     time.Duration
	}{
		{ModeQuick, "Pods should be submitted and removed", "", 15 * time.Minute},
		{ModeConformance, `\[Conformance\]`, "", 4 * time.Hour},
		{ModeStorage, "Storage", "Disruptive", 3 * time.Hour},
		{ModeCSI, `External.Storage`, csiSkip, 3 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(string(tt.mode), func(t *testing.T) {
			sel := tt.mode.Selection()
			if sel.Focus != tt.focus || sel.Skip != tt.skip || sel.Parallel != "" {
				t.Errorf("selection = %+v, want focus %q skip %q", sel, tt.focus, tt.skip)
			}
			if got := tt.mode.DefaultTimeout(); got != tt.timeout {
				t.Errorf("timeout = %s, want %s", got, tt.timeout)
			}
			if tt.mode.Doc() == "" {
				t.Error("no doc")
			}
		})
	}
	if got := len(Modes()); got != len(tests) {
		t.Errorf("%d modes, the table has %d", got, len(tests))
	}
}

// The selections must pick the tests they are meant for and leave out
// what they are meant to leave out, with the e2e framework's real names.
func TestSelectionsMatchTestNames(t *testing.T) {
	names := map[string]string{
		"quick":      "[sig-node] Pods should be submitted and removed [NodeConformance] [Conformance]",
		"conf":       "[sig-network] DNS should provide DNS for the cluster [Conformance]",
		"disruptive": "[sig-storage] CSI Mock volume storage capacity [Disruptive] exhausted, immediate binding",
		"external":   "External Storage [Driver: cinder.csi.openstack.org] [Testpattern: Dynamic PV (default fs)] subPath should support existing directory",
		"extSkipped": "External Storage [Driver: cinder.csi.openstack.org] [Testpattern: Dynamic PV (default fs)] provisioning should mount multiple PV pointing to the same storage on the same node",
		"extDisrupt": "External Storage [Driver: cinder.csi.openstack.org] [Testpattern: Dynamic PV (default fs)] disruptive[Disruptive][LinuxOnly] Should test that pv written before kubelet restart is readable after restart.",
		"ephemeral":  "External Storage [Driver: cinder.csi.openstack.org] [Testpattern: Generic Ephemeral-volume (default fs) (late-binding)] ephemeral should support expansion of pvcs created for ephemeral pvcs",
	}
	runs := func(m Mode, name string) bool {
		sel := m.Selection()
		focus := regexp.MustCompile(sel.Focus).MatchString(name)
		skip := sel.Skip != "" && regexp.MustCompile(sel.Skip).MatchString(name)
		return focus && !skip
	}
	tests := []struct {
		mode Mode
		name string
		want bool
	}{
		{ModeQuick, names["quick"], true},
		{ModeQuick, names["conf"], false},
		{ModeConformance, names["conf"], true},
		{ModeConformance, names["quick"], true},
		{ModeStorage, names["external"], true},
		{ModeStorage, names["disruptive"], false},
		{ModeCSI, names["external"], true},
		{ModeCSI, names["extSkipped"], false},
		{ModeCSI, names["extDisrupt"], false},
		{ModeCSI, names["ephemeral"], false},
		{ModeCSI, names["conf"], false},
	}
	for _, tt := range tests {
		if got := runs(tt.mode, tt.name); got != tt.want {
			t.Errorf("%s runs %q = %t, want %t", tt.mode, tt.name, got, tt.want)
		}
	}
}

func TestParseMode(t *testing.T) {
	for _, m := range Modes() {
		if got, err := ParseMode(" " + string(m) + " "); err != nil || got != m {
			t.Errorf("ParseMode(%q) = %q, %v", m, got, err)
		}
	}
	_, err := ParseMode("non-disruptive")
	if err == nil || !strings.Contains(err.Error(), "unknown mode") || !strings.Contains(err.Error(), "certified-conformance") {
		t.Errorf("ParseMode(non-disruptive) = %v, want an error listing the modes", err)
	}
}

func TestResolveOverrides(t *testing.T) {
	sel := ModeQuick.Resolve(Overrides{Focus: "X", Parallel: "3"})
	if sel.Focus != "X" || sel.Skip != "" || sel.Parallel != "3" {
		t.Errorf("quick with overrides = %+v", sel)
	}
	sel = ModeStorage.Resolve(Overrides{Skip: "Slow"})
	if sel.Focus != "Storage" || sel.Skip != "Slow" {
		t.Errorf("storage with skip override = %+v", sel)
	}
}

func TestCinderTestDriver(t *testing.T) {
	if got := testDriverName(CinderTestDriver); got != "cinder.csi.openstack.org" {
		t.Errorf("DriverInfo.Name = %q", got)
	}
}

func TestProcessRuns(t *testing.T) {
	self := os.Getpid()
	start := processStart(self)
	if start == "" {
		t.Fatal("no start time for this process")
	}
	if !processRuns(fmt.Sprintf("%d:%s", self, start)) {
		t.Error("this process does not run")
	}
	if processRuns(fmt.Sprintf("%d:%s0", self, start)) {
		t.Error("a reused pid (other start time) counts as the same process")
	}
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	if processRuns(fmt.Sprintf("%d:1", cmd.Process.Pid)) {
		t.Error("an ended process runs")
	}
	for _, unknown := range []string{"", "x:1", "12", "12:"} {
		if !processRuns(unknown) {
			t.Errorf("%q: what cannot be told must count as running", unknown)
		}
	}
}
