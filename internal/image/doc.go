// Package image registers CAPI node images in Glance, replacing SCS's
// upload_capi_image.sh / wait_capi_image.sh.
//
// One registration:
//
//  1. resolves the expected sha256 of the source (pinned, or read from a
//     published checksum file);
//  2. looks the image name up in Glance once: an active image of that name
//     whose capilab_source_sha256 property matches (own, shared or public)
//     means there is nothing to do;
//  3. otherwise fetches the source (http(s) download with progress and
//     resume into a cache, or a local file / file:// URL) and verifies its
//     sha256 before anything is created in Glance;
//  4. optionally converts qcow2 to raw (qemu-img convert -O raw -S 4k),
//     reads the virtual size for min_disk, creates the image with the SCS
//     properties plus capilab's tag and source checksum, streams the file
//     into it and waits, bounded, for it to become active;
//  5. checks that Glance stored exactly what was sent (size and
//     os_hash_value), and that no second image of the same name exists.
//
// Creates are reconciled: every image a registration creates carries a
// random capilab_upload_id, so after a lost response (the cloud applied the
// POST but the answer never arrived) the image is found and adopted instead
// of duplicated. Uploads are retried by re-opening the file while the image
// is still queued; an image that cannot take data any more is deleted and
// created again, within a bounded number of attempts. Images left queued,
// saving or killed by an earlier, killed run are recognised by the
// capilab-managed tag and the project and replaced. Nothing is ever deleted
// that is not tagged capilab-managed and owned by the caller's project.
//
// Registration can run in the background while other setup goes on:
//
//	reg := image.Start(ctx, glance, spec, log)
//	... other work ...
//	res, err := reg.Wait(ctx)
package image
