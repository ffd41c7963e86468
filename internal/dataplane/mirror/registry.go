package mirror

import (
	"fmt"

	"github.com/capilab/capilab/internal/modbuild"
)

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
