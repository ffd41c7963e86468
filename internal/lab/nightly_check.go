package lab

import (
	"context"
	"errors"
	"time"

	"github.com/capilab/capilab/internal/report"
)

// CheckCluster runs the check of mode against one cluster's kubeconfig,
// writing its files into dir.
func (r *Run) CheckCluster(ctx context.Context, mode, kubeconfig, name, dir string) (*report.Report, error) {
	return nil, errors.New("check: not wired into the nightly run yet")
}

// checkTimeout bounds the check phase.
func (r *Run) checkTimeout() time.Duration { return 3 * time.Hour }
