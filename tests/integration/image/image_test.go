//go:build integration

package image_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"

	"github.com/capilab/capilab/internal/cloud"
	"github.com/capilab/capilab/internal/image"
	"github.com/capilab/capilab/internal/lab"
	"github.com/capilab/capilab/internal/testing/faultproxy"
	"github.com/capilab/capilab/internal/wait"
	"github.com/capilab/capilab/tests/devcloudtest"
)

// childEnv makes the test binary run one lab target as a separate process
// (so a test can SIGKILL it mid-upload).
const childEnv = "CAPILAB_IT_CHILD_TARGET"

func TestMain(m *testing.M) {
	if target := os.Getenv(childEnv); target != "" {
		if err := lab.Main(context.Background(), lab.OptionsFromProcess(), lab.Targets()[target]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	code := m.Run()
	if bench.dir != "" {
		os.RemoveAll(bench.dir)
	}
	os.Exit(code)
}

const gib = 1 << 30

// settings are the environment of a registration of src into name.
func settings(name, src, sum string, raw bool, extra ...string) []string {
	return append([]string{
		"IMAGE_NAME=" + name, "IMAGE_URL=" + src, "IMAGE_SHA256=" + sum, "KUBERNETES_VERSION=v1.33.7",
		fmt.Sprintf("KUBE_IMAGE_RAW=%v", raw), "IMAGE_EXTRA_PROPERTIES=os_version=24.04", "IMAGE_TIMEOUT=10m",
	}, extra...)
}

// TestRegister registers a qcow2 made by qemu-img, as qcow2 and converted to
// raw, checks what Glance stores with gophercloud and with the openstack
// CLI, and runs the registration again: a no-op.
func TestRegister(t *testing.T) {
	_, g := connect(t)
	tests := []struct {
		name        string
		raw         bool
		virtual     int64
		wantFormat  string
		wantMinDisk int
	}{
		{name: "qcow2", raw: false, virtual: 3 * gib / 2, wantFormat: "qcow2", wantMinDisk: 2},
		{name: "raw", raw: true, virtual: 300 << 20, wantFormat: "raw", wantMinDisk: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			src, sum := qcow2(t, dir, tt.virtual, 8)
			name := uniqueName(tt.name)
			t.Cleanup(func() { removeNamed(t, g, name) })
			env := settings(name, src, sum, tt.raw, "STATE_DIR="+dir+"/state")

			out, err := devcloudtest.RunTarget(context.Background(), t, "image:register", nil, env...)
			if err != nil {
				t.Fatalf("image:register: %v", err)
			}
			if !strings.Contains(out, "registered") {
				t.Fatalf("output %q", out)
			}
			imgs := named(t, g, name)
			if len(imgs) != 1 {
				t.Fatalf("%d images named %s, want 1", len(imgs), name)
			}
			img := imgs[0]
			wantProps := map[string]string{
				"capilab_source_sha256": sum, "kubernetes_version": "v1.33.7", "os_version": "24.04", "os_distro": "ubuntu",
				"architecture": "x86_64", "hypervisor_type": "kvm", "hw_disk_bus": "scsi", "hw_scsi_model": "virtio-scsi",
				"hw_rng_model": "virtio", "image_original_user": "ubuntu", "replace_frequency": "never", "image_source": "file://" + src,
			}
			for _, k := range []string{"image_build_date", "provided_until", "uuid_validity", "image_description"} {
				if img.Properties[k] == nil || img.Properties[k] == "" {
					t.Errorf("gophercloud: property %s missing", k)
				}
			}
			for k, v := range wantProps {
				if img.Properties[k] != v {
					t.Errorf("gophercloud: property %s = %v, want %s", k, img.Properties[k], v)
				}
			}
			if img.Status != images.ImageStatusActive || img.DiskFormat != tt.wantFormat || img.MinDiskGigabytes != tt.wantMinDisk ||
				img.MinRAMMegabytes != 1024 || !slices.Equal(img.Tags, []string{image.Tag}) || img.Owner != g.ProjectID {
				t.Errorf("gophercloud: image %+v", img)
			}
			if slices.Contains(img.Tags, "managed_by_osism") {
				t.Error("SCS's managed_by_osism tag must not be set")
			}
			if tt.raw && img.SizeBytes != tt.virtual {
				t.Errorf("raw image stores %d bytes, want the virtual size %d", img.SizeBytes, tt.virtual)
			}

			// The same, through the openstack CLI.
			c := cliImage(t, img.ID)
			props, _ := c["properties"].(map[string]any)
			for k, v := range wantProps {
				if props[k] != v {
					t.Errorf("openstack image show: property %s = %v, want %s", k, props[k], v)
				}
			}
			if c["disk_format"] != tt.wantFormat || fmt.Sprint(c["min_disk"]) != fmt.Sprint(tt.wantMinDisk) || c["status"] != "active" ||
				fmt.Sprint(c["tags"]) != "[capilab-managed]" {
				t.Errorf("openstack image show: disk_format %v, min_disk %v, status %v, tags %v", c["disk_format"], c["min_disk"], c["status"], c["tags"])
			}
			if vs, ok := c["virtual_size"].(float64); ok && int((int64(vs)+gib-1)/gib) != tt.wantMinDisk {
				t.Errorf("min_disk %v does not match Glance's virtual_size %v", c["min_disk"], vs)
			}

			// A second run is a no-op.
			start := time.Now()
			out, err = devcloudtest.RunTarget(context.Background(), t, "image:register", nil, env...)
			took := time.Since(start)
			if err != nil || !strings.Contains(out, "unchanged (id "+img.ID) {
				t.Fatalf("second run: %v, %q", err, out)
			}
			again := named(t, g, name)
			if len(again) != 1 || again[0].ID != img.ID || !again[0].UpdatedAt.Equal(img.UpdatedAt) {
				t.Fatalf("second run changed the images: %+v", again)
			}
			t.Logf("no-op run (in process, settings + token + lookup): %s", took.Round(time.Millisecond))
		})
	}
}

// TestChecksumMismatchRegistersNothing: a wrong sha256 is an error, and no
// image of that name appears, not even a queued one.
func TestChecksumMismatchRegistersNothing(t *testing.T) {
	_, g := connect(t)
	dir := t.TempDir()
	src, _ := qcow2(t, dir, gib, 1)
	name := uniqueName("mismatch")
	t.Cleanup(func() { removeNamed(t, g, name) })
	wrong := strings.Repeat("0", 64)
	_, err := devcloudtest.RunTarget(context.Background(), t, "image:register", nil, settings(name, src, wrong, false, "STATE_DIR="+dir+"/state")...)
	if err == nil || !strings.Contains(err.Error(), "sha256 mismatch") || !strings.Contains(err.Error(), memberCloud) || devcloudtest.ExitCode(err) != 1 {
		t.Fatalf("want a sha256 mismatch naming the cloud, exit 1; got %v", err)
	}
	if imgs := named(t, g, name); len(imgs) != 0 {
		t.Fatalf("gophercloud sees %d image(s) named %s", len(imgs), name)
	}
	if out := cli(t, "image", "list", "--name", name, "-f", "value", "-c", "ID"); strings.TrimSpace(out) != "" {
		t.Fatalf("openstack image list shows %q", out)
	}
}

// waitForStatus waits until an image of the name has one of the statuses.
func waitForStatus(t testing.TB, g image.Glance, name string, statuses ...images.ImageStatus) images.Image {
	t.Helper()
	var found images.Image
	err := wait.For(context.Background(), discardLog(), wait.Spec{What: "image " + name + " in status " + fmt.Sprint(statuses), Timeout: 3 * time.Minute, Interval: 50 * time.Millisecond},
		func(ctx context.Context) (bool, string, error) {
			for _, img := range named(t, g, name) {
				if slices.Contains(statuses, img.Status) {
					found = img
					return true, string(img.Status), nil
				}
			}
			return false, "", nil
		})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// TestKilledMidUploadIsRepairedByTheNextRun SIGKILLs a registration while
// Glance is receiving the data (raw conversion of a 1 GiB disk, so the
// upload takes a while), then runs it again.
func TestKilledMidUploadIsRepairedByTheNextRun(t *testing.T) {
	_, g := connect(t)
	dir := t.TempDir()
	src, sum := qcow2(t, dir, gib, 16)
	name := uniqueName("killed")
	t.Cleanup(func() { removeNamed(t, g, name) })
	env := settings(name, src, sum, true, "STATE_DIR="+dir+"/state")

	cmd := exec.Command(os.Args[0])
	cmd.Env = append(append(os.Environ(), childEnv+"=image:register", "OS_CLOUD="+memberCloud), env...)
	cmd.Stderr = &devcloudtest.LogWriter{T: t}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	leftover := waitForStatus(t, g, name, images.ImageStatusSaving)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	t.Logf("killed the registration while image %s was %s", leftover.ID, leftover.Status)

	out, err := devcloudtest.RunTarget(context.Background(), t, "image:register", nil, env...)
	if err != nil {
		t.Fatalf("the next run: %v", err)
	}
	imgs := named(t, g, name)
	if len(imgs) != 1 || imgs[0].Status != images.ImageStatusActive || imgs[0].SizeBytes != gib {
		t.Fatalf("after the repair: %+v (output %q)", imgs, out)
	}
	if imgs[0].ID == leftover.ID {
		t.Logf("the killed run's upload had completed; its image was kept")
	} else if _, err := images.Get(context.Background(), g.Client, leftover.ID).Extract(); !cloud.IsNotFound(err) {
		t.Fatalf("the killed run's image %s is still there: %v", leftover.ID, err)
	}
}

// TestInterruptedRunLeavesNoImage cancels a registration (Ctrl-C) mid-upload:
// it stops, removes its incomplete image, and the next run finishes the job.
func TestInterruptedRunLeavesNoImage(t *testing.T) {
	_, g := connect(t)
	dir := t.TempDir()
	src, sum := qcow2(t, dir, gib, 16)
	name := uniqueName("ctrlc")
	t.Cleanup(func() { removeNamed(t, g, name) })
	env := settings(name, src, sum, true, "STATE_DIR="+dir+"/state")

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := devcloudtest.RunTarget(ctx, t, "image:register", nil, env...)
		done <- err
	}()
	waitForStatus(t, g, name, images.ImageStatusSaving)
	cancel()
	err := <-done
	if err == nil || !strings.Contains(err.Error(), "interrupted") {
		t.Fatalf("want an interrupted run, got %v", err)
	}
	if imgs := named(t, g, name); len(imgs) != 0 {
		t.Fatalf("the interrupted run left %+v", imgs)
	}
	if _, err := devcloudtest.RunTarget(context.Background(), t, "image:register", nil, env...); err != nil {
		t.Fatalf("the next run: %v", err)
	}
	if imgs := named(t, g, name); len(imgs) != 1 || imgs[0].Status != images.ImageStatusActive {
		t.Fatalf("after the next run: %+v", imgs)
	}
}

// TestRegisterThroughFaultProxy registers through the fault proxy with 10%
// of all requests failing (errors, 429 with Retry-After, lost responses),
// with several seeds, and once with the answers of the create and of the
// upload lost on purpose: every registration succeeds with exactly one image.
func TestRegisterThroughFaultProxy(t *testing.T) {
	c, g := connect(t)
	dir := t.TempDir()
	src, sum := qcow2(t, dir, gib, 16)
	entry := devcloudtest.Member().Entry(t)
	tenPercent := map[string]faultproxy.Rule{faultproxy.AnyService: {
		ErrorRate: 0.04, ThrottleRate: 0.03, RetryAfter: time.Second, LostResponseRate: 0.03,
	}}
	tests := []struct {
		name     string
		seed     int64
		raw      bool
		rules    map[string]faultproxy.Rule
		wantLogs []string
	}{
		{name: "10% seed 1", seed: 1, rules: tenPercent},
		{name: "10% seed 2", seed: 2, rules: tenPercent},
		{name: "10% seed 3 raw", seed: 3, raw: true, rules: tenPercent},
		{name: "10% seed 4", seed: 4, rules: tenPercent},
		{name: "create and upload answers lost", seed: 5, wantLogs: []string{"adopting the image", "upload answer lost"},
			rules: map[string]faultproxy.Rule{"image": {LostResponseRate: 1, Methods: []string{"POST", "PUT"}, MaxFaults: 2}}},
	}
	total := map[string]int{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			proxy, err := faultproxy.Start(ctx, faultproxy.Config{Upstream: c.AuthURL, Seed: tt.seed, Rules: tt.rules})
			if err != nil {
				t.Fatal(err)
			}
			defer proxy.Close()
			clouds := dir + fmt.Sprintf("/clouds-%d.yaml", tt.seed)
			if err := proxy.WriteCloudsYAML(clouds, "faulty", entry); err != nil {
				t.Fatal(err)
			}
			name := uniqueName(fmt.Sprint("faults", tt.seed))
			t.Cleanup(func() { removeNamed(t, g, name) })
			env := settings(name, src, sum, tt.raw, "STATE_DIR="+dir+"/state", "OS_CLOUD=faulty", "OS_CLIENT_CONFIG_FILE="+clouds)
			logs := &devcloudtest.LogWriter{T: t}
			out, err := devcloudtest.RunTarget(ctx, t, "image:register", logs, env...)
			if err != nil {
				t.Fatalf("registration through the fault proxy: %v", err)
			}
			imgs := named(t, g, name)
			if len(imgs) != 1 || imgs[0].Status != images.ImageStatusActive {
				t.Fatalf("%d images named %s (%+v); output %q", len(imgs), name, imgs, out)
			}
			for _, want := range tt.wantLogs {
				if !strings.Contains(logs.String(), want) {
					t.Errorf("the log lacks %q: the fault did not hit where intended", want)
				}
			}
			for svc, st := range proxy.Stats() {
				total[svc] += st.Faults()
				t.Logf("%s: %d requests, %d errors, %d throttled, %d lost responses", svc, st.Requests, st.Errors, st.Throttled, st.LostResponses)
			}
		})
	}
	if total["image"] == 0 || total["identity"] == 0 {
		t.Fatalf("faults injected per service: %v; the test proves nothing", total)
	}
}
