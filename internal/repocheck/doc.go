// Package repocheck holds tests over the repository itself: no pinned
// version spelled outside manifests/versions.yaml, README tables generated
// from the settings model and the Makefile, every make target backed by a
// documented Mage target. Run `go test ./internal/repocheck -update` to
// regenerate the README tables.
package repocheck
