package labnode

import (
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// Bootstrap data is a jinja template: nothing the patch adds may contain
// jinja syntax.
func TestNoJinjaSyntax(t *testing.T) {
	mirrors := map[string]string{"registry.k8s.io": "http://172.24.4.1:5001/registry.k8s.io"}
	var all []string
	all = append(all, PreKubeadmCommands(mirrors)...)
	all = append(all, CNICommands("10.244.0.0/16", NodeIPCommand+":6443")...)
	files, err := Files(mirrors)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		all = append(all, f.Content)
	}
	all = append(all, KubeletArgsYAML(KubeletExtraArgs, 2))
	for _, s := range all {
		for _, tok := range []string{"{{", "{%", "{#"} {
			if strings.Contains(s, tok) {
				t.Errorf("%q contains jinja syntax %q", s, tok)
			}
		}
	}
	if PreKubeadmCommands(nil) != nil {
		t.Error("no mirrors: no commands")
	}
}

func TestKubeletArgsYAML(t *testing.T) {
	var got []struct{ Name, Value string }
	if err := yaml.Unmarshal([]byte(KubeletArgsYAML(KubeletExtraArgs, 2)), &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(KubeletExtraArgs) || got[0].Name != "fail-cgroupv1" || got[0].Value != "false" ||
		got[5].Value != "nodefs.available<0%,nodefs.inodesFree<0%,imagefs.available<0%" {
		t.Errorf("round trip: %+v", got)
	}
}
