package cloudinit

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/blang/semver/v4"
	bootstrapv1 "sigs.k8s.io/cluster-api/api/bootstrap/kubeadm/v1beta2"
	capicloudinit "sigs.k8s.io/cluster-api/bootstrap/kubeadm/pkg/cloudinit"
	"sigs.k8s.io/cluster-api/util/secret"
)

var instance = InstanceData{
	InstanceID:       "6e0a9c4e-1b7f-4d52-9a55-0d3f1c2b9e10",
	Name:             "cluster-a-control-plane-x7k2p",
	Hostname:         "cluster-a-control-plane-x7k2p",
	AvailabilityZone: "nova",
	Region:           "RegionOne",
	ProjectID:        "7eb08f7c6d7844c2bd59b49ac416074d",
	Meta:             map[string]string{"role": "control-plane"},
}

func TestRender(t *testing.T) {
	vars := instance.Vars()
	tests := []struct {
		name, in, want, err string
	}{
		{"plain text", "no template here { } {x}", "no template here { } {x}", ""},
		{"top-level", "name: '{{ local_hostname }}'", "name: 'cluster-a-control-plane-x7k2p'", ""},
		{"capo provider id", "provider-id: openstack:///'{{ instance_id }}'", "provider-id: openstack:///'6e0a9c4e-1b7f-4d52-9a55-0d3f1c2b9e10'", ""},
		{"v1", "{{v1.instance_id}} {{ v1.availability_zone }} {{ v1.region }}", "6e0a9c4e-1b7f-4d52-9a55-0d3f1c2b9e10 nova RegionOne", ""},
		{"ds.meta_data", "{{ ds.meta_data.uuid }}/{{ ds.meta_data.name }}/{{ ds.meta_data.launch_index }}", "6e0a9c4e-1b7f-4d52-9a55-0d3f1c2b9e10/cluster-a-control-plane-x7k2p/0", ""},
		{"subscript", `{{ ds['meta_data']["meta"]['role'] }}`, "control-plane", ""},
		{"hyphenated key", "{{ v1['local-hostname'] }}", "cluster-a-control-plane-x7k2p", ""},
		{"string literal", "a {{ '{{' }} b", "a {{ b", ""},
		{"comment", "a{# ignore me #}b", "ab", ""},
		{"whitespace control", "a  \n{{- ' b' -}}  \n c", "a bc", ""},
		{"raw", "{% raw %}{{ not_rendered }}{% endraw %} {{ instance_id }}", "{{ not_rendered }} 6e0a9c4e-1b7f-4d52-9a55-0d3f1c2b9e10", ""},
		{"undefined", "x\n{{ nope }}", "", "line 2: {{ nope }}: undefined variable nope"},
		{"undefined nested", "{{ ds.meta_data.nope }}", "", "undefined variable ds.meta_data.nope"},
		{"filter", "{{ local_hostname | upper }}", "", "no filters"},
		{"statement", "{% if x %}y{% endif %}", "", "jinja statements are not supported"},
		{"unterminated", "{{ instance_id", "", `"{{" without "}}"`},
		{"mapping", "{{ v1 }}", "", "not a value to print"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Render(tt.in, vars)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func gzipB64(s string) string {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(s))
	w.Close()
	return base64.StdEncoding.EncodeToString(b.Bytes())
}

// capiBase is the KubeadmConfigSpec part every fixture shares, shaped like
// CAPO's templates: jinja in a kubeadm config, files in every encoding,
// boot commands, and modules devcloud ignores.
func capiBase() capicloudinit.BaseUserData {
	return capicloudinit.BaseUserData{
		BootCommands:        []string{"echo boot >> /var/log/boots"},
		PreKubeadmCommands:  []string{"echo pre", "hostnamectl set-hostname '{{ ds.meta_data.hostname }}'"},
		PostKubeadmCommands: []string{"echo post"},
		AdditionalFiles: []bootstrapv1.File{
			{Path: "/etc/plain.conf", Content: "plain {{ local_hostname }}\n", Owner: "root:root", Permissions: "0600"},
			{Path: "/etc/b64.conf", Content: base64.StdEncoding.EncodeToString([]byte("decoded b64\n")), Encoding: bootstrapv1.Base64},
			{Path: "/etc/gz.conf", Content: gzipB64("decoded gzip\n"), Encoding: bootstrapv1.Gzip + "+" + bootstrapv1.Base64},
			{Path: "/etc/appended.conf", Content: "more\n", Append: ptr(true)},
		},
		Users:             []bootstrapv1.User{{Name: "capi"}},
		NTP:               &bootstrapv1.NTP{Servers: []string{"ntp.example"}, Enabled: ptr(true)},
		KubeadmVerbosity:  "--v=5",
		KubernetesVersion: semver.MustParse("1.37.2"),
	}
}

func ptr[T any](v T) *T { return &v }

const kubeletArgs = `nodeRegistration:
  name: '{{ local_hostname }}'
  kubeletExtraArgs:
  - name: provider-id
    value: openstack:///'{{ instance_id }}'
`

func capiFixtures(t *testing.T) map[string][]byte {
	t.Helper()
	cc := &bootstrapv1.ClusterConfiguration{}
	certs := secret.NewCertificatesForInitialControlPlane(cc)
	if err := certs.Generate(); err != nil {
		t.Fatal(err)
	}
	init, err := capicloudinit.NewInitControlPlane(&capicloudinit.ControlPlaneInput{
		BaseUserData:         capiBase(),
		Certificates:         certs,
		ClusterConfiguration: "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n",
		InitConfiguration:    "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\n" + kubeletArgs,
	})
	if err != nil {
		t.Fatal(err)
	}
	join, err := capicloudinit.NewJoinControlPlane(&capicloudinit.ControlPlaneJoinInput{
		BaseUserData:      capiBase(),
		Certificates:      certs, // what KCP reads back from the cluster's secrets
		JoinConfiguration: "apiVersion: kubeadm.k8s.io/v1beta4\nkind: JoinConfiguration\n" + kubeletArgs,
	})
	if err != nil {
		t.Fatal(err)
	}
	node, err := capicloudinit.NewNode(&capicloudinit.NodeInput{
		BaseUserData:      capiBase(),
		JoinConfiguration: "apiVersion: kubeadm.k8s.io/v1beta4\nkind: JoinConfiguration\n" + kubeletArgs,
	})
	if err != nil {
		t.Fatal(err)
	}
	return map[string][]byte{"init": init, "join-control-plane": join, "worker": node}
}

// Bootstrap data made by Cluster API's own code at the pinned version.
func TestParseCAPIBootstrapData(t *testing.T) {
	fx := capiFixtures(t)
	tests := []struct {
		kind       string
		kubeadm    string // the kubeadm config file
		kubeadmCmd string
		certs      bool
	}{
		{"init", "/run/kubeadm/kubeadm.yaml", "kubeadm init --config /run/kubeadm/kubeadm.yaml --v=5 && echo success > /run/cluster-api/bootstrap-success.complete", true},
		{"join-control-plane", "/run/kubeadm/kubeadm-join-config.yaml", "kubeadm join --config /run/kubeadm/kubeadm-join-config.yaml --v=5 && echo success > /run/cluster-api/bootstrap-success.complete", true},
		{"worker", "/run/kubeadm/kubeadm-join-config.yaml", "kubeadm join --config /run/kubeadm/kubeadm-join-config.yaml --v=5 && echo success > /run/cluster-api/bootstrap-success.complete", false},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			ud := fx[tt.kind]
			if !bytes.HasPrefix(ud, []byte(Header+"\n#cloud-config")) {
				t.Fatalf("fixture does not start with the jinja header: %.60q", ud)
			}
			cfg, err := Parse(ud, instance)
			if err != nil {
				t.Fatal(err)
			}
			files := map[string]File{}
			for _, f := range cfg.WriteFiles {
				files[f.Path] = f
			}
			k, ok := files[tt.kubeadm]
			if !ok {
				t.Fatalf("no %s among %v", tt.kubeadm, keysOf(files))
			}
			if !strings.Contains(string(k.Content), "name: 'cluster-a-control-plane-x7k2p'") ||
				!strings.Contains(string(k.Content), "value: openstack:///'6e0a9c4e-1b7f-4d52-9a55-0d3f1c2b9e10'") {
				t.Errorf("%s not rendered from the instance data:\n%s", tt.kubeadm, k.Content)
			}
			if k.Permissions != 0o640 || k.Owner != "root:root" {
				t.Errorf("%s: permissions %o owner %s", tt.kubeadm, k.Permissions, k.Owner)
			}
			if _, ok := files["/run/cluster-api/placeholder"]; !ok {
				t.Error("no /run/cluster-api/placeholder")
			}
			if ca, ok := files["/etc/kubernetes/pki/ca.key"]; ok != tt.certs {
				t.Errorf("CA key present = %t, want %t", ok, tt.certs)
			} else if ok && (ca.Permissions != 0o600 || !strings.Contains(string(ca.Content), "PRIVATE KEY")) {
				t.Errorf("ca.key: permissions %o, content %.40q", ca.Permissions, ca.Content)
			}
			for path, want := range map[string]string{
				"/etc/plain.conf": "plain cluster-a-control-plane-x7k2p\n", "/etc/b64.conf": "decoded b64\n",
				"/etc/gz.conf": "decoded gzip\n", "/etc/appended.conf": "more\n",
			} {
				if string(files[path].Content) != want {
					t.Errorf("%s = %q, want %q", path, files[path].Content, want)
				}
			}
			if !files["/etc/appended.conf"].Append || files["/etc/plain.conf"].Permissions != 0o600 || files["/etc/b64.conf"].Permissions != 0o644 {
				t.Errorf("append/permissions lost: %+v", files)
			}
			wantRun := []string{"echo pre", "hostnamectl set-hostname 'cluster-a-control-plane-x7k2p'", tt.kubeadmCmd, "echo post"}
			if !slices.Equal(cfg.RunCmd, wantRun) {
				t.Errorf("runcmd\n%q\nwant\n%q", cfg.RunCmd, wantRun)
			}
			if !slices.Equal(cfg.BootCmd, []string{"echo boot >> /var/log/boots"}) {
				t.Errorf("bootcmd %q", cfg.BootCmd)
			}
			if !slices.Equal(cfg.Ignored, []string{"ntp", "users"}) {
				t.Errorf("ignored %v, want ntp and users", cfg.Ignored)
			}
		})
	}
}

