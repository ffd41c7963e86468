//go:build e2e

package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/e2e-framework/pkg/env"
	"sigs.k8s.io/e2e-framework/pkg/envconf"
	"sigs.k8s.io/e2e-framework/pkg/features"

	"github.com/capilab/capilab/internal/kindcluster"
	"github.com/capilab/capilab/internal/wait"
)

func TestOneNodeCluster(t *testing.T) { testCluster(t, 0) }

func TestTwoNodeCluster(t *testing.T) { testCluster(t, 1) }

// testCluster creates a kind cluster with one control-plane node and the
// given number of workers, runs the workload scenario on it, exports its logs
// and deletes it, checking that no container of it is left.
func testCluster(t *testing.T, workers int) {
	ctx := t.Context()
	log := testLog(t)
	name := fmt.Sprintf("capilab-e2e-%d-%s", workers+1, randSuffix(t))
	artifacts := filepath.Join(prepared.artifacts, t.Name())
	kubeconfig := filepath.Join(artifacts, "kubeconfig")
	mgr := kindcluster.New(log)

	start := time.Now()
	c, err := mgr.Create(ctx, kindcluster.Options{
		Name:         name,
		Image:        prepared.nodeImage,
		Workers:      workers,
		Kubeconfig:   kubeconfig,
		WaitForReady: 3 * time.Minute,
	})
	t.Cleanup(func() { deleteCluster(t, mgr, name, kubeconfig, artifacts) })
	if err != nil {
		t.Fatalf("create cluster: %v", err)
	}
	t.Logf("TIMING create %d-node cluster: %s", workers+1, time.Since(start).Round(time.Second))

	start = time.Now()
	if err := mgr.LoadImages(ctx, name, prepared.webImage); err != nil {
		t.Fatalf("load %s: %v", prepared.webImage, err)
	}
	t.Logf("TIMING load test image into %d nodes: %s", len(c.Nodes), time.Since(start).Round(time.Second))

	cfg := envconf.NewWithKubeConfig(kubeconfig)
	testenv := env.NewWithConfig(cfg)
	testenv.Test(t, workloadFeature(len(c.Nodes)))
}

func deleteCluster(t *testing.T, mgr *kindcluster.Manager, name, kubeconfig, artifacts string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), 5*time.Minute)
	defer cancel()
	start := time.Now()
	if err := mgr.ExportLogs(ctx, name, filepath.Join(artifacts, "logs")); err != nil {
		t.Errorf("export logs: %v", err)
	} else {
		t.Logf("TIMING export logs: %s (to %s)", time.Since(start).Round(time.Second), filepath.Join(artifacts, "logs"))
	}
	start = time.Now()
	if err := mgr.Delete(ctx, name, kubeconfig); err != nil {
		t.Errorf("delete cluster: %v", err)
		return
	}
	t.Logf("TIMING delete cluster: %s", time.Since(start).Round(time.Second))
	left, err := kindcluster.Containers(ctx, name)
	if err != nil {
		t.Errorf("list containers: %v", err)
	} else if len(left) > 0 {
		t.Errorf("containers of %s remain after delete: %v", name, left)
	}
	names, err := mgr.List()
	if err != nil {
		t.Errorf("list clusters: %v", err)
	} else if slices.Contains(names, name) {
		t.Errorf("kind still lists cluster %s after delete", name)
	}
}

