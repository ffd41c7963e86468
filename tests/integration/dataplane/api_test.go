//go:build integration

package dataplane

import (
	"context"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/endpoints"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/services"
	"go.yaml.in/yaml/v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/capilab/capilab/internal/dataplane"
	"github.com/capilab/capilab/tests/devcloudtest"
)

// TestCatalogRegions: RegionOne is what it always was (every endpoint on
// 127.0.0.1, three interfaces per service) and RegionOne-docker has one
// public endpoint per service on the gateway of `public`, which the agent
// forwards.
func TestCatalogRegions(t *testing.T) {
	st := agentStatus(t)
	gw := externalGateway(t, st)
	idn := devcloudtest.Admin().Identity(t)
	ctx := t.Context()
	pages, err := endpoints.List(idn, endpoints.ListOpts{}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	eps, err := endpoints.ExtractEndpoints(pages)
	if err != nil {
		t.Fatal(err)
	}
	spages, err := services.List(idn, services.ListOpts{}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	svcs, err := services.ExtractServices(spages)
	if err != nil {
		t.Fatal(err)
	}
	type key struct{ svc, region, iface string }
	seen := map[key]string{}
	for _, e := range eps {
		u, err := url.Parse(strings.ReplaceAll(e.URL, "%(project_id)s", "project")) // Cinder's URL template
		if err != nil {
			t.Errorf("endpoint %s: %v", e.URL, err)
			continue
		}
		k := key{e.ServiceID, e.RegionID, string(e.Availability)}
		seen[k] = e.URL
		switch e.RegionID {
		case "RegionOne":
			if u.Hostname() != "127.0.0.1" {
				t.Errorf("RegionOne %s endpoint %s is not on 127.0.0.1", e.Availability, e.URL)
			}
		case labRegion:
			if e.Availability != "public" {
				t.Errorf("%s has a %s endpoint (%s); only public ones keep region-less services on RegionOne", labRegion, e.Availability, e.URL)
			}
			if u.Hostname() != gw {
				t.Errorf("%s endpoint %s is not on the gateway %s", labRegion, e.URL, gw)
			}
		default:
			t.Errorf("endpoint %s in unexpected region %q", e.URL, e.RegionID)
		}
	}
	for _, s := range svcs {
		for _, iface := range []string{"public", "internal", "admin"} {
			if _, ok := seen[key{s.ID, "RegionOne", iface}]; !ok {
				t.Errorf("service %s (%s) has no RegionOne %s endpoint", s.Type, s.ID, iface)
			}
		}
		if _, ok := seen[key{s.ID, labRegion, "public"}]; !ok {
			t.Errorf("service %s has no %s public endpoint", s.Type, labRegion)
		}
	}

	// The clouds.yaml entries of RegionOne are unchanged; devcloud-lab is the
	// member user through the lab region.
	for _, c := range []devcloudtest.Cloud{devcloudtest.Admin(), devcloudtest.Member()} {
		e := c.Entry(t)
		auth, _ := e["auth"].(map[string]any)
		if e["region_name"] != "RegionOne" || auth["auth_url"] != "http://127.0.0.1:5000/v3" {
			t.Errorf("clouds.yaml %s: region %v, auth_url %v; want RegionOne at http://127.0.0.1:5000/v3", c.Name, e["region_name"], auth["auth_url"])
		}
	}
	lab := labCloudEntry(t)
	auth, _ := lab["auth"].(map[string]any)
	if lab["region_name"] != labRegion || auth["auth_url"] != "http://"+gw+":5000/v3" || auth["username"] != devcloudtest.MemberCloud {
		t.Errorf("clouds.yaml %s: region %v, auth_url %v, user %v", labCloud, lab["region_name"], auth["auth_url"], auth["username"])
	}
}

// TestAPIsThroughTheLabRegion: gophercloud calls through clouds.yaml entry
// devcloud-lab reach every service from the host, from a pod in a kind
// cluster and from a host-network pod (as OCCM and Cinder CSI run).
func TestAPIsThroughTheLabRegion(t *testing.T) {
	st := agentStatus(t)
	gw := externalGateway(t, st)
	image := nodeImage(t)
	probeImage, probeBin := goBinaryImage(t, "./tests/integration/dataplane/osprobe", "osprobe")
	wantPrefix := "http://" + gw + ":"

	// From the host.
	cloudsFile := writeLabCloudsYAML(t)
	cmd := exec.CommandContext(t.Context(), probeBin)
	cmd.Env = append(os.Environ(), "OS_CLOUD="+labCloud, "OS_CLIENT_CONFIG_FILE="+cloudsFile, "OSPROBE_WANT_PREFIX="+wantPrefix)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("osprobe on the host: %v\n%s", err, out)
	}
	t.Logf("host:\n%s", out)

	// From kind pods.
	name := "dp-api-" + randSuffix(t)
	_, cs := kind(t, name, image)
	if err := loadImage(t, name, probeImage); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	raw, err := os.ReadFile(cloudsFile)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Secrets("default").Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "clouds"},
		Data:       map[string][]byte{"clouds.yaml": raw},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, hostNet := range []bool{false, true} {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "osprobe-hostnet-" + map[bool]string{true: "yes", false: "no"}[hostNet], Namespace: "default"},
			Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever,
				HostNetwork:   hostNet,
				Tolerations:   []corev1.Toleration{{Key: "node-role.kubernetes.io/control-plane", Operator: corev1.TolerationOpExists}},
				Containers: []corev1.Container{{
					Name: "osprobe", Image: probeImage, ImagePullPolicy: corev1.PullNever,
					Env: []corev1.EnvVar{
						{Name: "OS_CLOUD", Value: labCloud},
						{Name: "OS_CLIENT_CONFIG_FILE", Value: "/etc/openstack/clouds.yaml"},
						{Name: "OSPROBE_WANT_PREFIX", Value: wantPrefix},
					},
					VolumeMounts: []corev1.VolumeMount{{Name: "clouds", MountPath: "/etc/openstack", ReadOnly: true}},
				}},
				Volumes: []corev1.Volume{{Name: "clouds", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "clouds"}}}},
			},
		}
		logs := runPod(t, cs, pod, 8*time.Minute)
		if !strings.Contains(logs, "\nOK") {
			t.Errorf("pod %s did not reach every service:\n%s", pod.Name, logs)
		}
		t.Logf("pod %s (hostNetwork=%t):\n%s", pod.Name, hostNet, logs)
	}
}

