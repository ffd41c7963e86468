package remote

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/capilab/capilab/internal/config"
	"github.com/capilab/capilab/internal/versions"
)

// fakeNode is a stand-in for the management node on this machine: an
// "ssh" that runs the remote command line here, with the node's paths
// (/home/…, /usr/local/sbin/capilab-bootstrap) moved under a temporary
// root, and "make", "docker" and "cloud-init" that behave like the node's
// would. The real capilab-bootstrap runs the jobs. Everything capilab
// does on a node after ssh answers runs for real: git archive and tar,
// the private files, the clouds.yaml merge, the detached job, following
// its log, its failure, make clean, the kubeconfigs.
type fakeNode struct {
	root string // the node's "/"
	bin  string
	env  []string
}

const fakeSSH = `#!/bin/bash
# ssh stand-in: the last argument is the remote command line.
script="${@: -1}"
script=${script//\/usr\/local\/sbin\/capilab-bootstrap/$FAKE_ROOT/bin/capilab-bootstrap}
script=${script//\/home\//$FAKE_ROOT/home/}
echo "$script" >> "$FAKE_ROOT/ssh.log"
echo "$*" >> "$FAKE_ROOT/ssh-args.log"
export CAPILAB_BOOTSTRAP_ENV=$FAKE_ROOT/bootstrap.env CAPILAB_LIB=$FAKE_ROOT/lib CAPILAB_SRC=$FAKE_ROOT/home/ubuntu/capilab
cd "$FAKE_ROOT/home/ubuntu"
exec bash -c "$script"
`

// make: says what it sees, checks that the settings and the credential
// arrived, and exits with the code in $FAKE_ROOT/exit.
const fakeMake = `#!/bin/bash
echo "make $1 in $(pwd)"
grep -q '^mgmt_mode: local$' lab.yaml && echo "lab.yaml: mgmt_mode local"
grep -q 'application_credential_secret' "$OS_CLIENT_CONFIG_FILE" && echo "clouds.yaml has the credential"
echo "files: $(ls | sort | tr '\n' ' ')"
exit $(cat "$FAKE_ROOT/exit")
`

const fakeDocker = `#!/bin/bash
case "$1 $3" in
"port 6443/tcp") echo "0.0.0.0:6443"; echo "[::]:6443" ;;
"exec cat") cat "$FAKE_ROOT/admin.conf" ;;
"exec kubectl") if [ -f "$FAKE_ROOT/workload.conf" ]; then base64 -w0 "$FAKE_ROOT/workload.conf"; fi ;;
*) echo "docker: unexpected $*" >&2; exit 1 ;;
esac
`

func newFakeNode(t *testing.T) *fakeNode {
	t.Helper()
	for _, tool := range []string{"bash", "git", "tar", "setsid", "flock"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed for this test: %v", tool, err)
		}
	}
	f := &fakeNode{root: t.TempDir()}
	f.bin = filepath.Join(f.root, "bin")
	for _, d := range []string{f.bin, filepath.Join(f.root, "lib"), filepath.Join(f.root, "home", "ubuntu")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	env := strings.ReplaceAll(testSetup().bootstrapEnv(), "/home/", f.root+"/home/")
	mustWrite(t, filepath.Join(f.root, "bootstrap.env"), env, 0o644)
	mustWrite(t, filepath.Join(f.bin, "capilab-bootstrap"), bootstrapScript, 0o755)
	mustWrite(t, filepath.Join(f.bin, "ssh"), fakeSSH, 0o755)
	mustWrite(t, filepath.Join(f.bin, "make"), fakeMake, 0o755)
	mustWrite(t, filepath.Join(f.bin, "docker"), fakeDocker, 0o755)
	mustWrite(t, filepath.Join(f.bin, "cloud-init"), "#!/bin/sh\necho 'status: done'\n", 0o755)
	mustWrite(t, filepath.Join(f.root, "admin.conf"), kindAdminConf, 0o600)
	mustWrite(t, filepath.Join(f.root, "exit"), "0", 0o644)
	mustWrite(t, filepath.Join(f.root, "lib", "prepare.status"), "ok\n", 0o644)
	mustWrite(t, filepath.Join(f.root, "lib", "prepare.log"), "capilab-bootstrap: prepare done\n", 0o644)
	f.env = append(os.Environ(), "FAKE_ROOT="+f.root, "PATH="+f.bin+":"+os.Getenv("PATH"))
	return f
}