func randSuffix(t *testing.T) string {
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

type ctxKey string

const nsKey ctxKey = "namespace"

// workloadFeature: a Deployment with one replica per node behind a Service,
// and a PVC used by a second Deployment.
func workloadFeature(nodes int) features.Feature {
	return features.New(fmt.Sprintf("workload on %d node(s)", nodes)).
		Setup(func(ctx context.Context, t *testing.T, cfg *envconf.Config) context.Context {
			cs := clientset(t, cfg)
			waitNodesReady(ctx, t, cs, nodes)
			ns := "e2e-" + randSuffix(t)
			if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
				t.Fatalf("create namespace: %v", err)
			}
			deployWorkload(ctx, t, cs, ns, nodes)
			return context.WithValue(ctx, nsKey, ns)
		}).
		Assess("every node runs a web pod", func(ctx context.Context, t *testing.T, cfg *envconf.Config) context.Context {
			pods := webPods(ctx, t, clientset(t, cfg), ctx.Value(nsKey).(string))
			seen := map[string]bool{}
			for _, p := range pods {
				seen[p.Spec.NodeName] = true
			}
			if len(seen) != nodes {
				t.Fatalf("web pods run on %d node(s), want %d", len(seen), nodes)
			}
			return ctx
		}).
		Assess("pod to pod, across nodes", func(ctx context.Context, t *testing.T, cfg *envconf.Config) context.Context {
			cs := clientset(t, cfg)
			ns := ctx.Value(nsKey).(string)
			pods := webPods(ctx, t, cs, ns)
			pairs := 0
			for _, from := range pods {
				for _, to := range pods {
					if from.Name == to.Name || (nodes > 1 && from.Spec.NodeName == to.Spec.NodeName) {
						continue
					}
					pairs++
					what := fmt.Sprintf("pod %s (%s) to reach pod %s (%s, %s)", from.Name, from.Spec.NodeName, to.Name, to.Spec.NodeName, to.Status.PodIP)
					body := pollProxy(ctx, t, cs, ns, from.Name, what, "/fetch", "url", "http://"+to.Status.PodIP+":8080/")
					var id struct{ Pod string }
					if err := json.Unmarshal([]byte(body), &id); err != nil || id.Pod != to.Name {
						t.Errorf("%s: answered %q", what, body)
					}
				}
			}
			if pairs == 0 {
				t.Fatal("no pod pair to test")
			}
			return ctx
		}).
		Assess("cluster DNS resolves the Service and the API", func(ctx context.Context, t *testing.T, cfg *envconf.Config) context.Context {
			cs := clientset(t, cfg)
			ns := ctx.Value(nsKey).(string)
			svc, err := cs.CoreV1().Services(ns).Get(ctx, "web", metav1.GetOptions{})
			if err != nil {
				t.Fatalf("get service: %v", err)
			}
			for _, p := range webPods(ctx, t, cs, ns) {
				for host, want := range map[string]string{
					"web." + ns + ".svc.cluster.local":     svc.Spec.ClusterIP,
					"kubernetes.default.svc.cluster.local": "",
				} {
					body := pollProxy(ctx, t, cs, ns, p.Name, fmt.Sprintf("pod %s (%s) to resolve %s", p.Name, p.Spec.NodeName, host), "/resolve", "name", host)
					if want != "" && !strings.Contains(body, `"`+want+`"`) {
						t.Errorf("pod %s resolved %s to %s, want %s", p.Name, host, body, want)
					}
				}
			}
			return ctx
		}).
		Assess("the Service reaches the pods from every node", func(ctx context.Context, t *testing.T, cfg *envconf.Config) context.Context {
			cs := clientset(t, cfg)
			ns := ctx.Value(nsKey).(string)
			pods := webPods(ctx, t, cs, ns)
			names := map[string]bool{}
			for _, p := range pods {
				names[p.Name] = true
			}
			for _, p := range pods {
				body := pollProxy(ctx, t, cs, ns, p.Name, fmt.Sprintf("pod %s (%s) to reach Service web", p.Name, p.Spec.NodeName), "/fetch", "url", "http://web."+ns+".svc.cluster.local/")
				var id struct{ Pod string }
				if err := json.Unmarshal([]byte(body), &id); err != nil || !names[id.Pod] {
					t.Errorf("Service web answered %q, not one of the web pods", body)
				}
			}
			// and through the API server's service proxy
			raw, err := cs.CoreV1().Services(ns).ProxyGet("http", "web", "80", "/", nil).DoRaw(ctx)
			if err != nil {
				t.Fatalf("service proxy: %v", err)
			}
			if !strings.Contains(string(raw), `"pod"`) {
				t.Errorf("service proxy answered %q", raw)
			}
			return ctx
		}).
		Assess("pods reach the Docker host, masqueraded to their node", func(ctx context.Context, t *testing.T, cfg *envconf.Config) context.Context {
			cs := clientset(t, cfg)
			ns := ctx.Value(nsKey).(string)
			hostURL, seen := hostListener(t)
			nodeIPs := map[string]string{}
			nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
			if err != nil {
				t.Fatalf("list nodes: %v", err)
			}
			for _, n := range nodes.Items {
				for _, a := range n.Status.Addresses {
					if a.Type == corev1.NodeInternalIP {
						nodeIPs[n.Name] = a.Address
					}
				}
			}
			for _, p := range webPods(ctx, t, cs, ns) {
				body := pollProxy(ctx, t, cs, ns, p.Name, fmt.Sprintf("pod %s (%s) to reach %s on the Docker host", p.Name, p.Spec.NodeName, hostURL), "/fetch", "url", hostURL+"/"+p.Name)
				if body != "host-ok" {
					t.Errorf("host answered %q to pod %s", body, p.Name)
				}
				if from := seen(p.Name); from != nodeIPs[p.Spec.NodeName] {
					t.Errorf("host saw pod %s's request from %q, want its node's address %s (masquerade)", p.Name, from, nodeIPs[p.Spec.NodeName])
				}
			}
			return ctx
		}).
		Assess("a PVC is bound and keeps data", func(ctx context.Context, t *testing.T, cfg *envconf.Config) context.Context {
			cs := clientset(t, cfg)
			ns := ctx.Value(nsKey).(string)
			pvc, err := cs.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "data", metav1.GetOptions{})
			if err != nil {
				t.Fatalf("get pvc: %v", err)
			}
			if pvc.Status.Phase != corev1.ClaimBound {
				t.Fatalf("pvc data is %s, want Bound", pvc.Status.Phase)
			}
			pod := storePod(ctx, t, cs, ns)
			token := randSuffix(t)
			pollProxy(ctx, t, cs, ns, pod, "store pod to write to its volume", "/write", "content", token)
			if got := pollProxy(ctx, t, cs, ns, pod, "store pod to read from its volume", "/read", "", ""); got != token {
				t.Errorf("read %q back from the volume, wrote %q", got, token)
			}
			return ctx
		}).
		Teardown(func(ctx context.Context, t *testing.T, cfg *envconf.Config) context.Context {
			ns, _ := ctx.Value(nsKey).(string)
			if ns == "" {
				return ctx
			}
			if t.Failed() {
				dumpNamespace(ctx, t, clientset(t, cfg), ns)
			}
			if err := clientset(t, cfg).CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				t.Errorf("delete namespace %s: %v", ns, err)
			}
			return ctx
		}).
		Feature()
}