// externalGateway is the gateway of `public` (where the lab region points)
// and must be one the agent mirrors and forwards.
func externalGateway(t testing.TB, st dataplane.Status) string {
	t.Helper()
	raw, err := os.ReadFile("/var/lib/devcloud/lab-gateway")
	if err != nil {
		t.Fatalf("lab gateway: %v (scripts/devcloud/devcloud.sh start writes it)", err)
	}
	gw := strings.TrimSpace(string(raw))
	for _, n := range st.Networks {
		if n.External && n.Gateway == gw {
			return gw
		}
	}
	t.Fatalf("the agent mirrors no external network with gateway %s (status: %+v)", gw, st)
	return ""
}

func labCloudEntry(t testing.TB) map[string]any {
	t.Helper()
	return devcloudtest.Cloud{Name: labCloud, CloudsYAML: devcloudtest.CloudsYAMLPath()}.Entry(t)
}

// writeLabCloudsYAML writes a clouds.yaml holding only the devcloud-lab
// entry (what a pod or a node gets), mode 0600.
func writeLabCloudsYAML(t testing.TB) string {
	t.Helper()
	out, err := yaml.Marshal(map[string]any{"clouds": map[string]any{labCloud: labCloudEntry(t)}})
	if err != nil {
		t.Fatal(err)
	}
	p := t.TempDir() + "/clouds.yaml"
	if err := os.WriteFile(p, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func loadImage(t *testing.T, cluster, image string) error {
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	return kindManager(t).LoadImages(ctx, cluster, image)
}
