//go:build integration

package cli_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/keypairs"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servergroups"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/security/groups"

	"github.com/capilab/capilab/tests/devcloudtest"
)

// labKeypair creates the lab's keypair <prefix>-keypair (what the remote
// management node uses), removed when the test ends.
func labKeypair(t *testing.T, prefix string) {
	t.Helper()
	compute := devcloudtest.Member().Compute(t)
	kp, err := keypairs.Create(context.Background(), compute, keypairs.CreateOpts{Name: prefix + "-keypair"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	devcloudtest.Cleanup(t, "keypair "+kp.Name, func(ctx context.Context) error {
		return keypairs.Delete(ctx, compute, kp.Name, keypairs.DeleteOpts{}).ExtractErr()
	})
}

// TestLeakcheckIsGreenWhileTheLabLives: after a cluster's resources are
// gone, make leakcheck (README: nightly CI after deleting clusters) passes
// although the lab's own credential and keypair exist — they are the
// living lab, listed, not counted; LEAK_SCOPE=lab counts them.
func TestLeakcheckIsGreenWhileTheLabLives(t *testing.T) {
	t.Parallel()
	l := newLab(t, "leak")
	t.Cleanup(func() { revokeLab(t, l.prefix) })
	if r := l.run("make appcred CLUSTER=c1"); r.code != 0 {
		t.Fatalf("setup: %s", r)
	}
	labKeypair(t, l.prefix)
	if r := l.run("bin/mage clean:check"); r.code != 3 || !strings.Contains(r.stdout, l.prefix+"-c1-appcred") {
		t.Errorf("with cluster c1's credential left: want exit 3 naming it:\n%s", r)
	}
	if r := l.run("make appcred-delete CLUSTER=c1"); r.code != 0 { // the cluster is deleted
		t.Fatal(r)
	}
	r := l.run("make leakcheck")
	if r.code != 0 || !strings.Contains(r.stdout, "living") || !strings.Contains(r.stdout, l.prefix+"-keypair") || !strings.Contains(r.stdout, l.prefix+"-appcred") {
		t.Errorf("make leakcheck after deleting the cluster, the lab alive: want exit 0, the lab's credential and keypair listed as living:\n%s", r)
	}
	if r := l.run("bin/mage clean:check LEAK_SCOPE=lab"); r.code != 3 || !strings.Contains(r.stdout, l.prefix+"-keypair") {
		t.Errorf("LEAK_SCOPE=lab: want exit 3 listing the lab's own resources:\n%s", r)
	}
}

// TestFullcleanOlderThanThenLeakcheckGoesGreen: a lab entirely older than
// OLDER_THAN is removed by fullclean OLDER_THAN, including what the cloud
// reports no age for (server groups, keypair, credentials), so leakcheck
// is green afterwards: README's `make leakcheck OLDER_THAN=…`, and with
// LEAK_SCOPE=lab, which counts everything the lab owns whatever its age
// (a superset of what plain `make leakcheck` counts).
func TestFullcleanOlderThanThenLeakcheckGoesGreen(t *testing.T) {
	t.Parallel()
	l := newLab(t, "age")
	t.Cleanup(func() { revokeLab(t, l.prefix) })
	if r := l.run("make appcred CLUSTER=c1"); r.code != 0 {
		t.Fatalf("setup: %s", r)
	}
	labKeypair(t, l.prefix)
	ctx := context.Background()
	m := devcloudtest.Member()
	compute, network := m.Compute(t), m.Network(t)
	sg, err := groups.Create(ctx, network, groups.CreateOpts{Name: l.prefix + "-c1-cilium"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	devcloudtest.Cleanup(t, "security group "+sg.Name, func(ctx context.Context) error { return groups.Delete(ctx, network, sg.ID).ExtractErr() })
	var srvgroups []string
	for _, role := range []string{"controller", "worker"} {
		g, err := servergroups.Create(ctx, compute, servergroups.CreateOpts{Name: l.prefix + "-c1-" + role, Policy: "soft-anti-affinity"}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		srvgroups = append(srvgroups, g.ID)
		devcloudtest.Cleanup(t, "server group "+g.Name, func(ctx context.Context) error { return servergroups.Delete(ctx, compute, g.ID).ExtractErr() })
	}
	if _, err := os.Stat(filepath.Join(l.dir, "state", "clusters", "c1")); err != nil {
		t.Fatal(err)
	}
	// OLDER_THAN=3s: wait (bounded) until the newest resource is older than that.
	seeded := time.Now()
	devcloudtest.WaitFor(t, 30*time.Second, "the lab to be older than 4s", func(context.Context) (bool, error) {
		return time.Since(seeded) > 4*time.Second, nil
	})
	if r := l.run("make fullclean OLDER_THAN=3s"); r.code != 0 {
		t.Fatalf("make fullclean OLDER_THAN=3s: %s", r)
	}
	for _, line := range []string{"make leakcheck OLDER_THAN=3s", "make leakcheck LEAK_SCOPE=lab"} {
		if r := l.run(line); r.code != 0 {
			t.Errorf("%s after fullclean OLDER_THAN=3s: want exit 0:\n%s", line, r)
		}
	}
	for _, id := range srvgroups {
		if _, err := servergroups.Get(ctx, compute, id).Extract(); !devcloudtest.IsNotFound(err) {
			t.Errorf("server group %s survived fullclean OLDER_THAN (%v)", id, err)
		}
	}
}
