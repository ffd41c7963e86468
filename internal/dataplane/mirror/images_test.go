package mirror

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// fakeDocker writes a docker stand-in that keeps tags as files under dir
// (tag creates one, image rm removes it or fails as docker does, push
// needs it and takes a moment) and logs every call to dir/calls.
func fakeDocker(t *testing.T, dir string) string {
	t.Helper()
	script := `#!/bin/sh
d=` + dir + `
echo "$*" >>"$d/calls"
tagfile() { printf '%s' "$1" | tr '/:' '__'; }
case "$1 $2" in
"tag "*) : >"$d/tags/$(tagfile "$3")" ;;
"push --quiet") [ -e "$d/tags/$(tagfile "$3")" ] || { echo "An image does not exist locally with the tag: $3" >&2; exit 1; }
  sleep 0.3 ;;
"image rm") [ -e "$d/tags/$(tagfile "$3")" ] || { echo "Error: No such image: $3" >&2; exit 1; }
  rm "$d/tags/$(tagfile "$3")" ;;
*) echo "unexpected: $*" >&2; exit 2 ;;
esac
`
	if err := os.MkdirAll(filepath.Join(dir, "tags"), 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "docker")
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// Two pushes of one image at once (two clusters' addons, or two capilab
// processes) take turns: each one's tag, push and tag removal run
// together, so neither removes the other's tag.
func TestPushTakesTurns(t *testing.T) {
	dir := t.TempDir()
	docker := fakeDocker(t, dir)
	lockDir := filepath.Join(dir, "locks")
	ref := "registry.k8s.io/metrics-server/metrics-server:v0.8.0"
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Go(func() {
			p := &Pusher{Docker: docker, Mirror: "127.0.0.1:5001", LockDir: lockDir}
			errs[i] = p.Push(context.Background(), []string{ref})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("push %d: %v", i, err)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "calls"))
	if err != nil {
		t.Fatal(err)
	}
	calls := strings.Split(strings.TrimSpace(string(b)), "\n")
	target := "127.0.0.1:5001/" + ref
	want := []string{"tag " + ref + " " + target, "push --quiet " + target, "image rm " + target}
	if len(calls) != 3*len(want) {
		t.Fatalf("docker calls:\n%s\nwant %d calls", b, 3*len(want))
	}
	for i, c := range calls {
		if c != want[i%len(want)] {
			t.Fatalf("docker call %d is %q, want %q: pushes interleaved\n%s", i, c, want[i%len(want)], b)
		}
	}
}

func TestPushWithoutLockDirRefuses(t *testing.T) {
	dir := t.TempDir()
	p := &Pusher{Docker: fakeDocker(t, dir), Mirror: "127.0.0.1:5001"}
	if err := p.Push(context.Background(), []string{"a/b:c"}); err == nil || !strings.Contains(err.Error(), "lock") {
		t.Errorf("Push without LockDir: %v, want an error naming the lock", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "calls")); !os.IsNotExist(err) {
		t.Errorf("Push without LockDir called docker (%v)", err)
	}
}
