module github.com/capilab/capilab

go 1.26.4

require (
	github.com/gophercloud/gophercloud/v2 v2.15.0
	github.com/magefile/mage v1.17.2
	github.com/vmware-tanzu/sonobuoy v0.57.5
	go.yaml.in/yaml/v3 v3.0.4
	golang.org/x/mod v0.38.0
	k8s.io/client-go v0.37.2
	sigs.k8s.io/cluster-api v1.14.2
	sigs.k8s.io/cluster-api/api v1.14.2
	sigs.k8s.io/cluster-api-provider-openstack v0.14.7
	sigs.k8s.io/controller-runtime v0.25.2
	sigs.k8s.io/e2e-framework v0.7.0
	sigs.k8s.io/kind v0.33.0
)

// CAPO v0.14.7 requires cluster-api/test v1.12.10, which the module proxy does
// not serve; without this, `go list -m all` fails (../shared/notes/go-deps.md).
exclude sigs.k8s.io/cluster-api/test v1.12.10
