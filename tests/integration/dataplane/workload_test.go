//go:build integration

package dataplane

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/loadbalancer/v2/loadbalancers"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/layer3/floatingips"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	appsv1 "k8s.io/api/apps/v1"

	"github.com/capilab/capilab/internal/dataplane"
	"github.com/capilab/capilab/internal/dataplane/docker"
	"github.com/capilab/capilab/internal/dataplane/mirror"
	"github.com/capilab/capilab/internal/versions"
	"github.com/capilab/capilab/tests/devcloudtest"
)

// TestWorkloadCluster is the data plane end to end, through the real
// OpenStack APIs only (as CAPO and OCCM use them):
//
//  1. a server whose user data is kubeadm bootstrap data (Cluster API's own
//     generator) becomes a one-node cluster, reachable from the host through
//     its floating IP and through an Octavia load balancer's floating IP;
//  2. the agent is stopped; a second server is created meanwhile; the agent
//     restarted converges (same containers, no second cloud-init run) and
//     the second server joins through the load balancer;
//  3. OCCM (built from its module, pulled by the nodes from devcloud's
//     registry mirror, talking to devcloud through region RegionOne-docker)
//     initializes the nodes and serves a LoadBalancer Service through its
//     VIP and floating IP; a kind cluster's pod reaches the floating IPs,
//     and a node reaches its own cluster through the load balancer's
//     floating IP (hairpin);
//  4. deleting the Service, servers, load balancer and floating IPs leaves
//     no container, no Docker network and no DOCKER-USER rule of them.
func TestWorkloadCluster(t *testing.T) {
	st := agentStatus(t)
	gw := externalGateway(t, st)
	image := nodeImage(t)
	dc := dockerClient(t)
	ctx := t.Context()
	pins, err := versions.Load()
	if err != nil {
		t.Fatal(err)
	}
	occmImage := "registry.k8s.io/provider-os/openstack-cloud-controller-manager:" + pins.Devcloud.CloudProviderOpenStack
	if _, err := dc.ImageInspect(ctx, occmImage); err != nil {
		t.Fatalf("%s is not built (%v): run `make mirror`", occmImage, err)
	}
	webImage, _ := goBinaryImage(t, "./tests/e2e/webserver", "dataplane-web")
	probeImage, _ := goBinaryImage(t, "./tests/integration/dataplane/osprobe", "osprobe")
	pushToMirror(t, occmImage, webImage)

	// The management side: a kind cluster (as capilab's management cluster).
	kindName := "dp-wl-" + randSuffix(t)
	_, kindCS := kind(t, kindName, image)
	if err := loadImage(t, kindName, probeImage); err != nil {
		t.Fatal(err)
	}

	tn := newTenant(t)
	// A CIDR no other test cluster on this host uses (the data plane puts
	// every network on one machine; overlapping ones are refused).
	cidr := fmt.Sprintf("10.%d.%d.0/24", 200+rand.IntN(50), rand.IntN(250))
	tn.networkWithRouter(cidr)
	imageID := tn.nodeImage(image)
	clusterName := "dpwl" + randSuffix(t)

	start := time.Now()
	api := tn.apiLoadBalancer()
	lbFIP := tn.fip(api.lb.VipPortID)
	t.Logf("TIMING API load balancer ACTIVE with listener, pool, monitor and floating IP %s: %s", lbFIP.FloatingIP, time.Since(start).Round(time.Second))
	cp1Port := tn.port("cp1")
	cp1IP := cp1Port.FixedIPs[0].IPAddress
	cp1FIP := tn.fip(cp1Port.ID)
	tn.addMember(api, cp1IP)

	mirrors := mirror.DevcloudMirrors(gw)
	mirrors["capilab.local"] = "http://" + gw + ":5001/capilab.local"
	kc := newKubeadmCluster(t, clusterName, api.lb.VipAddress+":6443",
		[]string{api.lb.VipAddress, lbFIP.FloatingIP, cp1FIP.FloatingIP, cp1IP}, mirrors)

	// 1. The first control plane.
	created := time.Now()
	cp1 := tn.server(clusterName+"-control-plane-0", imageID, cp1Port.ID, kc.initUserData(t))
	tn.waitActive(cp1.ID)
	t.Logf("TIMING server %s ACTIVE: %s", clusterName+"-control-plane-0", time.Since(created).Round(time.Second))
	cp1Container := waitContainer(t, dc, dataplane.LabelServerID, cp1.ID)
	t.Logf("TIMING server create -> node container running: %s", containerStarted(t, dc, cp1Container).Sub(created).Round(time.Second))
	viaFIP := kc.client(t, "https://"+cp1FIP.FloatingIP+":6443")
	waitNodes(t, viaFIP, 1, false)
	t.Logf("TIMING server create -> node registered (through its floating IP): %s", time.Since(created).Round(time.Second))
	viaLB := kc.client(t, "https://"+lbFIP.FloatingIP+":6443")
	if _, err := viaLB.Discovery().ServerVersion(); err != nil {
		t.Fatalf("API through the load balancer's floating IP %s: %v", lbFIP.FloatingIP, err)
	}

	// OCCM, from the mirror, against devcloud through the lab region.
	deployOCCM(t, viaFIP, occmImage, clusterName, tn)
	waitNodes(t, viaFIP, 1, true)
	t.Logf("TIMING server create -> node Ready and initialized by OCCM: %s", time.Since(created).Round(time.Second))
	checkNodeInitialized(t, viaFIP, cp1.ID, cp1IP)

	// 2. The agent stops; a worker is created meanwhile; the agent comes back.
	before := ownContainers(t, dc)
	stopAgent(t)
	if rules := ownRules(t); len(rules) > 0 {
		t.Errorf("DOCKER-USER rules left while the agent is stopped: %v", rules)
	}
	wPort := tn.port("worker")
	wCreated := time.Now()
	worker := tn.server(clusterName+"-md-0", imageID, wPort.ID, kc.workerUserData(t))
	tn.waitActive(worker.ID)
	startAgent(t)
	waitContainer(t, dc, dataplane.LabelServerID, worker.ID)
	after := ownContainers(t, dc)
	for id, name := range before {
		if after[id] == "" {
			t.Errorf("container %s (%s) was replaced after the agent restarted", name, id[:12])
		}
	}
	if n := countCloudInitRuns(t, dc, cp1Container, cp1.ID); n != 1 {
		t.Errorf("cloud-init of %s ran %d times, want once", cp1.Name, n)
	}
	waitNodes(t, viaLB, 2, true)
	t.Logf("TIMING worker create (agent stopped) -> node Ready after the restart, joined through the load balancer: %s", time.Since(wCreated).Round(time.Second))

	// 3. A LoadBalancer Service: OCCM makes the Octavia LB and its FIP.
	svcStart := time.Now()
	fip := deployWeb(t, viaLB, webImage)
	t.Logf("TIMING LoadBalancer Service -> floating IP %s assigned by OCCM: %s", fip, time.Since(svcStart).Round(time.Second))
	var body string
	devcloudtest.WaitFor(t, 3*time.Minute, "the Service to answer at http://"+fip, func(ctx context.Context) (bool, error) {
		b, err := httpGet(ctx, "http://"+fip+"/")
		body = b
		return err == nil, nil
	})
	t.Logf("TIMING LoadBalancer Service -> answers through its floating IP: %s (%s)", time.Since(svcStart).Round(time.Second), strings.TrimSpace(body))
	occmLB := findLB(t, tn, "kube_service_"+clusterName+"_default_web")
	if b, err := httpGet(ctx, "http://"+occmLB.VipAddress+"/"); err != nil {
		t.Errorf("Service VIP %s: %v", occmLB.VipAddress, err)
	} else {
		t.Logf("Service VIP %s answers: %s", occmLB.VipAddress, strings.TrimSpace(b))
	}

	// The kind cluster reaches both floating IPs; the node reaches its own
	// cluster through the load balancer's floating IP (hairpin).
	for _, url := range []string{"https://" + lbFIP.FloatingIP + ":6443/livez", "http://" + fip + "/"} {
		logs := runPod(t, kindCS, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "fip-probe-" + randSuffix(t), Namespace: "default"},
			Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever,
				Tolerations: []corev1.Toleration{{Key: "node-role.kubernetes.io/control-plane", Operator: corev1.TolerationOpExists}},
				Containers:  []corev1.Container{{Name: "probe", Image: probeImage, ImagePullPolicy: corev1.PullNever, Args: []string{"-get", url}}}},
		}, 2*time.Minute)
		t.Logf("from a kind pod: %s", strings.TrimSpace(logs))
	}
	res, err := dc.Exec(ctx, cp1Container, []string{"curl", "-sk", "--max-time", "10", "https://" + lbFIP.FloatingIP + ":6443/livez"}, nil)
	if err != nil || res.ExitCode != 0 || strings.TrimSpace(string(res.Stdout)) != "ok" {
		t.Errorf("hairpin: the node could not reach its cluster through %s: %v %+v", lbFIP.FloatingIP, err, res)
	}

	measureNodes(t, dc, map[string]string{"control plane": cp1Container, "worker": containerOf(t, dc, worker.ID)})

	// 4. Delete everything the data plane forwards, then check nothing of it is left.
	netName := dockerNetworkOf(t, dc, tn.network.ID)
	delStart := time.Now()
	if err := viaLB.CoreV1().Services("default").Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	devcloudtest.WaitFor(t, 3*time.Minute, "OCCM to delete its load balancer", func(ctx context.Context) (bool, error) {
		_, err := loadbalancers.Get(ctx, tn.lbc, occmLB.ID).Extract()
		return devcloudtest.IsNotFound(err), nil
	})
	for _, id := range []string{worker.ID, cp1.ID} {
		if err := tn.deleteServer(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if err := tn.deleteLB(ctx, api.lb.ID); err != nil {
		t.Fatal(err)
	}
	for _, f := range []*floatingips.FloatingIP{lbFIP, cp1FIP} {
		if err := floatingips.Delete(ctx, tn.net, f.ID).ExtractErr(); err != nil && !devcloudtest.IsNotFound(err) {
			t.Fatal(err)
		}
	}
	gone := map[string]string{
		dataplane.LabelServerID: cp1.ID + "," + worker.ID,
		dataplane.LabelLBID:     api.lb.ID + "," + occmLB.ID,
		dataplane.LabelFIPID:    lbFIP.ID + "," + cp1FIP.ID,
	}
	devcloudtest.WaitFor(t, 2*time.Minute, "the data plane to remove every container, network and rule of the deleted resources", func(ctx context.Context) (bool, error) {
		left := leftovers(t, dc, gone, tn.network.ID, netName)
		return len(left) == 0, nil
	})
	t.Logf("TIMING deletions -> nothing of them left in Docker or DOCKER-USER: %s", time.Since(delStart).Round(time.Second))
	if _, err := os.Stat(filepath.Join(agentStateDir, "lb", api.lb.ID)); !os.IsNotExist(err) {
		t.Errorf("load balancer config of %s still on disk (%v)", api.lb.ID, err)
	}
}

// pushToMirror puts images into devcloud's registry mirror, as make mirror does.
func pushToMirror(t *testing.T, refs ...string) {
	t.Helper()
	p := &mirror.Pusher{Mirror: mirror.DevcloudRegistry, Log: testLog(t)}
	if err := p.Push(t.Context(), refs); err != nil {
		t.Fatalf("push to devcloud's registry mirror: %v", err)
	}
}

func waitContainer(t *testing.T, dc *docker.Client, label, value string) string {
	t.Helper()
	var id string
	devcloudtest.WaitFor(t, 6*time.Minute, "a running container labelled "+label+"="+value, func(ctx context.Context) (bool, error) {
		cs, err := dc.ContainerList(ctx, map[string][]string{"label": {label + "=" + value}})
		if err != nil {
			return false, err
		}
		for _, c := range cs {
			if c.State == "running" {
				id = c.ID
				return true, nil
			}
		}
		return false, nil
	})
	return id
}

func containerOf(t *testing.T, dc *docker.Client, serverID string) string {
	cs, err := dc.ContainerList(t.Context(), map[string][]string{"label": {dataplane.LabelServerID + "=" + serverID}})
	if err != nil || len(cs) != 1 {
		t.Fatalf("containers of server %s: %v (%d)", serverID, err, len(cs))
	}
	return cs[0].ID
}

func containerStarted(t *testing.T, dc *docker.Client, id string) time.Time {
	c, err := dc.ContainerInspect(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	ts, err := time.Parse(time.RFC3339Nano, c.State.StartedAt)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

func waitNodes(t *testing.T, cs *kubernetes.Clientset, want int, ready bool) {
	t.Helper()
	what := fmt.Sprintf("%d node(s) registered", want)
	if ready {
		what = fmt.Sprintf("%d node(s) Ready and without the uninitialized taint", want)
	}
	devcloudtest.WaitFor(t, 6*time.Minute, what, func(ctx context.Context) (bool, error) {
		nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil // the API server may not answer yet
		}
		n := 0
		for _, node := range nodes.Items {
			if !ready {
				n++
				continue
			}
			ok := false
			for _, c := range node.Status.Conditions {
				if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
					ok = true
				}
			}
			for _, taint := range node.Spec.Taints {
				if taint.Key == "node.cloudprovider.kubernetes.io/uninitialized" {
					ok = false
				}
			}
			if ok {
				n++
			}
		}
		return n >= want, nil
	})
}

func checkNodeInitialized(t *testing.T, cs *kubernetes.Clientset, serverID, ip string) {
	nodes, err := cs.CoreV1().Nodes().List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes.Items {
		if n.Spec.ProviderID != "openstack:///"+serverID {
			continue
		}
		for _, a := range n.Status.Addresses {
			if a.Type == corev1.NodeInternalIP && a.Address == ip {
				return
			}
		}
		t.Errorf("node %s: addresses %v, want InternalIP %s (set by OCCM from Nova)", n.Name, n.Status.Addresses, ip)
		return
	}
	t.Errorf("no node with providerID openstack:///%s", serverID)
}

// deployOCCM runs OCCM as its manifests do (DaemonSet on the control plane,
// host network), configured for devcloud's lab region.
func deployOCCM(t *testing.T, cs *kubernetes.Clientset, image, clusterName string, tn *tenant) {
	t.Helper()
	ctx := t.Context()
	lab := labCloudEntry(t)
	auth, _ := lab["auth"].(map[string]any)
	conf := fmt.Sprintf(`[Global]
auth-url=%v
username=%v
password=%v
tenant-name=%v
domain-name=Default
region=%v

[LoadBalancer]
floating-network-id=%s
subnet-id=%s
`, auth["auth_url"], auth["username"], auth["password"], auth["project_name"], lab["region_name"], tn.publicID, tn.subnet.ID)
	ns := "kube-system"
	mustCreate(t, func() error {
		_, err := cs.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "cloud-config"}, StringData: map[string]string{"cloud.conf": conf}}, metav1.CreateOptions{})
		return err
	})
	mustCreate(t, func() error {
		_, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "cloud-controller-manager"}}, metav1.CreateOptions{})
		return err
	})
	mustCreate(t, func() error {
		_, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "capilab:cloud-controller-manager"},
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "cluster-admin"},
			Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "cloud-controller-manager", Namespace: ns}},
		}, metav1.CreateOptions{})
		return err
	})
	labels := map[string]string{"app": "openstack-cloud-controller-manager"}
	mustCreate(t, func() error {
		_, err := cs.AppsV1().DaemonSets(ns).Create(ctx, &appsv1.DaemonSet{
			ObjectMeta: metav1.ObjectMeta{Name: "openstack-cloud-controller-manager", Labels: labels},
			Spec: appsv1.DaemonSetSpec{
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec: corev1.PodSpec{
						NodeSelector:       map[string]string{"node-role.kubernetes.io/control-plane": ""},
						ServiceAccountName: "cloud-controller-manager",
						HostNetwork:        true,
						Tolerations: []corev1.Toleration{
							{Key: "node.cloudprovider.kubernetes.io/uninitialized", Value: "true", Effect: corev1.TaintEffectNoSchedule},
							{Key: "node-role.kubernetes.io/control-plane", Effect: corev1.TaintEffectNoSchedule},
						},
						Containers: []corev1.Container{{
							Name: "openstack-cloud-controller-manager", Image: image, ImagePullPolicy: corev1.PullIfNotPresent,
							Args: []string{"/bin/openstack-cloud-controller-manager", "--v=2", "--cluster-name=" + clusterName,
								"--cloud-config=/etc/config/cloud.conf", "--cloud-provider=openstack",
								"--use-service-account-credentials=false", "--bind-address=127.0.0.1"},
							VolumeMounts: []corev1.VolumeMount{{Name: "cloud-config", MountPath: "/etc/config", ReadOnly: true}},
						}},
						Volumes: []corev1.Volume{{Name: "cloud-config", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "cloud-config"}}}},
					},
				},
			},
		}, metav1.CreateOptions{})
		return err
	})
}

