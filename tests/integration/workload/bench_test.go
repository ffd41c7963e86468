//go:build integration

package workload_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// BenchmarkParallelCreate: make create_cluster of one cluster, then of
// three in parallel (1 control plane + 1 worker each), on the local lab;
// reports both times and their ratio (goal: at most 1.5 on a cloud that is
// not the bottleneck). Not part of CI: make bench.
//
//	go test -tags integration -run '^$' -bench ParallelCreate -benchtime 1x -timeout 3h ./tests/integration/workload
func BenchmarkParallelCreate(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 170*time.Minute)
	defer cancel()
	l := newLabWithManagement(ctx, b, "bnwl", "bench-workload", 30*time.Minute)
	id := l.Prefix[len(l.Prefix)-6:]
	run := func(names ...string) time.Duration {
		list := strings.Join(names, ",")
		_, code, took := l.Make(ctx, "create_cluster", "CLUSTERS="+list)
		if code != 0 {
			b.Fatalf("make create_cluster CLUSTERS=%s: exit %d", list, code)
		}
		if _, code, _ := l.Make(ctx, "delete_cluster", "CLUSTERS="+list); code != 0 {
			b.Fatalf("make delete_cluster CLUSTERS=%s: exit %d", list, code)
		}
		return took
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		one := run(fmt.Sprintf("s%d%s", i, id))
		three := run(fmt.Sprintf("p%da%s", i, id), fmt.Sprintf("p%db%s", i, id), fmt.Sprintf("p%dc%s", i, id))
		b.ReportMetric(one.Seconds(), "s/1-cluster")
		b.ReportMetric(three.Seconds(), "s/3-clusters")
		b.ReportMetric(three.Seconds()/one.Seconds(), "ratio-3/1")
		b.Logf("make create_cluster: 1 cluster %s, 3 in parallel %s, ratio %.2f", one.Round(time.Second), three.Round(time.Second), three.Seconds()/one.Seconds())
	}
}