// gitRepo is a checkout with one commit (and an uncommitted change, which
// must not reach the node).
func gitRepo(t *testing.T) (dir, commit string) {
	t.Helper()
	dir = t.TempDir()
	git := func(args ...string) string {
		cmd := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=t", "-c", "user.email=t@example.invalid"}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "-q")
	mustWrite(t, filepath.Join(dir, "Makefile"), "# committed\n", 0o644)
	git("add", "Makefile")
	git("commit", "-q", "-m", "one")
	mustWrite(t, filepath.Join(dir, "Makefile"), "# changed, not committed\n", 0o644)
	return dir, git("rev-parse", "HEAD")
}

func TestBootstrapOnFakeNode(t *testing.T) {
	f := newFakeNode(t)
	repo, commit := gitRepo(t)
	l, err := config.Load(config.Options{Dir: t.TempDir(), Environ: []string{"PREFIX=lab7", "MGMT_MODE=remote", "WORKER_COUNT=2"}})
	if err != nil {
		t.Fatal(err)
	}
	pins, err := versions.Load()
	if err != nil {
		t.Fatal(err)
	}
	var logBuf bytes.Buffer
	n, err := New(Options{Settings: &l.Settings, StateDir: t.TempDir(), RepoDir: repo, Pins: pins.Remote, Env: f.env, SSHClient: filepath.Join(f.bin, "ssh"),
		Log: slog.New(slog.NewTextHandler(&logBuf, nil)), Poll: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	// The lab's state after an apply: a server and its floating IP.
	ws := n.Workspace()
	if err := os.MkdirAll(filepath.Dir(ws.StateFile()), 0o700); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, ws.StateFile(), strings.ReplaceAll(stateDoc, "172.24.4.9", "203.0.113.9"), 0o600)
	if err := os.MkdirAll(ws.LabDir(), 0o700); err != nil {
		t.Fatal(err)
	}
	// The node already knows a credential of its own clusters.
	stateDir := filepath.Join(f.root, "home", "ubuntu", "capilab-state")
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, filepath.Join(stateDir, "clouds.yaml"), "clouds:\n  lab7-alpha:\n    auth:\n      application_credential_id: a1\n", 0o600)
	cred := Credential{CloudName: "lab7", Entry: map[string]any{
		"auth_type": "v3applicationcredential",
		"auth":      map[string]any{"auth_url": "https://keystone.example/v3", "application_credential_id": "id7", "application_credential_secret": "s3cr3t-of-the-lab"},
	}}
	ctx := context.Background()

	if err := n.bootstrap(ctx, "203.0.113.9", commit, cred, time.Minute); err != nil {
		t.Fatalf("bootstrap: %v\n%s", err, logBuf.String())
	}
	log := logBuf.String()
	for _, want := range []string{
		"node prepare: capilab-bootstrap: prepare done",
		"node create: make create in " + f.root + "/home/ubuntu/capilab",
		"node create: lab.yaml: mgmt_mode local",
		"node create: clouds.yaml has the credential",
		"node create: files: Makefile lab.yaml",
		"with exit code 0",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, "s3cr3t-of-the-lab") {
		t.Error("the secret was logged")
	}
	if ssh, _ := os.ReadFile(filepath.Join(f.root, "ssh.log")); bytes.Contains(ssh, []byte("s3cr3t")) {
		t.Error("the secret was on an ssh command line")
	}
	// The committed source, not the working tree.
	if src, err := os.ReadFile(filepath.Join(f.root, "home", "ubuntu", "capilab", "Makefile")); err != nil || string(src) != "# committed\n" {
		t.Errorf("shipped Makefile: %q %v", src, err)
	}
	// The credential merged into the node's clouds.yaml, private.
	data, err := os.ReadFile(filepath.Join(stateDir, "clouds.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct{ Clouds map[string]map[string]any }
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Clouds["lab7-alpha"] == nil || doc.Clouds["lab7"]["auth"].(map[string]any)["application_credential_secret"] != "s3cr3t-of-the-lab" {
		t.Errorf("node clouds.yaml: %s", data)
	}
	for _, p := range []string{filepath.Join(stateDir, "clouds.yaml"), filepath.Join(f.root, "home", "ubuntu", "capilab", "lab.yaml")} {
		if st, err := os.Stat(p); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, %v; want 0600", p, st.Mode().Perm(), err)
		}
	}
	rec, err := n.readRecord()
	if err != nil || rec.ServerID != "srv-1" || rec.Source != commit || rec.Started.IsZero() || rec.Finished.IsZero() {
		t.Errorf("record: %+v %v", rec, err)
	}

	// A failing make create: its exit code and last lines come back.
	mustWrite(t, filepath.Join(f.root, "exit"), "3", 0o644)
	err = n.bootstrap(ctx, "203.0.113.9", commit, cred, time.Minute)
	if err == nil || !strings.Contains(err.Error(), "make create on the node failed: make create exit code 3") || !strings.Contains(err.Error(), "clouds.yaml has the credential") {
		t.Fatalf("failing make create: %v", err)
	}

	// make clean runs on the node when make create ever started there.
	mustWrite(t, filepath.Join(f.root, "exit"), "0", 0o644)
	st, err := ws.ReadState()
	if err != nil {
		t.Fatal(err)
	}
	if err := n.cleanOnNode(ctx, st, "clean"); err != nil {
		t.Fatalf("clean on the node: %v", err)
	}
	if !strings.Contains(logBuf.String(), "node clean: make clean in ") {
		t.Errorf("make clean did not run on the node:\n%s", logBuf.String())
	}
	if rec, _ := n.readRecord(); !rec.Clean {
		t.Error("the record does not say make clean ended well")
	}

	// Other targets run there with this run's settings.
	l.Settings.Cluster, l.Settings.WorkerCount = "beta", 5
	if err := n.Forward(ctx, "create_cluster"); err != nil {
		t.Fatalf("forward create_cluster: %v", err)
	}
	if !strings.Contains(logBuf.String(), "node create_cluster: make create_cluster in ") {
		t.Errorf("create_cluster did not run on the node:\n%s", logBuf.String())
	}
	if labYAML, _ := os.ReadFile(filepath.Join(f.root, "home", "ubuntu", "capilab", "lab.yaml")); !strings.Contains(string(labYAML), "cluster: beta\n") || !strings.Contains(string(labYAML), "worker_count: 5\n") {
		t.Errorf("the node's lab.yaml lacks this run's settings:\n%s", labYAML)
	}
	if err := n.Forward(ctx, "rm -rf /"); err == nil {
		t.Error("an unknown target was started on the node")
	}

	// The management cluster's kubeconfig, server = floating IP.
	kc, err := n.Kubeconfig(ctx)
	if err != nil || !strings.Contains(string(kc), "server: https://203.0.113.9:6443") || !strings.Contains(string(kc), "current-context: lab7-mgmt") {
		t.Fatalf("kubeconfig: %v\n%s", err, kc)
	}
	if _, err := n.WorkloadKubeconfig(ctx, "alpha", "alpha"); err != ErrNoCluster {
		t.Errorf("no workload cluster yet: %v", err)
	}
	mustWrite(t, filepath.Join(f.root, "workload.conf"), "apiVersion: v1\nkind: Config\n", 0o600)
	if wl, err := n.WorkloadKubeconfig(ctx, "alpha", "alpha"); err != nil || string(wl) != "apiVersion: v1\nkind: Config\n" {
		t.Errorf("workload kubeconfig: %q %v", wl, err)
	}

	// make ssh: the login user at the floating IP, with the lab's key and
	// known_hosts; a command's words arrive as they were given.
	var out bytes.Buffer
	n.opts.Stdout = &out
	if err := n.SSH(ctx, "echo", "make ssh reached $(hostname)"); err != nil {
		t.Fatalf("ssh: %v", err)
	}
	if out.String() != "make ssh reached $(hostname)\n" {
		t.Errorf("ssh ran %q", out.String())
	}
	args, _ := os.ReadFile(filepath.Join(f.root, "ssh-args.log"))
	lines := strings.Split(strings.TrimSpace(string(args)), "\n")
	last := lines[len(lines)-1]
	for _, want := range []string{"-i " + n.KeyFile() + " ", "-o UserKnownHostsFile=" + n.knownHosts() + " ", "-o StrictHostKeyChecking=accept-new", " ubuntu@203.0.113.9 "} {
		if !strings.Contains(last, want) {
			t.Errorf("ssh arguments lack %q: %s", want, last)
		}
	}
}

// The node is unreachable: the bootstrap gives up at its bound, saying
// what it waited for and the last error.
func TestBootstrapBounded(t *testing.T) {
	f := newFakeNode(t)
	mustWrite(t, filepath.Join(f.bin, "ssh"), "#!/bin/sh\necho 'ssh: connect to host 203.0.113.9 port 22: No route to host' >&2\nexit 255\n", 0o755)
	repo, commit := gitRepo(t)
	n, err := New(Options{Settings: testSettings(t), StateDir: t.TempDir(), RepoDir: repo, Env: f.env, SSHClient: filepath.Join(f.bin, "ssh"), Poll: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = n.bootstrap(context.Background(), "203.0.113.9", commit, Credential{}, 500*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "timed out after 1s waiting for ssh to ubuntu@203.0.113.9") || !strings.Contains(err.Error(), "No route to host") {
		t.Fatalf("got %v", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("gave up after %s", took)
	}
}
