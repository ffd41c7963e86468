package cleanup

import (
	"context"
	"fmt"

	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/snapshots"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
)

// Cinder: volumes and snapshots, both deleted asynchronously. A volume that
// is still attached or has snapshots is refused with 400; that is waited
// out like a 409.

func listVolumes(ctx context.Context, c *clients) ([]Resource, error) {
	pages, err := volumes.List(c.volume, volumes.ListOpts{}).AllPages(ctx)
	if err != nil {
		return nil, err
	}
	all, err := volumes.ExtractVolumes(pages)
	out := make([]Resource, 0, len(all))
	for _, v := range all {
		r := Resource{Type: Volume, ID: v.ID, Name: v.Name, Description: v.Description, Status: v.Status, CreatedAt: v.CreatedAt, Metadata: v.Metadata}
		for _, a := range v.Attachments {
			r.AttachedTo = append(r.AttachedTo, a.ServerID)
		}
		out = append(out, r)
	}
	return out, err
}

func deleteVolume(ctx context.Context, c *clients, r *Resource) error {
	return inUse400(volumes.Delete(ctx, c.volume, r.ID, volumes.DeleteOpts{}).ExtractErr())
}

func getVolume(ctx context.Context, c *clients, r *Resource) (bool, string, error) {
	v, err := volumes.Get(ctx, c.volume, r.ID).Extract()
	if err != nil {
		return false, "", err
	}
	if v.Status == "error_deleting" {
		return true, v.Status, fmt.Errorf("volume %s: deletion failed (status error_deleting)", r.ID)
	}
	return true, v.Status, nil
}

func listSnapshots(ctx context.Context, c *clients) ([]Resource, error) {
	pages, err := snapshots.List(c.volume, snapshots.ListOpts{}).AllPages(ctx)
	if err != nil {
		return nil, err
	}
	all, err := snapshots.ExtractSnapshots(pages)
	out := make([]Resource, 0, len(all))
	for _, s := range all {
		out = append(out, Resource{Type: Snapshot, ID: s.ID, Name: s.Name, Description: s.Description, Status: s.Status, CreatedAt: s.CreatedAt, Metadata: s.Metadata, VolumeID: s.VolumeID})
	}
	return out, err
}

func deleteSnapshot(ctx context.Context, c *clients, r *Resource) error {
	return inUse400(snapshots.Delete(ctx, c.volume, r.ID).ExtractErr())
}

func getSnapshot(ctx context.Context, c *clients, r *Resource) (bool, string, error) {
	s, err := snapshots.Get(ctx, c.volume, r.ID).Extract()
	if err != nil {
		return false, "", err
	}
	if s.Status == "error_deleting" {
		return true, s.Status, fmt.Errorf("snapshot %s: deletion failed (status error_deleting)", r.ID)
	}
	return true, s.Status, nil
}
