//go:build integration

package cleanup_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/capilab/capilab/internal/lab"
	"github.com/capilab/capilab/internal/testing/faultproxy"
	"github.com/capilab/capilab/tests/devcloudtest"
)

// BenchmarkFullcleanVsSCS compares fullclean with a baseline that does what
// SCS's cleanup.sh does (scs-reference.md §2(a)): sequential openstack CLI
// calls, cluster after cluster, in its order, selecting by name patterns.
// Both run on the same seeded devcloud shape, through a fault-free proxy
// that counts every API request. Run it with
//
//	go test -tags integration -run '^$' -bench FullcleanVsSCS -benchtime 1x -timeout 3h ./tests/integration/cleanup
//
// CLUSTER_COUNTS=1,5 limits the sizes (default 1,5,20).
func BenchmarkFullcleanVsSCS(b *testing.B) {
	counts := []int{1, 5, 20}
	if v := os.Getenv("CLUSTER_COUNTS"); v != "" {
		counts = nil
		for _, f := range strings.Split(v, ",") {
			var n int
			fmt.Sscan(f, &n)
			counts = append(counts, n)
		}
	}
	var rows []string
	for _, n := range counts {
		b.Run(fmt.Sprintf("clusters=%d", n), func(b *testing.B) {
			var baseSecs, fullSecs float64
			var baseCalls, fullCalls, baseLeft int
			for range b.N {
				b.StopTimer()
				bs, bc, left := runBaseline(b, n)
				fs, fc := runFullclean(b, n)
				b.StartTimer()
				baseSecs, baseCalls, baseLeft, fullSecs, fullCalls = bs, bc, left, fs, fc
			}
			b.ReportMetric(baseSecs, "scs-s")
			b.ReportMetric(fullSecs, "fullclean-s")
			b.ReportMetric(baseSecs/fullSecs, "speedup-x")
			b.ReportMetric(float64(baseCalls), "scs-calls")
			b.ReportMetric(float64(fullCalls), "fullclean-calls")
			rows = append(rows, fmt.Sprintf("| %d | %.1f s | %.1f s | %.1f× | %d | %d | %d |", n, baseSecs, fullSecs, baseSecs/fullSecs, baseCalls, fullCalls, baseLeft))
		})
	}
	b.Logf("\n| clusters | SCS cleanup.sh baseline | fullclean | speedup | API calls (SCS) | API calls (fullclean) | left by the baseline |\n|---|---|---|---|---|---|---|\n%s", strings.Join(rows, "\n"))
}

// benchSpecs is a modest cluster: what CAPO, OCCM, CSI and the lab leave.
func benchSpecs(prefix string, n int) []clusterSpec {
	var specs []clusterSpec
	for i := range n {
		specs = append(specs, clusterSpec{prefix: prefix, name: benchCluster(prefix, i), ours: true, appcred: true, apiLB: true, servers: 1, csiVolumes: 1})
	}
	return specs
}

// benchCluster names cluster i of a benchmark lab (unique per lab, since
// CAPO's names carry no prefix).
func benchCluster(prefix string, i int) string { return fmt.Sprintf("%s-c%d", prefix, i) }

// countingProxy is a fault-free proxy that counts API requests, and a
// clouds.yaml pointing at it.
func countingProxy(b testing.TB, w *world) (*faultproxy.Proxy, string) {
	p, err := faultproxy.Start(context.Background(), faultproxy.Config{Upstream: w.cloud.AuthURL, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Close() })
	clouds := filepath.Join(b.TempDir(), "clouds.yaml")
	if err := p.WriteCloudsYAML(clouds, "counted", devcloudtest.Member().Entry(b)); err != nil {
		b.Fatal(err)
	}
	return p, clouds
}

func requests(p *faultproxy.Proxy) int {
	n := 0
	for _, s := range p.Stats() {
		n += s.Requests
	}
	return n
}

func runFullclean(b *testing.B, n int) (secs float64, calls int) {
	prefix := uniquePrefix("bf")
	w := newWorld(b)
	w.seed(benchSpecs(prefix, n), map[string]bool{prefix: true})
	p, clouds := countingProxy(b, w)
	dir := b.TempDir()
	start := time.Now()
	err := lab.Main(context.Background(), lab.Options{Dir: dir, Environ: []string{"OS_CLOUD=counted", "OS_CLIENT_CONFIG_FILE=" + clouds, "PREFIX=" + prefix, "PARALLELISM=8"}}, lab.Targets()["clean:full"])
	secs = time.Since(start).Seconds()
	if err != nil {
		b.Fatalf("fullclean: %v", err)
	}
	return secs, requests(p)
}

