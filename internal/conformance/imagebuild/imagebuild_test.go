package imagebuild

import "testing"

func TestBuildable(t *testing.T) {
	for ref, want := range map[string]bool{
		"registry.k8s.io/e2e-test-images/agnhost:2.66.1":          true,
		"registry.k8s.io/e2e-test-images/agnhost:2.55":            true,
		"registry.k8s.io/e2e-test-images/busybox:1.37.0-2":        true,
		"registry.k8s.io/e2e-test-images/glibc-dns-testing:2.1.1": true,
		"mirror.example:5000/e2e-test-images/busybox:1.36.1-1":    true,
		"gcr.io/k8s-authenticated-test/agnhost:2.6":               false, // the private-registry test's image
		"registry.k8s.io/e2e-test-images/nginx:1.28.0-2":          false,
		"registry.k8s.io/pause:3.10.2":                            false,
		"invalid.registry.k8s.io/invalid/alpine:3.1":              false,
		"registry.k8s.io/e2e-test-images/agnhost@sha256:0123abcd": true,
	} {
		if got := Buildable(ref); got != want {
			t.Errorf("Buildable(%s) = %t, want %t", ref, got, want)
		}
	}
}

func TestK8sLDFlags(t *testing.T) {
	f := k8sLDFlags("v1.2.3")
	want := map[string]bool{
		"-X k8s.io/component-base/version.gitVersion=v1.2.3": true,
		"-X k8s.io/component-base/version.gitMinor=2":        true,
		"-X k8s.io/client-go/pkg/version.gitVersion=v1.2.3":  true,
	}
	for _, x := range f {
		delete(want, x)
	}
	if len(want) > 0 {
		t.Errorf("missing %v in %v", want, f)
	}
}
