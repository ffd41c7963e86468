package mirror

import (
	"fmt"

	"github.com/capilab/capilab/internal/modbuild"
)

// DevcloudRegistry is devcloud's registry mirror as the host (and its
// Docker engine) reaches it. Containers reach it at the gateway of the
// external network, port 5001 (the data plane forwards it).
const DevcloudRegistry = "127.0.0.1:5001"

// DevcloudMirrors is the registry_mirrors value for a lab on devcloud:
// every DefaultRegistries registry through the mirror at gateway (the
// gateway of devcloud's external network, e.g. 172.24.4.1).
func DevcloudMirrors(gateway string) map[string]string {
	return Namespaced("http://"+gateway+":5001", DefaultRegistries...)
}

// RegistryModule is the module devcloud's registry mirror is built from.
const RegistryModule = "github.com/distribution/distribution/v3"

// RegistryProgram is the registry at version (versions.yaml devcloud.registry).
func RegistryProgram(version string) modbuild.Program {
	return modbuild.Program{Name: "registry", Module: RegistryModule, Version: version, Package: "./cmd/registry"}
}

// RegistryConfig is the registry's configuration: listen on addr (devcloud:
// loopback only; containers reach it through the data plane's forwarder),
// store under root, allow deletes (so pruning works), no tracing exporter.
func RegistryConfig(addr, root string) string {
	return fmt.Sprintf(`# Written by devcloud.sh: devcloud's registry mirror.
version: 0.1
log:
  level: info
  formatter: text
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: %s
  headers:
    X-Content-Type-Options: [nosniff]
`, root, addr)
}