func mustCreate(t *testing.T, create func() error) {
	t.Helper()
	devcloudtest.WaitFor(t, time.Minute, "an object to be created", func(context.Context) (bool, error) {
		err := create()
		return err == nil || strings.Contains(err.Error(), "already exists"), nil
	})
}

// deployWeb runs two web pods behind a LoadBalancer Service and returns the
// floating IP OCCM gives it.
func deployWeb(t *testing.T, cs *kubernetes.Clientset, image string) string {
	t.Helper()
	ctx := t.Context()
	labels := map[string]string{"app": "web"}
	two := int32(2)
	mustCreate(t, func() error {
		_, err := cs.AppsV1().Deployments("default").Create(ctx, &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "web"},
			Spec: appsv1.DeploymentSpec{Replicas: &two, Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec: corev1.PodSpec{
						Tolerations: []corev1.Toleration{{Key: "node-role.kubernetes.io/control-plane", Operator: corev1.TolerationOpExists}},
						Containers: []corev1.Container{{Name: "web", Image: image, Ports: []corev1.ContainerPort{{ContainerPort: 8080}},
							Env: []corev1.EnvVar{
								{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
								{Name: "NODE_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}},
							}}}}}},
		}, metav1.CreateOptions{})
		return err
	})
	mustCreate(t, func() error {
		_, err := cs.CoreV1().Services("default").Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "web"},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Selector: labels,
				Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}},
		}, metav1.CreateOptions{})
		return err
	})
	var ip string
	devcloudtest.WaitFor(t, 10*time.Minute, "OCCM to give Service web a load balancer address", func(ctx context.Context) (bool, error) {
		svc, err := cs.CoreV1().Services("default").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		for _, in := range svc.Status.LoadBalancer.Ingress {
			ip = in.IP
		}
		return ip != "", nil
	})
	return ip
}

