package lab

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// sameStart finds two cluster names whose node CIDRs start at the same /24
// (the first byte of their SHA-256), as two labs' clusters did on one machine.
func sameStart(t *testing.T) (string, string) {
	t.Helper()
	seen := map[byte]string{}
	for i := range 10000 {
		name := fmt.Sprintf("c%04d", i)
		h := sha256.Sum256([]byte(name))
		if other, ok := seen[h[0]]; ok {
			return other, name
		}
		seen[h[0]] = name
	}
	t.Fatal("no two names with the same start")
	return "", ""
}

func TestPickNodeCIDR(t *testing.T) {
	a, b := sameStart(t)
	now := time.Date(2026, 11, 30, 21, 0, 0, 0, time.UTC)
	aCIDR, err := localLabNodeCIDR(a, nil)
	if err != nil {
		t.Fatal(err)
	}
	if bAlone, _ := localLabNodeCIDR(b, nil); bAlone != aCIDR {
		t.Fatalf("test setup: %s and %s start at %s and %s", a, b, aCIDR, bAlone)
	}
	claimA := cidrClaim{CIDR: aCIDR, Lab: "itwl", Cluster: a, Claimed: now.Add(-time.Minute)}
	tests := []struct {
		name       string
		claims     []cidrClaim
		lab, clust string
		inCloud    []string
		wantSame   bool // gets aCIDR
		wantClaims int
	}{
		{"another lab's fresh claim is avoided", []cidrClaim{claimA}, "itng", b, nil, false, 2},
		{"an expired claim without a subnet is dropped", []cidrClaim{{CIDR: aCIDR, Lab: "itwl", Cluster: a, Claimed: now.Add(-2 * time.Hour)}}, "itng", b, nil, true, 1},
		{"an old claim whose subnet exists still holds", []cidrClaim{{CIDR: aCIDR, Lab: "itwl", Cluster: a, Claimed: now.Add(-2 * time.Hour)}}, "itng", b, []string{aCIDR}, false, 2},
		{"a subnet in the cloud is avoided without a claim", nil, "itng", b, []string{aCIDR}, false, 1},
		{"a cluster keeps its own claim", []cidrClaim{claimA}, "itwl", a, nil, true, 1},
		{"a cluster keeps its own claim when its own subnet exists", []cidrClaim{claimA}, "itwl", a, []string{aCIDR}, true, 1},
		{"the same cluster name in another lab is another cluster", []cidrClaim{claimA}, "itng", a, nil, false, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, claims, err := pickNodeCIDR(tt.claims, tt.lab, tt.clust, nil, tt.inCloud, now)
			if err != nil {
				t.Fatal(err)
			}
			if (got == aCIDR) != tt.wantSame {
				t.Errorf("got %s; want %s: %v", got, map[bool]string{true: aCIDR, false: "another /24 than " + aCIDR}[tt.wantSame], tt.wantSame)
			}
			if len(claims) != tt.wantClaims {
				t.Errorf("claims %v, want %d", claims, tt.wantClaims)
			}
			last := claims[len(claims)-1]
			if last.CIDR != got || last.Lab != tt.lab || last.Cluster != tt.clust || !last.Claimed.Equal(now) {
				t.Errorf("last claim %+v, want %s for %s/%s at %s", last, got, tt.lab, tt.clust, now)
			}
		})
	}
}

// Two labs' clusters whose names start at the same /24, rendered at once
// (two processes in real life; goroutines with their own descriptors here,
// which flock treats alike), get different node CIDRs, and both are recorded.
func TestClaimNodeCIDRConcurrent(t *testing.T) {
	a, b := sameStart(t)
	file := filepath.Join(t.TempDir(), "locks", "local-lab-node-cidrs.json")
	log := slog.New(slog.DiscardHandler)
	got := make([]string, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, c := range []struct{ lab, name string }{{"itwl", a}, {"itng", b}} {
		wg.Go(func() { got[i], errs[i] = claimNodeCIDR(context.Background(), log, file, c.lab, c.name, nil, nil) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got[0] == got[1] {
		t.Fatalf("both clusters got %s", got[0])
	}
	b2, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var claims []cidrClaim
	if err := json.Unmarshal(b2, &claims); err != nil {
		t.Fatal(err)
	}
	if len(claims) != 2 {
		t.Errorf("claims recorded: %s, want both", b2)
	}
	// A re-run for the first cluster keeps its CIDR.
	again, err := claimNodeCIDR(context.Background(), log, file, "itwl", a, nil, nil)
	if err != nil || again != got[0] {
		t.Errorf("re-run for %s: %s, %v; want %s", a, again, err, got[0])
	}
}
