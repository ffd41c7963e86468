package lab

import (
	"testing"
	"time"

	"github.com/capilab/capilab/internal/config"
	"github.com/capilab/capilab/internal/conformance"
)

func TestCheckTimeout(t *testing.T) {
	tests := []struct {
		name     string
		sonomode string
		timeout  time.Duration
		want     time.Duration
	}{
		{"CHECK_TIMEOUT wins", "quick", 42 * time.Minute, 42 * time.Minute},
		{"quick's default", "quick", 0, conformance.ModeQuick.DefaultTimeout()},
		{"certified-conformance's default", "certified-conformance", 0, conformance.ModeConformance.DefaultTimeout()},
		{"csi's default", "csi", 0, conformance.ModeCSI.DefaultTimeout()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Run{Settings: &config.Settings{Sonomode: tt.sonomode, CheckTimeout: tt.timeout}}
			if got := r.checkTimeout(); got != tt.want {
				t.Errorf("checkTimeout() = %s, want %s", got, tt.want)
			}
		})
	}
}

// TestStopGraceLetsACheckCleanUp: an interrupted check keeps the time to
// retrieve briefly and remove sonobuoy; other targets keep the normal grace.
func TestStopGraceLetsACheckCleanUp(t *testing.T) {
	normal := 20 * time.Second
	for target, want := range map[string]time.Duration{
		"check:run": 12 * time.Minute, "check:quick": 12 * time.Minute, "check:csi": 12 * time.Minute,
		"nightly:run": 60 * time.Minute, "clean:full": normal,
	} {
		if got := StopGrace(target, normal); got != want {
			t.Errorf("StopGrace(%s) = %s, want %s", target, got, want)
		}
	}
}
