// Package state is the lab's local state directory (setting state_dir):
// which clusters the lab made, their credentials and config files. Files
// that hold secrets are written 0600 in 0700 directories, atomically (write
// to a temporary file, then rename), so an interrupted run never leaves a
// half-written credential.
//
//	<state_dir>/clouds.yaml                    clouds.yaml entries of the lab's application credentials
//	<state_dir>/clusters/<cluster>/            one directory per cluster the lab made (its record)
//	<state_dir>/clusters/<cluster>/cloud.conf  OCCM / Cinder CSI configuration
package state

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"syscall"

	"github.com/capilab/capilab/internal/fsutil"
)

// Dir is the root of a lab's state.
type Dir string

// CloudsFile is the clouds.yaml holding the lab's credentials.
func (d Dir) CloudsFile() string { return filepath.Join(string(d), "clouds.yaml") }

// ClusterDir is the directory recording one cluster.
func (d Dir) ClusterDir(cluster string) string { return filepath.Join(string(d), "clusters", cluster) }

// CloudConf is the cloud.conf of a cluster's OCCM and Cinder CSI.
func (d Dir) CloudConf(cluster string) string {
	return filepath.Join(d.ClusterDir(cluster), "cloud.conf")
}

// RecordCluster records that the lab made a cluster (idempotent).
func (d Dir) RecordCluster(cluster string) error {
	if err := os.MkdirAll(d.ClusterDir(cluster), 0o700); err != nil {
		return fmt.Errorf("state %s: recording cluster %s: %w", d, cluster, err)
	}
	return nil
}

// ForgetCluster removes a cluster's record and files.
func (d Dir) ForgetCluster(cluster string) error {
	if err := os.RemoveAll(d.ClusterDir(cluster)); err != nil {
		return fmt.Errorf("state %s: forgetting cluster %s: %w", d, cluster, err)
	}
	return nil
}

// ForgetClusterIfEmpty removes a cluster's record when nothing is left in
// it; a record that still holds files (a kubeconfig) is kept.
func (d Dir) ForgetClusterIfEmpty(cluster string) error {
	err := os.Remove(d.ClusterDir(cluster)) // fails on a non-empty directory
	switch {
	case err == nil, errors.Is(err, fs.ErrNotExist):
		return nil
	case errors.Is(err, syscall.ENOTEMPTY), errors.Is(err, syscall.EEXIST):
		return nil
	}
	return fmt.Errorf("state %s: forgetting cluster %s: %w", d, cluster, err)
}

// Clusters lists the clusters the state records, sorted.
func (d Dir) Clusters() ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(string(d), "clusters"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("state %s: listing clusters: %w", d, err)
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out, nil
}

// WriteSecretFile writes data to path with mode 0600 (parent 0700),
// atomically.
func WriteSecretFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return fsutil.WriteAtomic(path, data, 0o600)
}