// runBaseline replays cleanup.sh's per-cluster sequence with the CLI.
func runBaseline(b *testing.B, n int) (secs float64, calls, left int) {
	prefix := uniquePrefix("bs")
	w := newWorld(b)
	w.seed(benchSpecs(prefix, n), map[string]bool{prefix: true})
	p, clouds := countingProxy(b, w)
	openstack := func(args ...string) string {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		out, stderr, err := devcloudtest.Cloud{Name: "counted", CloudsYAML: clouds}.CLIRun(ctx, args...)
		if err != nil {
			b.Logf("baseline: %v: %s", err, strings.TrimSpace(stderr)) // cleanup.sh ignores errors too
		}
		return out
	}
	lines := func(out string) [][]string {
		var rows [][]string
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			if f := strings.Fields(l); len(f) > 0 {
				rows = append(rows, f)
			}
		}
		return rows
	}
	start := time.Now()
	for i := range n {
		c := benchCluster(prefix, i)
		// 1. Load balancers of the cluster, and the floating IPs on their VIPs.
		lbRE := regexp.MustCompile(`clusterapi-.*-` + c + `-kubeapi|kube_service_` + c + `_ingress-nginx_ingress-nginx-controller`)
		var lbs []string
		for _, f := range lines(openstack("loadbalancer", "list", "-f", "value", "-c", "id", "-c", "name")) {
			if len(f) == 2 && lbRE.MatchString(f[1]) {
				lbs = append(lbs, f[0])
			}
		}
		for _, lb := range lbs {
			vip := strings.TrimSpace(openstack("loadbalancer", "show", lb, "-f", "value", "-c", "vip_address"))
			for _, f := range lines(openstack("floating", "ip", "list", "--fixed-ip-address", vip, "-f", "value", "-c", "ID")) {
				openstack("floating", "ip", "delete", f[0])
			}
		}
		// 2. Servers by name pattern.
		srvRE := regexp.MustCompile(prefix + `-` + c + `|` + c + `-`)
		var attached []string
		for _, f := range lines(openstack("server", "list", "-f", "value", "-c", "ID", "-c", "Name")) {
			if len(f) >= 2 && srvRE.MatchString(f[1]) {
				attached = append(attached, uuidRE.FindAllString(openstack("server", "show", f[0], "-f", "value", "-c", "volumes_attached"), -1)...)
				openstack("server", "delete", f[0])
			}
		}
		// 3. The load balancers, cascading.
		for _, lb := range lbs {
			openstack("loadbalancer", "delete", "--cascade", "--wait", lb)
		}
		// 4. Ports by name pattern.
		for _, f := range lines(openstack("port", "list", "-f", "value", "-c", "ID", "-c", "Name")) {
			if len(f) >= 2 && srvRE.MatchString(f[1]) {
				openstack("port", "delete", f[0])
			}
		}
		// 5. Router interface, subnet, network, router (both namespace forms).
		for _, ns := range []string{"default", c} {
			name := "k8s-clusterapi-cluster-" + ns + "-" + c
			openstack("router", "remove", "subnet", name, name)
			openstack("subnet", "delete", name)
			openstack("network", "delete", name)
			openstack("router", "delete", name)
		}
		// 6. Security groups.
		sgRE := regexp.MustCompile(`k8s-cluster-(default|` + c + `)-` + c + `|` + prefix + `-` + c + `-cilium`)
		for _, f := range lines(openstack("security", "group", "list", "-f", "value", "-c", "ID", "-c", "Name")) {
			if len(f) >= 2 && sgRE.MatchString(f[1]) {
				openstack("security", "group", "delete", f[0])
			}
		}
		// 7. Volumes that were attached to the servers.
		for _, v := range attached {
			openstack("volume", "delete", v)
		}
		// 8. Server groups.
		for _, f := range lines(openstack("server", "group", "list", "-f", "value", "-c", "ID", "-c", "Name")) {
			if len(f) >= 2 && strings.HasPrefix(f[1], prefix+"-"+c) {
				openstack("server", "group", "delete", f[0])
			}
		}
		// 9. Leftover volumes by name pattern.
		for _, f := range lines(openstack("volume", "list", "-f", "value", "-c", "ID", "-c", "Name")) {
			if len(f) >= 2 && srvRE.MatchString(f[1]) {
				openstack("volume", "delete", f[0])
			}
		}
		// 10. The cluster's application credential.
		openstack("application", "credential", "delete", prefix+"-"+c+"-appcred")
	}
	// --full: the lab's keypair and credential.
	openstack("keypair", "delete", prefix+"-keypair")
	openstack("application", "credential", "delete", prefix+"-appcred")
	secs = time.Since(start).Seconds()
	calls = requests(p)
	have := cliInventory(b)
	for k := range w.owned {
		if have[k] {
			left++
		}
	}
	return secs, calls, left
}

var uuidRE = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
