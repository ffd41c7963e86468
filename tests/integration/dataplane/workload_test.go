//go:build integration

package dataplane

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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
	// The agent runs this tree's code (devcloud.sh rebuilds and restarts it
	// when its code differs; otherwise a quick no-op), so that the restart
	// below restarts the same binary.
	startAgent(t)
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
	fipCreated := time.Now()
	lbFIP := tn.fip(api.lb.VipPortID)
	t.Logf("TIMING API load balancer ACTIVE with listener, pool, monitor and floating IP %s: %s", lbFIP.FloatingIP, time.Since(start).Round(time.Second))
	// The agent's reaction: its helpers run after Octavia and Neutron said so.
	lbHelper := waitContainer(t, dc, dataplane.LabelLBID, api.lb.ID)
	t.Logf("TIMING agent reaction: load balancer ACTIVE -> its helper running: %s", reaction(containerStarted(t, dc, lbHelper), api.activeAt))
	fipHelper := waitContainer(t, dc, dataplane.LabelFIPID, lbFIP.ID)
	t.Logf("TIMING agent reaction: floating IP associated -> its helper running: %s", reaction(containerStarted(t, dc, fipHelper), fipCreated))
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
	activeAt := time.Now()
	t.Logf("TIMING server %s ACTIVE: %s", clusterName+"-control-plane-0", activeAt.Sub(created).Round(time.Second))
	cp1Container := waitContainer(t, dc, dataplane.LabelServerID, cp1.ID)
	cp1Started := containerStarted(t, dc, cp1Container)
	t.Logf("TIMING server create -> node container running: %s", cp1Started.Sub(created).Round(time.Second))
	t.Logf("TIMING agent reaction: server ACTIVE -> node container running: %s", reaction(cp1Started, activeAt))
	viaFIP := kc.client(t, "https://"+cp1FIP.FloatingIP+":6443")
	waitNodes(t, viaFIP, 1, false)
	t.Logf("TIMING server create -> node registered (through its floating IP): %s", time.Since(created).Round(time.Second))
	viaLB := kc.client(t, "https://"+lbFIP.FloatingIP+":6443")
	// The load balancer forwards to the node once its health monitor saw
	// the API server answer.
	devcloudtest.WaitFor(t, 3*time.Minute, "the API server to answer through the load balancer's floating IP "+lbFIP.FloatingIP, func(context.Context) (bool, error) {
		_, err := viaLB.Discovery().ServerVersion()
		return err == nil, nil
	})
	t.Logf("TIMING server create -> API server answers through the load balancer's floating IP: %s", time.Since(created).Round(time.Second))

	// OCCM, from the mirror, against devcloud through the lab region.
	deployOCCM(t, viaFIP, occmImage, clusterName, tn)
	waitNodes(t, viaFIP, 1, true)
	t.Logf("TIMING server create -> node Ready and initialized by OCCM: %s", time.Since(created).Round(time.Second))
	checkNodeInitialized(t, viaFIP, cp1.ID, cp1IP)

	// 2. The agent stops; a worker is created meanwhile; the agent comes back.
	// The agent is down only as long as that takes: the devcloud it serves
	// is shared (other tests' clusters use its forwarders meanwhile).
	wPort := tn.port("worker")
	wUserData := kc.workerUserData(t)
	// This test's containers (others' come and go with their tests).
	before := map[string]string{}
	for label, id := range map[string]string{dataplane.LabelServerID: cp1.ID, dataplane.LabelLBID: api.lb.ID} {
		maps.Copy(before, containersLabelled(t, dc, label, id))
	}
	for _, f := range []*floatingips.FloatingIP{lbFIP, cp1FIP} {
		maps.Copy(before, containersLabelled(t, dc, dataplane.LabelFIPID, f.ID))
	}
	binBefore := agentBinaryID(t)
	stopAgent(t)
	stopped := time.Now()
	if rules := ownRules(t); len(rules) > 0 {
		t.Errorf("DOCKER-USER rules left while the agent is stopped: %v", rules)
	}
	wCreated := time.Now()
	worker := tn.server(clusterName+"-md-0", imageID, wPort.ID, wUserData)
	startAgent(t)
	t.Logf("TIMING agent stopped for %s (worker server created meanwhile)", time.Since(stopped).Round(time.Second))
	tn.waitActive(worker.ID)
	waitContainer(t, dc, dataplane.LabelServerID, worker.ID)
	after := ownContainers(t, dc)
	for id, name := range before {
		if after[id] == "" {
			t.Errorf("container %s (%s) was replaced after the agent restarted (agent binary before the stop %s, after the start %s: a load balancer's helper runs the agent's binary and follows its changes)",
				name, id[:12], binBefore, agentBinaryID(t))
		}
	}
	if len(before) != 4 {
		t.Errorf("before the restart: %d containers of this test's server, load balancer and floating IPs, want 4: %v", len(before), before)
	}
	if n := countCloudInitRuns(t, dc, cp1Container, cp1.ID); n != 1 {
		t.Errorf("cloud-init of %s ran %d times, want once", cp1.Name, n)
	}
	waitNodes(t, viaLB, 2, true)
	t.Logf("TIMING worker create (agent stopped) -> node Ready after the restart, joined through the load balancer: %s", time.Since(wCreated).Round(time.Second))

	// 3. A LoadBalancer Service: OCCM makes the Octavia LB and its FIP.
	svcStart := time.Now()
	occmName := "kube_service_" + clusterName + "_default_web"
	cleanupOCCM(t, tn, viaLB, occmName, clusterName)
	fip := deployWeb(t, viaLB, webImage)
	t.Logf("TIMING LoadBalancer Service -> floating IP %s assigned by OCCM: %s", fip, time.Since(svcStart).Round(time.Second))
	var body string
	devcloudtest.WaitFor(t, 3*time.Minute, "the Service to answer at http://"+fip, func(ctx context.Context) (bool, error) {
		b, err := httpGet(ctx, "http://"+fip+"/")
		body = b
		return err == nil, nil
	})
	t.Logf("TIMING LoadBalancer Service -> answers through its floating IP: %s (%s)", time.Since(svcStart).Round(time.Second), strings.TrimSpace(body))
	occmLB, extraLBs := occmLoadBalancers(t, tn, viaLB, occmName)
	devcloudtest.WaitFor(t, 2*time.Minute, "the Service to answer at its VIP http://"+occmLB.VipAddress, func(ctx context.Context) (bool, error) {
		b, err := httpGet(ctx, "http://"+occmLB.VipAddress+"/")
		body = b
		return err == nil, nil
	})
	t.Logf("Service VIP %s answers: %s", occmLB.VipAddress, strings.TrimSpace(body))

	// The kind cluster reaches both floating IPs; the node reaches its own
	// cluster through the load balancer's floating IP (hairpin).
	for _, url := range []string{"https://" + lbFIP.FloatingIP + ":6443/livez", "http://" + fip + "/"} {
		logs := runPod(t, kindCS, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "fip-probe-" + randSuffix(t), Namespace: "default"},
			Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever,
				Tolerations: []corev1.Toleration{{Key: "node-role.kubernetes.io/control-plane", Operator: corev1.TolerationOpExists}},
				Containers:  []corev1.Container{{Name: "probe", Image: probeImage, ImagePullPolicy: corev1.PullNever, Args: []string{"-get", url}}}},
		}, 5*time.Minute)
		t.Logf("from a kind pod: %s", strings.TrimSpace(logs))
	}
	var hairpin string
	devcloudtest.WaitFor(t, 2*time.Minute, "the node to reach its own cluster through "+lbFIP.FloatingIP+" (hairpin)", func(ctx context.Context) (bool, error) {
		res, err := dc.Exec(ctx, cp1Container, []string{"curl", "-sk", "--max-time", "10", "https://" + lbFIP.FloatingIP + ":6443/livez"}, nil)
		if err != nil {
			hairpin = err.Error()
			return false, nil
		}
		hairpin = fmt.Sprintf("exit %d: %s %s", res.ExitCode, res.Stdout, res.Stderr)
		return res.ExitCode == 0 && strings.TrimSpace(string(res.Stdout)) == "ok", nil
	})
	t.Logf("hairpin: the node reaches its cluster through %s (%s)", lbFIP.FloatingIP, strings.TrimSpace(hairpin))

	measureNodes(t, dc, map[string]string{"control plane": cp1Container, "worker": containerOf(t, dc, worker.ID)})

	// 4. Delete everything the data plane forwards, then check nothing of it is left.
	netName := dockerNetworkOf(t, dc, tn.network.ID)
	delStart := time.Now()
	if err := viaLB.CoreV1().Services("default").Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	devcloudtest.WaitFor(t, lbTimeout, "OCCM to delete its load balancer", func(ctx context.Context) (bool, error) {
		_, err := loadbalancers.Get(ctx, tn.lbc, occmLB.ID).Extract()
		return devcloudtest.IsNotFound(err), nil
	})
	lbIDs := []string{api.lb.ID, occmLB.ID}
	// OCCM does not know its extra load balancers: the test deletes them,
	// those it saw before and any whose create Octavia answered since.
	for _, lb := range lbsNamed(ctx, t, tn, occmName) {
		if lb.ID != occmLB.ID && !slices.ContainsFunc(extraLBs, func(e loadbalancers.LoadBalancer) bool { return e.ID == lb.ID }) {
			t.Logf("OCCM's load balancer %s (named %s) appeared after its Service answered; the test deletes it", lb.ID, occmName)
			extraLBs = append(extraLBs, lb)
		}
	}
	for _, lb := range extraLBs {
		if err := tn.deleteLB(ctx, lb.ID); err != nil {
			t.Fatal(err)
		}
		lbIDs = append(lbIDs, lb.ID)
	}
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
		dataplane.LabelLBID:     strings.Join(lbIDs, ","),
		dataplane.LabelFIPID:    lbFIP.ID + "," + cp1FIP.ID,
	}
	var left []string
	if err := devcloudtest.Poll(ctx, 5*time.Minute, time.Second, "the data plane to remove every container, network and rule of the deleted resources", func(ctx context.Context) (bool, error) {
		left = leftovers(t, dc, gone, tn.network.ID, netName)
		return len(left) == 0, nil
	}); err != nil {
		t.Fatalf("%v; left: %v", err, left)
	}
	t.Logf("TIMING deletions -> nothing of them left in Docker or DOCKER-USER: %s", time.Since(delStart).Round(time.Second))
	if _, err := os.Stat(filepath.Join(agentStateDir, "lb", api.lb.ID)); !os.IsNotExist(err) {
		t.Errorf("load balancer config of %s still on disk (%v)", api.lb.ID, err)
	}
}

