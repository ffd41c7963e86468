//go:build integration

package cli_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"

	"github.com/capilab/capilab/tests/devcloudtest"
)

// nodeImage makes a small qcow2 with qemu-img and returns its path and sha256.
func nodeImage(t *testing.T, dir string) (string, string) {
	t.Helper()
	p := filepath.Join(dir, "node.qcow2")
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", p, "64M").CombinedOutput(); err != nil {
		t.Fatalf("qemu-img: %v\n%s", err, out)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return p, hex.EncodeToString(h.Sum(nil))
}

func imagesNamed(t *testing.T, g *gophercloud.ServiceClient, name string) []images.Image {
	t.Helper()
	pages, err := images.List(g, images.ListOpts{Name: name}).AllPages(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	all, err := images.ExtractImages(pages)
	if err != nil {
		t.Fatal(err)
	}
	return all
}

func removeImages(t *testing.T, g *gophercloud.ServiceClient, name string) {
	devcloudtest.Cleanup(t, "images named "+name, func(ctx context.Context) error {
		for _, img := range imagesNamed(t, g, name) {
			if err := images.Delete(ctx, g, img.ID).ExtractErr(); err != nil && !devcloudtest.IsNotFound(err) {
				return err
			}
		}
		return nil
	})
}

// readmeImageRecipe is README's air-gapped `make image` line, with its
// placeholders.
func readmeImageRecipe(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^(make image IMAGE_URL=\S+ IMAGE_SHA256=\S+)\s+#.*air-gapped`).FindSubmatch(data)
	if m == nil {
		t.Fatal("README.md has no air-gapped `make image IMAGE_URL=… IMAGE_SHA256=…` line")
	}
	return string(m[1])
}

// TestImageAsREADMEDocuments: README's air-gapped recipe works as written
// (the default KUBERNETES_VERSION v1.N.x resolves through the catalog); a
// wrong IMAGE_SHA256 for a file already registered is a sha256 mismatch,
// not a name conflict; an active image of that name that capilab did not
// register stops make image with the way out named, and
// IMAGE_REUSE_FOREIGN=true uses it, saying whose it is and that its
// checksum is unverified.
func TestImageAsREADMEDocuments(t *testing.T) {
	t.Parallel()
	l := newLab(t, "img")
	g := devcloudtest.Member().Image(t)
	name := devcloudtest.Name(t, "node")
	removeImages(t, g, name)
	l.extraEnv = []string{"IMAGE_NAME=" + name}
	src, sum := nodeImage(t, l.dir)

	recipe := readmeImageRecipe(t)
	line := regexp.MustCompile(`IMAGE_URL=\S+`).ReplaceAllString(recipe, "IMAGE_URL="+src)
	line = regexp.MustCompile(`IMAGE_SHA256=\S+`).ReplaceAllString(line, "IMAGE_SHA256="+sum)
	r := l.run(line)
	if r.code != 0 || !strings.Contains(r.stdout, "registered") {
		t.Fatalf("README's recipe %q: %s", recipe, r)
	}
	if imgs := imagesNamed(t, g, name); len(imgs) != 1 || imgs[0].Status != images.ImageStatusActive {
		t.Fatalf("after the recipe: %+v", imgs)
	}
	// The no-op, through make and through bin/mage (its time is measured by
	// the image package's benchmark; here it is only logged).
	for _, cmd := range []string{line, strings.Replace(line, "make image", "bin/mage image:register", 1)} {
		if r := l.run(cmd); r.code != 0 || !strings.Contains(r.stdout, "unchanged") {
			t.Fatalf("no-op: %s", r)
		}
	}

	wrong := strings.Repeat("ab", 32)
	r = l.run("make image IMAGE_URL=" + src + " IMAGE_SHA256=" + wrong)
	if r.code != 2 || !strings.Contains(r.stderr, "sha256 mismatch") || strings.Contains(r.stderr, "already an image of that name") {
		t.Errorf("a wrong IMAGE_SHA256 for a registered file: want the sha256 mismatch:\n%s", r)
	}
	if strings.Count(r.stderr, "sha256 mismatch") != 1 {
		t.Errorf("the error is printed %d times, want once:\n%s", strings.Count(r.stderr, "sha256 mismatch"), r.stderr)
	}

	// An image of another name registered by hand (as SCS users have them).
	foreignName := devcloudtest.Name(t, "scs")
	removeImages(t, g, foreignName)
	devcloudtest.Member().CLI(t, "image", "create", "--disk-format", "qcow2", "--container-format", "bare", "--file", src, "--tag", "managed_by_osism", foreignName)
	l.extraEnv = []string{"IMAGE_NAME=" + foreignName}
	r = l.run("make image IMAGE_URL=" + src + " IMAGE_SHA256=" + sum)
	if r.code != 2 || !strings.Contains(r.stderr, "IMAGE_REUSE_FOREIGN=true") {
		t.Errorf("an image capilab did not register: want make image to fail naming IMAGE_REUSE_FOREIGN=true:\n%s", r)
	}
	r = l.run("make image IMAGE_URL=" + src + " IMAGE_SHA256=" + sum + " IMAGE_REUSE_FOREIGN=true")
	if r.code != 0 || !strings.Contains(r.stdout, "not registered by capilab: checksum unverified") || !strings.Contains(r.stdout, "owner project ") {
		t.Errorf("IMAGE_REUSE_FOREIGN=true: want the image used, whose and unverified said:\n%s", r)
	}
	if imgs := imagesNamed(t, g, foreignName); len(imgs) != 1 {
		t.Errorf("%d images named %s, want the one registered by hand", len(imgs), foreignName)
	}
}