func clientset(t *testing.T, cfg *envconf.Config) *kubernetes.Clientset {
	t.Helper()
	cs, err := kubernetes.NewForConfig(cfg.Client().RESTConfig())
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	return cs
}

func waitNodesReady(ctx context.Context, t *testing.T, cs *kubernetes.Clientset, want int) {
	t.Helper()
	err := wait.For(ctx, testLog(t), wait.Spec{What: fmt.Sprintf("%d node(s) to be Ready", want), Timeout: 3 * time.Minute, Interval: 2 * time.Second},
		func(ctx context.Context) (bool, string, error) {
			list, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
			if err != nil {
				return false, err.Error(), nil
			}
			ready := 0
			for _, n := range list.Items {
				for _, c := range n.Status.Conditions {
					if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
						ready++
					}
				}
			}
			return ready == want && len(list.Items) == want, fmt.Sprintf("%d/%d Ready", ready, len(list.Items)), nil
		})
	if err != nil {
		t.Fatal(err)
	}
}

func webPodSpec(image string, dataVolume bool) corev1.PodSpec {
	spec := corev1.PodSpec{
		// the control-plane node of a multi-node kind cluster is tainted
		Tolerations: []corev1.Toleration{{Key: "node-role.kubernetes.io/control-plane", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}},
		Containers: []corev1.Container{{
			Name:            "web",
			Image:           image,
			ImagePullPolicy: corev1.PullNever,
			Ports:           []corev1.ContainerPort{{ContainerPort: 8080, Name: "http"}},
			Env: []corev1.EnvVar{
				{Name: "NODE_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}},
				{Name: "POD_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
			},
			ReadinessProbe: &corev1.Probe{
				ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(8080)}},
				PeriodSeconds: 2,
			},
		}},
	}
	if dataVolume {
		spec.Containers[0].Env = append(spec.Containers[0].Env, corev1.EnvVar{Name: "DATA_DIR", Value: "/data"})
		spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
		spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}}}
	}
	return spec
}

func deployWorkload(ctx context.Context, t *testing.T, cs *kubernetes.Clientset, ns string, nodes int) {
	t.Helper()
	// one web pod per node (two on a single node, so pod-to-pod has a pair)
	replicas := int32(max(nodes, 2))
	web := webPodSpec(prepared.webImage, false)
	if nodes > 1 {
		web.Affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{
				LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
				TopologyKey:   "kubernetes.io/hostname",
			}},
		}}
	}
	deploy := func(name string, replicas int32, spec corev1.PodSpec) {
		d := &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: appsv1.DeploymentSpec{
				Replicas: &replicas,
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
				Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}}, Spec: spec},
			},
		}
		if _, err := cs.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create deployment %s: %v", name, err)
		}
	}
	deploy("web", replicas, web)
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "web"},
			Ports:    []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}},
		},
	}
	if _, err := cs.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create service: %v", err)
	}
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "data"},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("64Mi")}},
		},
	}
	if _, err := cs.CoreV1().PersistentVolumeClaims(ns).Create(ctx, pvc, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create pvc: %v", err)
	}
	deploy("store", 1, webPodSpec(prepared.webImage, true))

	for _, d := range []struct {
		name string
		want int32
	}{{"web", replicas}, {"store", 1}} {
		err := wait.For(ctx, testLog(t), wait.Spec{What: fmt.Sprintf("deployment %s/%s to have %d ready replica(s)", ns, d.name, d.want), Timeout: 3 * time.Minute, Interval: 2 * time.Second},
			func(ctx context.Context) (bool, string, error) {
				got, err := cs.AppsV1().Deployments(ns).Get(ctx, d.name, metav1.GetOptions{})
				if err != nil {
					return false, err.Error(), nil
				}
				return got.Status.ReadyReplicas == d.want, fmt.Sprintf("%d/%d ready", got.Status.ReadyReplicas, d.want), nil
			})
		if err != nil {
			dumpNamespace(ctx, t, cs, ns)
			t.Fatal(err)
		}
	}
}