func findLB(t *testing.T, tn *tenant, name string) *loadbalancers.LoadBalancer {
	pages, err := loadbalancers.List(tn.lbc, loadbalancers.ListOpts{Name: name}).AllPages(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	lbs, err := loadbalancers.ExtractLoadBalancers(pages)
	if err != nil || len(lbs) != 1 {
		t.Fatalf("load balancer %s: %v (%d found)", name, err, len(lbs))
	}
	return &lbs[0]
}

// ownContainers maps the data plane's container IDs to their names.
func ownContainers(t *testing.T, dc *docker.Client) map[string]string {
	cs, err := dc.ContainerList(t.Context(), map[string][]string{"label": {dataplane.LabelOwner + "=" + dataplane.DefaultOwner}})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, c := range cs {
		out[c.ID] = c.Name()
	}
	return out
}

func ownRules(t *testing.T) []dataplane.Rule {
	fw := &dataplane.IPTables{Owner: dataplane.DefaultOwner}
	rules, err := fw.Rules(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return rules
}

// stopAgent stops the running agent by its PID (as devcloud.sh stop does).
func stopAgent(t *testing.T) {
	t.Helper()
	raw, err := os.ReadFile("/var/lib/devcloud/run/dataplane.pid")
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatalf("stop the agent (pid %d): %v", pid, err)
	}
	// Whatever happens below, the agent runs again when the test ends.
	t.Cleanup(func() { startAgentQuietly() })
	devcloudtest.WaitFor(t, time.Minute, "the agent to exit", func(context.Context) (bool, error) {
		return syscall.Kill(pid, 0) != nil, nil
	})
}

func startAgent(t *testing.T) {
	t.Helper()
	if out, err := startAgentQuietly(); err != nil {
		t.Fatalf("devcloud.sh start: %v\n%s", err, out)
	}
}

func startAgentQuietly() ([]byte, error) {
	cmd := exec.Command(filepath.Join("..", "..", "..", "scripts", "devcloud", "devcloud.sh"), "start")
	cmd.Env = append(os.Environ(), "DEVCLOUD_SELFCHECK=never") // only the agent is restarted here
	return cmd.CombinedOutput()
}

func countCloudInitRuns(t *testing.T, dc *docker.Client, container, instanceID string) int {
	res, err := dc.Exec(t.Context(), container, []string{"cat", "/var/lib/capilab-cloud-init/" + instanceID + "/output.log"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(res.Stdout), "=== finished")
}

func dockerNetworkOf(t *testing.T, dc *docker.Client, networkID string) string {
	ns, err := dc.NetworkList(t.Context(), map[string][]string{"label": {dataplane.LabelNetworkID + "=" + networkID}})
	if err != nil || len(ns) != 1 {
		t.Fatalf("Docker network of %s: %v (%d)", networkID, err, len(ns))
	}
	return ns[0].Name
}

// leftovers lists what the data plane still has of deleted resources.
func leftovers(t *testing.T, dc *docker.Client, gone map[string]string, networkID, dockerNet string) []string {
	var left []string
	for label, ids := range gone {
		for _, id := range strings.Split(ids, ",") {
			cs, err := dc.ContainerList(t.Context(), map[string][]string{"label": {label + "=" + id}})
			if err != nil {
				left = append(left, err.Error())
			}
			for _, c := range cs {
				left = append(left, "container "+c.Name())
			}
		}
	}
	if ns, _ := dc.NetworkList(t.Context(), map[string][]string{"label": {dataplane.LabelNetworkID + "=" + networkID}}); len(ns) > 0 {
		left = append(left, "network "+ns[0].Name)
	}
	for _, r := range ownRules(t) {
		if r.Network == dockerNet {
			left = append(left, fmt.Sprintf("DOCKER-USER rule %+v", r))
		}
	}
	return left
}

// measureNodes logs memory and disk of node containers (docker stats and
// the size of the container layer plus its /var volume).
func measureNodes(t *testing.T, dc *docker.Client, nodes map[string]string) {
	for role, id := range nodes {
		out, err := exec.CommandContext(t.Context(), "docker", "stats", "--no-stream", "--format", "{{.MemUsage}} {{.CPUPerc}}", id).Output()
		if err != nil {
			t.Logf("MEASURE %s: docker stats: %v", role, err)
			continue
		}
		c, err := dc.ContainerInspect(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		var disk int64
		for _, m := range c.Mounts {
			if m.Type == "volume" {
				if du, err := exec.Command("du", "-sb", filepath.Join("/var/lib/docker/volumes", m.Name, "_data")).Output(); err == nil {
					n, _ := strconv.ParseInt(strings.Fields(string(du))[0], 10, 64)
					disk += n
				}
			}
		}
		var size struct {
			SizeRw int64 `json:"SizeRw"`
		}
		if raw, err := exec.Command("docker", "inspect", "--size", "--format", "{{json .}}", id).Output(); err == nil {
			_ = json.Unmarshal(raw, &size)
		}
		t.Logf("MEASURE %s node: memory/CPU %s, disk %.2f GB (volume /var %.2f GB, container layer %.0f MB)", role, strings.TrimSpace(string(out)),
			float64(disk+size.SizeRw)/1e9, float64(disk)/1e9, float64(size.SizeRw)/1e6)
	}
}