func keysOf[V any](m map[string]V) []string { return sortedKeys(m) }

func TestParse(t *testing.T) {
	tests := []struct {
		name, userData string
		check          func(t *testing.T, c *Config)
		err            string
	}{
		{name: "script", userData: "#!/bin/bash\necho hi\n", check: func(t *testing.T, c *Config) {
			if string(c.Script) != "#!/bin/bash\necho hi\n" {
				t.Errorf("script %q", c.Script)
			}
		}},
		{name: "jinja script", userData: Header + "\n#!/bin/sh\necho {{ instance_id }}\n", check: func(t *testing.T, c *Config) {
			if string(c.Script) != "#!/bin/sh\necho "+instance.InstanceID+"\n" {
				t.Errorf("script %q", c.Script)
			}
		}},
		{name: "empty", userData: "", check: func(t *testing.T, c *Config) {
			if len(c.RunCmd)+len(c.WriteFiles)+len(c.Script) != 0 {
				t.Errorf("%+v", c)
			}
		}},
		{name: "list commands are quoted", userData: "#cloud-config\nruncmd:\n- [echo, \"it's\", 'a b']\n- echo $HOME\n", check: func(t *testing.T, c *Config) {
			want := []string{`'echo' 'it'\''s' 'a b'`, "echo $HOME"}
			if !slices.Equal(c.RunCmd, want) {
				t.Errorf("%q, want %q", c.RunCmd, want)
			}
		}},
		{name: "octal permissions", userData: "#cloud-config\nwrite_files:\n- {path: /a, permissions: 0755}\n- {path: /b, permissions: '0o700'}\n- {path: /c, permissions: 420}\n- {path: /d}\n", check: func(t *testing.T, c *Config) {
			got := []uint32{c.WriteFiles[0].Permissions, c.WriteFiles[1].Permissions, c.WriteFiles[2].Permissions, c.WriteFiles[3].Permissions}
			if !slices.Equal(got, []uint32{0o755, 0o700, 0o644, 0o644}) {
				t.Errorf("%o", got)
			}
		}},
		{name: "gzip user data", userData: func() string {
			var b bytes.Buffer
			w := gzip.NewWriter(&b)
			w.Write([]byte("#cloud-config\nruncmd: [echo zipped]\n"))
			w.Close()
			return b.String()
		}(), check: func(t *testing.T, c *Config) {
			if !slices.Equal(c.RunCmd, []string{"echo zipped"}) {
				t.Errorf("%q", c.RunCmd)
			}
		}},
		{name: "relative path", userData: "#cloud-config\nwrite_files:\n- path: etc/x\n", err: "path must be absolute"},
		{name: "bad encoding", userData: "#cloud-config\nwrite_files:\n- {path: /x, encoding: rot13, content: a}\n", err: `unknown encoding "rot13"`},
		{name: "bad base64", userData: "#cloud-config\nwrite_files:\n- {path: /x, encoding: b64, content: '%%%'}\n", err: "encoding b64"},
		{name: "source", userData: "#cloud-config\nwrite_files:\n- {path: /x, source: {uri: 'http://x'}}\n", err: "source is not supported"},
		{name: "runcmd not a list", userData: "#cloud-config\nruncmd: echo\n", err: "a list of commands expected"},
		{name: "mime", userData: "Content-Type: multipart/mixed; boundary=x\n", err: "multi-part MIME is not supported"},
		{name: "unknown format", userData: "hello\n", err: "neither #cloud-config nor a #! script"},
		{name: "undefined jinja", userData: Header + "\n#cloud-config\nruncmd: ['{{ nope }}']\n", err: "undefined variable nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.userData), instance)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

// The generated program, run for real by /bin/sh in a temporary directory:
// files land with their modes and owners, append appends, bootcmd runs on
// every boot, everything else once per instance, and a failing stage is
// reported while the later ones still run (as cloud-init does).
func TestProgramRuns(t *testing.T) {
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	grp, err := user.LookupGroupId(me.Gid)
	if err != nil {
		t.Fatal(err)
	}
	owner := me.Username + ":" + grp.Name
	tmp := t.TempDir()
	out := filepath.Join(tmp, "out")
	if err := os.WriteFile(filepath.Join(tmp, "appended"), []byte("first\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ud := fmt.Sprintf(`#cloud-config
bootcmd:
- echo boot >> %[1]s/boots
write_files:
- path: %[1]s/out/a/b/secret
  permissions: '0600'
  owner: %[2]s
  content: |
    s3cret
- path: %[1]s/appended
  append: true
  content: "second\n"
- path: %[1]s/out/late
  defer: true
  content: late
runcmd:
- echo ran >> %[1]s/runs
- [sh, -c, "cat %[1]s/out/late > %[1]s/saw-late"]
users: [default]
`, tmp, owner)
	cfg, err := Parse([]byte(ud), instance)
	if err != nil {
		t.Fatal(err)
	}
	state, boot := filepath.Join(tmp, "state"), filepath.Join(tmp, "boot")
	prog, err := cfg.ProgramAt(instance.InstanceID, state, boot)
	if err != nil {
		t.Fatal(err)
	}
	for name, f := range prog.Files {
		p := filepath.Join(prog.Dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, f.Data, os.FileMode(f.Mode)); err != nil {
			t.Fatal(err)
		}
	}
	run := func() {
		t.Helper()
		cmd := exec.Command("/bin/sh", prog.Entry())
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("run.sh: %v: %s", err, b)
		}
	}
	read := func(p string) string {
		b, _ := os.ReadFile(p)
		return string(b)
	}
	run()
	run()                                      // same boot: nothing again
	if err := os.RemoveAll(boot); err != nil { // a restart empties /run
		t.Fatal(err)
	}
	run()
	if got := read(filepath.Join(tmp, "boots")); got != "boot\nboot\n" {
		t.Errorf("bootcmd ran %q, want once per boot (2 boots)", got)
	}
	if got := read(filepath.Join(tmp, "runs")); got != "ran\n" {
		t.Errorf("runcmd ran %q, want once", got)
	}
	if got := read(filepath.Join(tmp, "appended")); got != "first\nsecond\n" {
		t.Errorf("appended file %q", got)
	}
	if got := read(filepath.Join(tmp, "saw-late")); got != "late" {
		t.Errorf("deferred file not written before runcmd: %q", got)
	}
	fi, err := os.Stat(filepath.Join(out, "a", "b", "secret"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 || read(filepath.Join(out, "a", "b", "secret")) != "s3cret\n" {
		t.Errorf("secret: mode %v content %q", fi.Mode(), read(filepath.Join(out, "a", "b", "secret")))
	}
	if got := strings.TrimSpace(read(prog.StatusFile())); got != StatusDone {
		t.Errorf("status %q, want %q; output:\n%s", got, StatusDone, read(prog.OutputFile()))
	}

	// A failing stage: reported, later stages still run.
	failing, err := Parse([]byte("#cloud-config\nwrite_files:\n- {path: /proc/no/such/dir/x, content: a}\nruncmd:\n- echo after >> "+tmp+"/after\n- exit 3\n"), instance)
	if err != nil {
		t.Fatal(err)
	}
	prog2, err := failing.ProgramAt("other-instance", state, filepath.Join(tmp, "boot2"))
	if err != nil {
		t.Fatal(err)
	}
	for name, f := range prog2.Files {
		p := filepath.Join(prog2.Dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, f.Data, os.FileMode(f.Mode))
	}
	if b, err := exec.Command("/bin/sh", prog2.Entry()).CombinedOutput(); err != nil {
		t.Fatalf("run.sh: %v: %s", err, b)
	}
	if got := strings.TrimSpace(read(prog2.StatusFile())); got != "failed: write_files runcmd" {
		t.Errorf("status %q, want the failed stages; output:\n%s", got, read(prog2.OutputFile()))
	}
	if read(filepath.Join(tmp, "after")) != "after\n" {
		t.Error("runcmd did not run after write_files failed")
	}
}

func TestProgramRejectsOddInstanceIDs(t *testing.T) {
	if _, err := (&Config{}).Program("../etc"); err == nil {
		t.Error("an instance id with a path separator must be refused")
	}
}