func webPods(ctx context.Context, t *testing.T, cs *kubernetes.Clientset, ns string) []corev1.Pod {
	t.Helper()
	list, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		t.Fatalf("list web pods: %v", err)
	}
	var out []corev1.Pod
	for _, p := range list.Items {
		if p.Status.PodIP != "" && p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		t.Fatal("no running web pod")
	}
	return out
}

func storePod(ctx context.Context, t *testing.T, cs *kubernetes.Clientset, ns string) string {
	t.Helper()
	list, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=store"})
	if err != nil || len(list.Items) == 0 {
		t.Fatalf("store pod: %v (%d pods)", err, len(list.Items))
	}
	return list.Items[0].Name
}

// pollProxy GETs path on pod port 8080 through the API server's pod proxy
// until it answers 200, for at most a minute; it returns the body.
func pollProxy(ctx context.Context, t *testing.T, cs *kubernetes.Clientset, ns, pod, what, path, key, value string) string {
	t.Helper()
	var params map[string]string
	if key != "" {
		params = map[string]string{key: value}
	}
	var body string
	err := wait.For(ctx, testLog(t), wait.Spec{What: what, Timeout: time.Minute, Interval: 2 * time.Second},
		func(ctx context.Context) (bool, string, error) {
			raw, err := cs.CoreV1().Pods(ns).ProxyGet("http", pod, "8080", path, params).DoRaw(ctx)
			if err != nil {
				return false, fmt.Sprintf("GET %s?%s: %v %s", path, url.Values{key: {value}}.Encode(), err, strings.TrimSpace(string(raw))), nil
			}
			body = strings.TrimSpace(string(raw))
			return true, "", nil
		})
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// dumpNamespace writes the namespace's pods and events into the test log.
func dumpNamespace(ctx context.Context, t *testing.T, cs *kubernetes.Clientset, ns string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{}); err == nil {
		for _, p := range pods.Items {
			b, _ := json.Marshal(p.Status)
			t.Logf("pod %s on %s: %s", p.Name, p.Spec.NodeName, b)
		}
	}
	if evs, err := cs.CoreV1().Events(ns).List(ctx, metav1.ListOptions{}); err == nil {
		for _, e := range evs.Items {
			t.Logf("event %s %s: %s", e.InvolvedObject.Name, e.Reason, e.Message)
		}
	}
	if nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{}); err == nil {
		for _, n := range nodes.Items {
			t.Logf("node %s podCIDRs=%v", n.Name, n.Spec.PodCIDRs)
		}
	}
	_ = os.Stderr.Sync()
}

// hostListener serves HTTP on the host's address on kind's Docker network
// (the network's gateway) for the duration of the test; seen(path) returns
// the source address of the last request for /path.
func hostListener(t *testing.T) (string, func(string) string) {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), "docker", "network", "inspect", "kind", "--format", "{{range .IPAM.Config}}{{.Gateway}} {{end}}").CombinedOutput()
	if err != nil {
		t.Fatalf("docker network inspect kind: %v: %s", err, out)
	}
	gw := ""
	for _, f := range strings.Fields(string(out)) {
		if ip := net.ParseIP(f); ip != nil && ip.To4() != nil {
			gw = f
		}
	}
	if gw == "" {
		t.Fatalf("kind network has no IPv4 gateway: %q", out)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(gw, "0"))
	if err != nil {
		t.Fatalf("listen on the kind network gateway: %v", err)
	}
	var mu sync.Mutex
	from := map[string]string{}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		mu.Lock()
		from[strings.TrimPrefix(r.URL.Path, "/")] = host
		mu.Unlock()
		_, _ = io.WriteString(w, "host-ok")
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String(), func(path string) string {
		mu.Lock()
		defer mu.Unlock()
		return from[path]
	}
}