// pushToMirror puts images into devcloud's registry mirror, as make mirror does.
func pushToMirror(t *testing.T, refs ...string) {
	t.Helper()
	p := &mirror.Pusher{Mirror: mirror.DevcloudRegistry, LockDir: filepath.Join(devcloudtest.CacheDir(t), "locks"), Log: testLog(t)}
	if err := p.Push(t.Context(), refs); err != nil {
		t.Fatalf("push to devcloud's registry mirror: %v", err)
	}
}

func waitContainer(t *testing.T, dc *docker.Client, label, value string) string {
	t.Helper()
	var id string
	devcloudtest.WaitFor(t, 10*time.Minute, "a running container labelled "+label+"="+value, func(ctx context.Context) (bool, error) {
		cs, err := dc.ContainerList(ctx, map[string][]string{"label": {label + "=" + value}})
		if err != nil {
			return false, nil // a loaded engine may time out; asked again
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

// reaction is how long after seen the agent started a container; the
// agent may see a change up to one poll (1 s) before the test does.
func reaction(started, seen time.Time) string {
	d := started.Sub(seen)
	if d < 0 {
		return "at once (before the test's poll saw the change)"
	}
	return d.Round(100 * time.Millisecond).String()
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
	// Generous: on a loaded machine Nova answered in up to a minute, and
	// OCCM's node initialization backs off while it does not.
	err := devcloudtest.Poll(t.Context(), 15*time.Minute, time.Second, what, func(ctx context.Context) (bool, error) {
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
	if err != nil {
		dumpCluster(t, cs)
		t.Fatal(err)
	}
}

// dumpCluster logs what a wait on a workload cluster needs to be understood:
// nodes (conditions, taints, provider IDs), pods that are not running,
// recent warning events and the log tail of OCCM.
func dumpCluster(t *testing.T, cs *kubernetes.Clientset) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), time.Minute)
	defer cancel()
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Logf("DUMP nodes: %v", err)
	}
	for _, n := range nodes.Items {
		var conds []string
		for _, c := range n.Status.Conditions {
			conds = append(conds, fmt.Sprintf("%s=%s (%s: %s)", c.Type, c.Status, c.Reason, c.Message))
		}
		t.Logf("DUMP node %s providerID=%q taints=%v addresses=%v conditions=%v", n.Name, n.Spec.ProviderID, n.Spec.Taints, n.Status.Addresses, conds)
	}
	pods, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Logf("DUMP pods: %v", err)
	}
	for _, p := range pods.Items {
		var st []string
		for _, c := range p.Status.ContainerStatuses {
			s := fmt.Sprintf("%s ready=%v restarts=%d", c.Name, c.Ready, c.RestartCount)
			if w := c.State.Waiting; w != nil {
				s += fmt.Sprintf(" waiting %s: %s", w.Reason, w.Message)
			}
			if term := c.LastTerminationState.Terminated; term != nil {
				s += fmt.Sprintf(" last exit %d %s", term.ExitCode, term.Reason)
			}
			st = append(st, s)
		}
		t.Logf("DUMP pod %s/%s on %q %s %v", p.Namespace, p.Name, p.Spec.NodeName, p.Status.Phase, st)
		if strings.HasPrefix(p.Name, "openstack-cloud-controller-manager") {
			rc, err := cs.CoreV1().Pods(p.Namespace).GetLogs(p.Name, &corev1.PodLogOptions{TailLines: ptrTo(int64(40))}).Stream(ctx)
			if err != nil {
				t.Logf("DUMP log of %s: %v", p.Name, err)
				continue
			}
			b, _ := io.ReadAll(io.LimitReader(rc, 64<<10))
			rc.Close()
			t.Logf("DUMP log of %s:\n%s", p.Name, b)
		}
	}
	events, err := cs.CoreV1().Events("").List(ctx, metav1.ListOptions{FieldSelector: "type=Warning"})
	if err != nil {
		t.Logf("DUMP events: %v", err)
	}
	for _, e := range events.Items {
		t.Logf("DUMP event %s %s/%s %s: %s (x%d)", e.LastTimestamp.Format(time.TimeOnly), e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Reason, e.Message, e.Count)
	}
}

func ptrTo[T any](v T) *T { return &v }

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

// occmLoadBalancers returns the load balancer OCCM serves the Service
// with (the ID it records on the Service) and any other of its name: under
// a loaded Octavia, OCCM was seen to create a second one whose create it
// had not seen answered; it never deletes that one, the test does.
func occmLoadBalancers(t *testing.T, tn *tenant, cs *kubernetes.Clientset, name string) (*loadbalancers.LoadBalancer, []loadbalancers.LoadBalancer) {
	t.Helper()
	var id string
	devcloudtest.WaitFor(t, 2*time.Minute, "OCCM to record its load balancer on Service web", func(ctx context.Context) (bool, error) {
		svc, err := cs.CoreV1().Services("default").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		id = svc.Annotations["loadbalancer.openstack.org/load-balancer-id"]
		return id != "", nil
	})
	lbs := lbsNamed(t.Context(), t, tn, name)
	var own *loadbalancers.LoadBalancer
	var extra []loadbalancers.LoadBalancer
	for i := range lbs {
		if lbs[i].ID == id {
			own = &lbs[i]
		} else {
			extra = append(extra, lbs[i])
		}
	}
	if own == nil {
		t.Fatalf("OCCM's load balancer %s (on Service web) is not among those named %s: %+v", id, name, lbs)
	}
	if len(extra) > 0 {
		t.Logf("OCCM made %d more load balancer(s) named %s besides its own %s (a create it did not see answered on a loaded Octavia); the test deletes them", len(extra), name, id)
	}
	return own, extra
}

func lbsNamed(ctx context.Context, t *testing.T, tn *tenant, name string) []loadbalancers.LoadBalancer {
	pages, err := loadbalancers.List(tn.lbc, loadbalancers.ListOpts{Name: name}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	lbs, err := loadbalancers.ExtractLoadBalancers(pages)
	if err != nil {
		t.Fatal(err)
	}
	return lbs
}

// cleanupOCCM removes, when the test ends however it ends, what OCCM made
// for Service web in the test's project: the Service first (so that OCCM
// makes nothing more), then every load balancer of its name and the
// floating IPs OCCM describes as the Service's of this cluster.
func cleanupOCCM(t *testing.T, tn *tenant, cs *kubernetes.Clientset, lbName, clusterName string) {
	devcloudtest.Cleanup(t, "what OCCM made for Service web", func(ctx context.Context) error {
		sctx, cancel := context.WithTimeout(ctx, 20*time.Second) // the cluster may be gone already
		_ = cs.CoreV1().Services("default").Delete(sctx, "web", metav1.DeleteOptions{})
		cancel()
		pages, err := loadbalancers.List(tn.lbc, loadbalancers.ListOpts{Name: lbName}).AllPages(ctx)
		if err != nil {
			return err
		}
		lbs, err := loadbalancers.ExtractLoadBalancers(pages)
		if err != nil {
			return err
		}
		var errs []error
		for _, lb := range lbs {
			if err := tn.deleteLB(ctx, lb.ID); err != nil && !devcloudtest.IsNotFound(err) {
				errs = append(errs, err)
			}
		}
		fpages, err := floatingips.List(tn.net, floatingips.ListOpts{}).AllPages(ctx)
		if err != nil {
			return errors.Join(append(errs, err)...)
		}
		fips, err := floatingips.ExtractFloatingIPs(fpages)
		if err != nil {
			return errors.Join(append(errs, err)...)
		}
		for _, f := range fips {
			if strings.HasPrefix(f.Description, "Floating IP for Kubernetes external service") && strings.HasSuffix(f.Description, " from cluster "+clusterName) {
				if err := floatingips.Delete(ctx, tn.net, f.ID).ExtractErr(); err != nil && !devcloudtest.IsNotFound(err) {
					errs = append(errs, err)
				}
			}
		}
		return errors.Join(errs...)
	})
}

// containersLabelled maps the IDs of the containers with label=value to their names.
func containersLabelled(t *testing.T, dc *docker.Client, label, value string) map[string]string {
	cs, err := dc.ContainerList(t.Context(), map[string][]string{"label": {label + "=" + value}})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, c := range cs {
		out[c.ID] = c.Name()
	}
	return out
}

// agentBinaryID identifies the agent's binary devcloud.sh built (its
// size and modification time: it is replaced only when its code changed).
func agentBinaryID(t *testing.T) string {
	fi, err := os.Stat("/var/lib/devcloud/bin/dataplane")
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("%d bytes, built %s", fi.Size(), fi.ModTime().UTC().Format(time.TimeOnly))
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
