// Package manifests embeds the files under manifests/ (the pinned-versions
// file, templates, addon manifests) so every binary and test reads the same
// bytes that are committed.
package manifests

import "embed"

// Versions is the raw content of versions.yaml, the one pinned-versions file.
//
//go:embed versions.yaml
var Versions []byte

// FS holds every embedded manifest, for templates and addons.
//
//go:embed versions.yaml
var FS embed.FS
