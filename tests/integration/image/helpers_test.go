//go:build integration

// Package image_test proves node image registration against devcloud, as
// the non-admin tenant devcloud-member: images made with qemu-img in the
// test, registered through the real make target body, checked with
// gophercloud and with the openstack CLI.
package image_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"

	"github.com/capilab/capilab/internal/cloud"
	"github.com/capilab/capilab/internal/image"
	"github.com/capilab/capilab/internal/logging"
)

// memberCloud is the devcloud tenant every test here acts as.
const memberCloud = "devcloud-member"

func init() {
	// The openstack CLI and qemu-img must be Debian's (a pyenv python on PATH lacks the CLI).
	os.Setenv("PATH", "/usr/bin:/bin:/usr/sbin:/sbin:"+os.Getenv("PATH"))
}

// connect logs in as the member; devcloud not answering fails the test.
func connect(t testing.TB) (*cloud.Cloud, image.Glance) {
	t.Helper()
	c, err := cloud.Connect(context.Background(), cloud.Options{Cloud: memberCloud, Secrets: logging.NewSecrets()})
	if err != nil {
		t.Fatalf("devcloud must be running (make devcloud-up or scripts/devcloud/devcloud.sh start): %v", err)
	}
	g, err := image.GlanceOf(c)
	if err != nil {
		t.Fatal(err)
	}
	return c, g
}

// uniqueName is an image name no other run uses.
func uniqueName(tag string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return "capilab-it-" + tag + "-" + hex.EncodeToString(b)
}

// qcow2 makes a qcow2 of the given virtual size with qemu-img: dataMiB of
// random bytes at the start, the rest sparse. It returns the path and sha256.
func qcow2(t testing.TB, dir string, virtual int64, dataMiB int) (string, string) {
	t.Helper()
	raw := filepath.Join(dir, "src.raw")
	f, err := os.Create(raw)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(f, rand.Reader, int64(dataMiB)<<20); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(virtual); err != nil {
		t.Fatal(err)
	}
	f.Close()
	out := filepath.Join(dir, fmt.Sprintf("node-%d.qcow2", virtual))
	if b, err := exec.Command("qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, out).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img (Debian's qemu-utils) convert: %v: %s", err, b)
	}
	os.Remove(raw)
	return out, sha256File(t, out)
}

func sha256File(t testing.TB, p string) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// named lists every image of a name the member sees, with gophercloud.
func named(t testing.TB, g image.Glance, name string) []images.Image {
	t.Helper()
	pages, err := images.List(g.Client, images.ListOpts{Name: name}).AllPages(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	imgs, err := images.ExtractImages(pages)
	if err != nil {
		t.Fatal(err)
	}
	return imgs
}

// removeNamed deletes every image of a name (test cleanup; names are unique per test).
func removeNamed(t testing.TB, g image.Glance, name string) {
	t.Helper()
	for _, img := range named(t, g, name) {
		if err := images.Delete(context.Background(), g.Client, img.ID).ExtractErr(); err != nil && !cloud.IsNotFound(err) {
			t.Errorf("cleanup: deleting image %s: %v", img.ID, err)
		}
	}
}

// cli runs the real openstack CLI as the member and returns stdout.
func cli(t testing.TB, args ...string) string {
	t.Helper()
	out, err := cliEnv(nil, args...)
	if err != nil {
		t.Fatalf("openstack %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func cliEnv(env []string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/usr/bin/openstack", args...)
	cmd.Env = append(append(os.Environ(), "OS_CLOUD="+memberCloud), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// cliImage is `openstack image show` as JSON.
func cliImage(t testing.TB, id string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(cli(t, "image", "show", id, "-f", "json")), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func discardLog() *slog.Logger { return logging.Discard() }
