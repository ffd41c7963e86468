// Package modbuild builds the programs capilab runs from their Go modules at
// pinned versions, and assembles container images from them without a
// registry, so a machine that reaches only the Go module proxy can run real
// Cluster API controllers, CAPO, sonobuoy and the rest.
//
// # Programs
//
// A Program names a main (or test) package inside a module at a version.
// Build goes step by step:
//
//  1. The cache key is a sha256 over everything that decides the binary:
//     module, version, package, go.mod edits, build flags, the Go toolchain
//     and target platform; for a package of capilab's own module, the
//     contents of every file of its packages in this module and the versions
//     of the modules it imports. A binary with that key in the cache is the
//     answer: a warm Build is one stat.
//  2. Otherwise the module is downloaded (`go mod download -json`) and copied
//     out of the read-only module cache into a writable work tree, where the
//     edits apply: dropping a requirement the proxy does not serve (CAPO
//     requires sigs.k8s.io/cluster-api/test, which only its tests use),
//     placing a nested module where a `replace … => ./dir` expects it
//     (cluster-api's ./api), or a synthetic module that requires another
//     one (Kubernetes' e2e.test, with its staging modules replaced by their
//     published versions).
//  3. `go build` (or `go test -c`) runs with CGO_ENABLED=0, -trimpath and
//     stripped symbols, logging a line every 30 s while it runs. The binary
//     is written under a temporary name and renamed into place, so a killed
//     build never leaves a half binary under a valid key. A file lock per
//     key lets concurrent callers (parallel tests, two targets) build once.
//
// # Images
//
// An Image lists files and the image config (entrypoint, user, env,
// labels). EnsureImage computes a key over all of it, compares it with the
// dev.capilab.cache-key label of the existing image of that reference and
// does nothing when they agree. Otherwise it streams a tar of the files
// (plus a minimal base: CA certificates, passwd/group with the nonroot
// user 65532, /tmp) into `docker import`, or, when the image starts FROM a
// base image, a build context into `docker build`. The reference is the
// upstream name (registry.k8s.io/cluster-api/cluster-api-controller:<version>),
// so manifests work unchanged and a registry mirror can serve it under
// that name; the cache-key label marks every image capilab built.
package modbuild
