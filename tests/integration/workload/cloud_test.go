//go:build integration

package workload_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/capilab/capilab/internal/cloud"
	"github.com/capilab/capilab/internal/logging"
	"github.com/capilab/capilab/internal/workload"
)

// TestCloudSeam: what preflight reads of the cloud, read from devcloud as
// the lab user: the only external network, a flavor, the quotas.
func TestCloudSeam(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := cloud.Connect(ctx, cloud.Options{Cloud: labCloud, Secrets: logging.NewSecrets()})
	if err != nil {
		t.Fatal(err)
	}
	o := workload.OpenStack{C: c}
	ext, err := o.ExternalNetwork(ctx, "")
	if err != nil || ext != "public" {
		t.Errorf("the only external network: %q, %v; want public", ext, err)
	}
	if got, err := o.ExternalNetwork(ctx, "public"); err != nil || got != "public" {
		t.Errorf("external network by name: %q, %v", got, err)
	}
	if _, err := o.ExternalNetwork(ctx, "no-such-network"); !errors.Is(err, workload.ErrNotFound) {
		t.Errorf("a missing external network: %v, want not found", err)
	}
	q, err := o.Quota(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if q.Instances.Limit == 0 || q.Cores.Limit == 0 || q.RAMMiB.Limit == 0 {
		t.Errorf("quota limits read as zero: %+v", q)
	}
}
