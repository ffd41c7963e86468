package lab

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/capilab/capilab/internal/dataplane/mirror"
)

// MirrorPush builds OCCM and the Cinder CSI plugin (cloud-provider-openstack
// at its pinned version) and pushes every image capilab built (label
// dev.capilab.cache-key; kind node images left out) into devcloud's
// registry mirror under <registry>/<repository>:<tag>, where the
// registry_mirrors of the local lab point containerd.
func MirrorPush(ctx context.Context, r *Run) error {
	b := r.Builder()
	built, err := mirror.EnsureCloudProviderImages(ctx, b, r.Loaded.Versions.Devcloud.CloudProviderOpenStack)
	if err != nil {
		return err
	}
	r.Log.Info("cloud-provider-openstack images current", "images", built)
	p := r.mirrorPusher()
	refs, err := p.Built(ctx)
	if err != nil {
		return err
	}
	if err := p.Push(ctx, refs); err != nil {
		return fmt.Errorf("%w (is devcloud's registry mirror running? scripts/devcloud/devcloud.sh status)", err)
	}
	for _, ref := range refs {
		fmt.Fprintln(r.Stdout, mirror.PushRef(mirror.DevcloudRegistry, ref))
	}
	return nil
}

// mirrorPusher pushes to devcloud's registry mirror, taking turns with
// every other capilab process on this machine (the lock is in the cache
// they share).
func (r *Run) mirrorPusher() *mirror.Pusher {
	return &mirror.Pusher{Mirror: mirror.DevcloudRegistry, LockDir: filepath.Join(r.CacheDir(), "locks"), Log: r.Log}
}
