package remote

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/capilab/capilab/internal/wait"
)

func testSetup() NodeSetup {
	return NodeSetup{
		Prefix: "lab7", User: "ubuntu", Go: "go1.2.3",
		GoSHA256: map[string]string{"amd64": strings.Repeat("a", 64), "arm64": strings.Repeat("b", 64)},
		GoProxy:  "https://proxy.example/go,direct",
	}
}

func TestUserData(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(*NodeSetup)
		check func(t *testing.T, doc map[string]any, text string)
	}{
		{"plain", func(*NodeSetup) {}, func(t *testing.T, doc map[string]any, text string) {
			if doc["apt"] != nil {
				t.Error("apt proxy set without http_proxy")
			}
			files := doc["write_files"].([]any)
			paths := map[string]map[string]any{}
			for _, f := range files {
				m := f.(map[string]any)
				paths[m["path"].(string)] = m
			}
			script := paths[nodeBootstrap]
			if script == nil || script["content"] != bootstrapScript || script["permissions"] != "0755" {
				t.Errorf("capilab-bootstrap not written as it is, executable: %v", script)
			}
			env := paths[nodeEnvFile]["content"].(string)
			for _, want := range []string{"CAPILAB_USER=ubuntu\n", "CAPILAB_GO=go1.2.3\n", "CAPILAB_STATE=/home/ubuntu/capilab-state\n",
				"CAPILAB_GO_SHA256_amd64=" + strings.Repeat("a", 64) + "\n", "GOPROXY=https://proxy.example/go,direct\n", "CAPILAB_DOCKER_MTU=0\n"} {
				if !strings.Contains(env, want) {
					t.Errorf("bootstrap.env lacks %q:\n%s", want, env)
				}
			}
			if strings.Contains(env, "http_proxy") {
				t.Error("proxy variables without http_proxy")
			}
			run := doc["runcmd"].([]any)
			if len(run) != 1 || run[0].([]any)[0] != nodeBootstrap || run[0].([]any)[1] != "prepare" {
				t.Errorf("runcmd = %v", run)
			}
		}},
		{"proxy with credentials, MTU", func(s *NodeSetup) {
			s.HTTPProxy, s.NoProxy, s.DockerMTU = "http://u:p@proxy:3128", "localhost,10.0.0.0/8", 1400
		}, func(t *testing.T, doc map[string]any, text string) {
			apt := doc["apt"].(map[string]any)
			if apt["http_proxy"] != "http://u:p@proxy:3128" {
				t.Errorf("apt = %v", apt)
			}
			for _, want := range []string{"CAPILAB_DOCKER_MTU=1400", "https_proxy=http://u:p@proxy:3128", "no_proxy=localhost,10.0.0.0/8", `Environment="NO_PROXY=localhost,10.0.0.0/8"`} {
				if !strings.Contains(text, want) {
					t.Errorf("user data lacks %q", want)
				}
			}
		}},
		{"a value that needs shell quoting stays one word", func(s *NodeSetup) { s.GoProxy = "https://p.example/a b;rm -rf /" }, func(t *testing.T, doc map[string]any, text string) {
			if !strings.Contains(text, `GOPROXY='https://p.example/a b;rm -rf /'`) {
				t.Errorf("GOPROXY not quoted:\n%s", text)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := testSetup()
			tt.edit(&s)
			text, err := s.UserData()
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(text, "#cloud-config\n") {
				t.Fatalf("user data does not start with #cloud-config:\n%s", text)
			}
			var doc map[string]any
			if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
				t.Fatal(err)
			}
			tt.check(t, doc, text)
		})
	}
}

func TestUserDataRefusesIncompleteSetup(t *testing.T) {
	for name, edit := range map[string]func(*NodeSetup){
		"no user":            func(s *NodeSetup) { s.User = "" },
		"user with a slash":  func(s *NodeSetup) { s.User = "../root" },
		"no arm64 checksum":  func(s *NodeSetup) { delete(s.GoSHA256, "arm64") },
		"no toolchain named": func(s *NodeSetup) { s.Go = "" },
	} {
		t.Run(name, func(t *testing.T) {
			s := testSetup()
			s.GoSHA256 = map[string]string{"amd64": "a", "arm64": "b"}
			edit(&s)
			if _, err := s.UserData(); err == nil {
				t.Fatal("no error")
			}
		})
	}
}

