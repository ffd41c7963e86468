//go:build pins

// Package pins keeps every mission library in go.mod at its pinned version
// (the versions the Go module proxy serves and that build together) before
// the capability that uses it lands, so
// `go mod tidy` cannot drop one and a later `go get` cannot move the set.
// The build tag keeps it out of every build; tidy still sees the imports.
// Remove an import here once real code imports that library.
package pins

import (
	_ "github.com/gophercloud/gophercloud/v2/openstack"
	_ "github.com/vmware-tanzu/sonobuoy/pkg/client"
	_ "k8s.io/client-go/kubernetes"
	_ "sigs.k8s.io/cluster-api-provider-openstack/api/v1beta1"
	_ "sigs.k8s.io/cluster-api/api/core/v1beta2"
	_ "sigs.k8s.io/cluster-api/cmd/clusterctl/client"
	_ "sigs.k8s.io/controller-runtime/pkg/client"
	_ "sigs.k8s.io/e2e-framework/pkg/env"
	_ "sigs.k8s.io/kind/pkg/cluster"
)
