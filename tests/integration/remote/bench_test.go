//go:build integration

package remote_test

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/capilab/capilab/internal/modbuild"
	"github.com/capilab/capilab/internal/remote"
)

// BenchmarkToolsBuild measures what a machine without tofu, terraform or a
// provider registry pays for the remote management node: the OpenStack
// provider and OpenTofu built from their modules with empty Go build and
// module caches (cold: every module downloaded from the proxy, everything
// compiled), then again with the binaries in the tool cache (warm).
//
//	go test -tags integration -run '^$' -bench ToolsBuild -benchtime 1x ./tests/integration/remote
func BenchmarkToolsBuild(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Minute)
	defer cancel()
	for i := 0; i < b.N; i++ {
		env := append(os.Environ(), "GOCACHE="+b.TempDir(), "GOMODCACHE="+b.TempDir())
		tools := &remote.Tools{
			Build:    &modbuild.Builder{CacheDir: b.TempDir(), Env: env},
			Pins:     pins(b),
			LookPath: func(string) (string, error) { return "", exec.ErrNotFound },
		}
		start := time.Now()
		if _, err := tools.Mirror(ctx); err != nil {
			b.Fatal(err)
		}
		provider := time.Since(start)
		start = time.Now()
		if _, err := tools.Find(ctx); err != nil {
			b.Fatal(err)
		}
		tofu := time.Since(start)
		start = time.Now()
		if _, err := tools.Mirror(ctx); err != nil {
			b.Fatal(err)
		}
		if _, err := tools.Find(ctx); err != nil {
			b.Fatal(err)
		}
		warm := time.Since(start)
		b.ReportMetric(provider.Seconds(), "provider-cold-s")
		b.ReportMetric(tofu.Seconds(), "tofu-after-provider-s")
		b.ReportMetric(warm.Seconds(), "both-warm-s")
		b.Logf("provider cold %s, OpenTofu (Go caches shared with the provider's build) %s, both warm %s", provider.Round(time.Second), tofu.Round(time.Second), warm.Round(time.Millisecond))
	}
}