// TestBootstrapJobs runs capilab-bootstrap's start/status protocol the way
// capilab drives it over ssh, with a stand-in for make: a job runs
// detached, its log grows, its status ends ok or failed with the exit code,
// and a job is not started before the node is prepared.
func TestBootstrapJobs(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Fatal("bash is needed to test capilab-bootstrap")
	}
	dir := t.TempDir()
	lib, src, bin := filepath.Join(dir, "lib"), filepath.Join(dir, "src"), filepath.Join(dir, "bin")
	for _, d := range []string{lib, src, bin} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	script := filepath.Join(bin, "capilab-bootstrap")
	env := filepath.Join(dir, "bootstrap.env")
	mustWrite(t, script, bootstrapScript, 0o755)
	mustWrite(t, env, testSetup().bootstrapEnv(), 0o644)
	// make: prints its target and the environment it got, exits with $MAKE_EXIT.
	mustWrite(t, filepath.Join(bin, "make"), "#!/bin/sh\necho \"make $1 in $(pwd) cloud=$OS_CLIENT_CONFIG_FILE toolchain=$GOTOOLCHAIN\"\necho second line\nexit $(cat "+filepath.Join(dir, "exit")+")\n", 0o755)
	run := func(args ...string) (string, error) {
		cmd := exec.Command(script, args...)
		cmd.Env = append(os.Environ(), "CAPILAB_BOOTSTRAP_ENV="+env, "CAPILAB_LIB="+lib, "CAPILAB_SRC="+src, "PATH="+bin+":"+os.Getenv("PATH"))
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	status := func(job string) progress {
		out, err := run("status", job, "0")
		if err != nil {
			t.Fatalf("status: %v: %s", err, out)
		}
		p, err := parseProgress([]byte("cloud-init=done\n" + out))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	if p := status("create"); p.Status != "not-started" || p.Size != 0 {
		t.Fatalf("before anything: %+v", p)
	}
	if out, err := run("start", "create"); err == nil || !strings.Contains(out, "not prepared") {
		t.Fatalf("start before prepare: %v %s", err, out)
	}
	mustWrite(t, filepath.Join(lib, "prepare.status"), "ok\n", 0o644)
	if out, err := run("start", "bogus"); err == nil {
		t.Fatalf("start bogus: no error: %s", out)
	}
	for _, tc := range []struct {
		exit int
		want string
	}{{0, "ok"}, {3, "failed: make create exit code 3"}} {
		mustWrite(t, filepath.Join(dir, "exit"), strconv.Itoa(tc.exit), 0o644)
		if out, err := run("start", "create"); err != nil {
			t.Fatalf("start: %v: %s", err, out)
		}
		var p progress
		err := wait.For(context.Background(), discardLog(), wait.Spec{What: "the job to end", Timeout: 2 * time.Minute, Interval: 50 * time.Millisecond},
			func(context.Context) (bool, string, error) {
				p = status("create")
				return p.Status != "running", p.Status, nil
			})
		if err != nil {
			t.Fatal(err)
		}
		if p.Status != tc.want {
			t.Fatalf("status %q, want %q; log:\n%s", p.Status, tc.want, p.Log)
		}
		log := string(p.Log)
		for _, want := range []string{"make create in " + src + " cloud=/home/ubuntu/capilab-state/clouds.yaml toolchain=local", "second line", "with exit code " + strconv.Itoa(tc.exit)} {
			if !strings.Contains(log, want) {
				t.Errorf("log lacks %q:\n%s", want, log)
			}
		}
		if int64(len(log)) != p.Size {
			t.Errorf("size %d, log has %d bytes", p.Size, len(log))
		}
		// From an offset, only the rest comes back.
		out, err := run("status", "create", strconv.FormatInt(p.Size-12, 10))
		if err != nil {
			t.Fatal(err)
		}
		if _, rest, _ := strings.Cut(out, "\n"); len(rest) != 12 || !strings.HasSuffix(log, rest) {
			t.Errorf("status from offset %d gave %q", p.Size-12, rest)
		}
	}
}

func mustWrite(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

func TestParseProgress(t *testing.T) {
	tests := []struct {
		in      string
		want    progress
		wantErr bool
	}{
		{"cloud-init=running\n0 not-written\n", progress{CloudInit: "running", Status: "not-written", Log: []byte{}}, false},
		{"cloud-init=done\n17 failed: line 3 (exit 1)\nsome log\nmore", progress{CloudInit: "done", Size: 17, Status: "failed: line 3 (exit 1)", Log: []byte("some log\nmore")}, false},
		{"cloud-init=\n5 running\nabcde", progress{CloudInit: "", Size: 5, Status: "running", Log: []byte("abcde")}, false},
		{"Permission denied\n", progress{}, true},
		{"cloud-init=done\nnot a number\n", progress{}, true},
	}
	for _, tt := range tests {
		got, err := parseProgress([]byte(tt.in))
		if (err != nil) != tt.wantErr {
			t.Errorf("%q: err %v", tt.in, err)
			continue
		}
		if err == nil && (got.CloudInit != tt.want.CloudInit || got.Size != tt.want.Size || got.Status != tt.want.Status || string(got.Log) != string(tt.want.Log)) {
			t.Errorf("%q: got %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

// capilab-bootstrap accepts exactly the targets capilab runs on the node.
func TestNodeTargetsMatchTheScript(t *testing.T) {
	m := regexp.MustCompile(`case \$target in ([^)]*)\)`).FindStringSubmatch(bootstrapScript)
	if m == nil {
		t.Fatal("no target list in capilab-bootstrap")
	}
	var script []string
	for _, f := range strings.Split(m[1], "|") {
		script = append(script, strings.TrimSpace(f))
	}
	if !reflect.DeepEqual(script, NodeTargets) {
		t.Fatalf("capilab-bootstrap accepts %q, capilab runs %q", script, NodeTargets)
	}
}
