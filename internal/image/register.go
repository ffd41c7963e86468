package image

import (
	"context"
	"crypto/rand"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"

	"github.com/capilab/capilab/internal/cloud"
	"github.com/capilab/capilab/internal/logging"
	"github.com/capilab/capilab/internal/wait"
)

// Attempt bounds.
const (
	maxAttempts       = 4 // per create, per download, per checksum fetch
	maxUploadAttempts = 4 // uploads into one image while it stays queued
	maxImageAttempts  = 3 // images created and discarded (killed, corrupt) before giving up
	maxRetryDelay     = 30 * time.Second
)

// Action says what a registration did.
type Action string

const (
	// Unchanged: an active image of that name from the same source was there.
	Unchanged Action = "unchanged"
	// Registered: capilab created and uploaded the image.
	Registered Action = "registered"
	// ReusedForeign: an active image of that name that capilab did not
	// register is used as it is (ReuseForeign); its checksum is unverified.
	ReusedForeign Action = "reused, not registered by capilab: checksum unverified"
)

// Result describes the registered image.
type Result struct {
	Action       Action
	ID           string
	Name         string
	Owner        string
	Visibility   string
	SourceSHA256 string
	DiskFormat   string
	MinDiskGiB   int
	SizeBytes    int64
	// Replaced lists the images capilab deleted on the way: incomplete ones
	// left by killed runs, duplicates from concurrent runs.
	Replaced []string
	Took     time.Duration
}

// Registration is a registration running in the background.
type Registration struct {
	done chan struct{}
	res  Result
	err  error
}

// Start registers the image in the background; ctx bounds and cancels the
// registration itself. Wait for the result with Wait.
func Start(ctx context.Context, g Glance, spec Spec, log *slog.Logger) *Registration {
	reg := &Registration{done: make(chan struct{})}
	go func() {
		defer close(reg.done)
		reg.res, reg.err = Register(ctx, g, spec, log)
	}()
	return reg
}

// Done is closed when the registration has finished.
func (reg *Registration) Done() <-chan struct{} { return reg.done }

// Wait returns the registration's result once it has finished. ctx bounds
// only the waiting: when it ends first, the registration goes on (under the
// context given to Start) and Wait may be called again.
func (reg *Registration) Wait(ctx context.Context) (Result, error) {
	select {
	case <-reg.done:
		return reg.res, reg.err
	case <-ctx.Done():
		return Result{}, fmt.Errorf("waiting for the image registration: %w", context.Cause(ctx))
	}
}

// Register ensures the image is active in Glance (see the package doc).
func Register(ctx context.Context, g Glance, spec Spec, log *slog.Logger) (Result, error) {
	start := time.Now()
	if log == nil {
		log = logging.Discard()
	}
	spec, err := spec.withDefaults()
	if err != nil {
		return Result{Name: spec.Name}, fmt.Errorf("cloud %s: %w", g.Cloud, err)
	}
	r := &registration{g: g, spec: spec, log: log.With("image", spec.Name, "cloud", g.Cloud)}
	r.step = logging.StartStep(log, "image "+spec.Name, "cloud", g.Cloud, "source", spec.Source)
	res, err := r.run(ctx)
	res.Name, res.Replaced, res.Took = spec.Name, r.replaced, time.Since(start)
	if err != nil && !strings.HasPrefix(err.Error(), "cloud ") {
		err = fmt.Errorf("cloud %s: image %s: %w", g.Cloud, spec.Name, err)
	}
	r.step.Done(err, "action", res.Action, "id", res.ID)
	return res, err
}

type registration struct {
	g        Glance
	spec     Spec
	log      *slog.Logger
	step     *logging.Step
	replaced []string
}

func (r *registration) run(ctx context.Context) (Result, error) {
	want, wantFrom := r.spec.SHA256, "the pinned sha256"
	if want == "" && r.spec.ChecksumURL != "" {
		sum, err := r.fetchChecksum(ctx)
		if err != nil {
			if res, ok := r.sameURLFallback(ctx, err); ok {
				return res, nil
			}
			return Result{}, err
		}
		want, wantFrom = sum, "checksum file "+r.spec.ChecksumURL
	}
	var src *source
	if want == "" {
		// A local file without a pinned checksum: its own hash is its identity.
		s, err := r.fetchSource(ctx, "", "")
		if err != nil {
			return Result{}, err
		}
		want, src = s.sha256, &s
	}

	// The one lookup by name; from here on images are addressed by ID.
	existing, err := r.g.list(ctx, r.spec.Name)
	if err != nil {
		return Result{}, err
	}
	p := r.plan(existing, want)
	if kind, _, _ := parseSource(r.spec.Source); len(p.conflicts) > 0 && src == nil && kind == sourceLocal {
		// A wrong sha256 for the file is the first thing to say (it looks
		// like a name conflict otherwise): reading a local file is cheap.
		s, err := r.fetchSource(ctx, want, wantFrom)
		if err != nil {
			return Result{}, err
		}
		src = &s
	}
	if res, ok := r.reuseForeign(p); ok {
		return res, nil
	}
	if err := p.conflict(r.g, r.spec.Name); err != nil {
		return Result{}, err
	}
	for _, img := range p.inProgress {
		cur, err := r.awaitOther(ctx, img)
		if err != nil {
			return Result{}, err
		}
		switch {
		case cur == nil:
		case cur.Status == images.ImageStatusActive && prop(*cur, PropSourceSHA256) != want:
			p.conflicts = append(p.conflicts, describe(*cur, true))
		case cur.Status == images.ImageStatusActive && p.reuse == nil:
			p.reuse = cur
		default: // an active duplicate, or a run that died: ours to replace
			p.stale = append(p.stale, *cur)
		}
	}
	if err := p.conflict(r.g, r.spec.Name); err != nil {
		return Result{}, err
	}
	if err := r.removeAll(ctx, p.stale, "left incomplete by an earlier run"); err != nil {
		return Result{}, err
	}
	if p.reuse != nil {
		r.log.Info("image is registered already; nothing to do", "id", p.reuse.ID, "owner", p.reuse.Owner, "visibility", p.reuse.Visibility)
		return resultOf(Unchanged, p.reuse, want), nil
	}

	if src == nil {
		s, err := r.fetchSource(ctx, want, wantFrom)
		if err != nil {
			return Result{}, err
		}
		src = &s
	}
	return r.register(ctx, *src)
}

// sameURLFallback keeps a lab without internet access (or with the checksum
// file's host down) working when the image is there already: an active
// image of the name, registered by capilab from the same URL, is taken as
// up to date, with a warning. Without one, the fetch error stands.
func (r *registration) sameURLFallback(ctx context.Context, fetchErr error) (Result, bool) {
	if ctx.Err() != nil {
		return Result{}, false
	}
	existing, err := r.g.list(ctx, r.spec.Name)
	if err != nil {
		return Result{}, false
	}
	for _, img := range existing {
		sum := prop(img, PropSourceSHA256)
		if img.Status == images.ImageStatusActive && sum != "" && prop(img, "image_source") == sourceURL(r.spec.Source) {
			r.log.Warn("could not read the checksum file; the active image registered from the same URL is taken as up to date",
				"id", img.ID, "error", fetchErr)
			return resultOf(Unchanged, &img, sum), true
		}
	}
	return Result{}, false
}

// plan sorts what the name lookup found.
type plan struct {
	reuse      *images.Image  // active, same source: nothing to do
	inProgress []images.Image // ours, being uploaded right now (another run)
	stale      []images.Image // ours, incomplete or duplicate: delete
	conflicts  []string       // images capilab must neither touch nor duplicate
	// foreign are the active images among the conflicts that capilab did
	// not register (no capilab_source_sha256): reusable with ReuseForeign.
	foreign []images.Image
}

func (p plan) conflict(g Glance, name string) error {
	if len(p.conflicts) == 0 {
		return nil
	}
	hint := ""
	if len(p.foreign) == 1 && len(p.conflicts) == 1 {
		hint = ", or set image_reuse_foreign=true (IMAGE_REUSE_FOREIGN=true) to use that image as it is (its checksum cannot be verified)"
	}
	return fmt.Errorf("cloud %s: image %s: there is already an image of that name that capilab did not register from this source: %s; "+
		"capilab does not add a second image of the same name (CAPO would not know which to boot) and does not touch images it cannot prove are its own: "+
		"delete or rename the image, or set image_name%s", g.Cloud, name, strings.Join(p.conflicts, "; "), hint)
}

// reuseForeign takes the one active image of the name that capilab did not
// register, when the spec allows it and nothing else is in the way.
func (r *registration) reuseForeign(p plan) (Result, bool) {
	if !r.spec.ReuseForeign || len(p.foreign) != 1 || len(p.conflicts) != 1 || p.reuse != nil || len(p.inProgress) > 0 {
		return Result{}, false
	}
	img := p.foreign[0]
	whose := "project " + img.Owner
	if r.g.ProjectID != "" && img.Owner == r.g.ProjectID {
		whose = "this project"
	}
	r.log.Warn("using an image capilab did not register (image_reuse_foreign): its source and checksum are not verified",
		"id", img.ID, "owner", whose, "visibility", img.Visibility)
	return resultOf(ReusedForeign, &img, ""), true
}

func describe(img images.Image, own bool) string {
	d := fmt.Sprintf("%s (status %s, owner %s, visibility %s", img.ID, img.Status, img.Owner, img.Visibility)
	switch sum := prop(img, PropSourceSHA256); {
	case own && sum != "":
		d += ", registered by capilab from a source with sha256 " + sum
	case sum != "":
		d += ", " + PropSourceSHA256 + " " + sum
	case !slices.Contains(img.Tags, Tag):
		d += ", not tagged " + Tag
	}
	return d + ")"
}

func (r *registration) plan(imgs []images.Image, want string) plan {
	var p plan
	var matches []images.Image
	for _, img := range imgs {
		own := r.g.owned(img)
		same := prop(img, PropSourceSHA256) == want
		switch img.Status {
		case images.ImageStatusActive:
			switch {
			case same:
				matches = append(matches, img)
			case prop(img, PropSourceSHA256) == "":
				p.foreign = append(p.foreign, img)
				p.conflicts = append(p.conflicts, describe(img, own))
			default:
				p.conflicts = append(p.conflicts, describe(img, own))
			}
		case images.ImageStatusQueued, images.ImageStatusSaving, images.ImageStatusImporting, "uploading":
			switch {
			case !own:
				p.conflicts = append(p.conflicts, describe(img, own))
			case r.alive(img):
				p.inProgress = append(p.inProgress, img)
			default:
				p.stale = append(p.stale, img)
			}
		case images.ImageStatusKilled:
			if own {
				p.stale = append(p.stale, img)
			} else {
				p.conflicts = append(p.conflicts, describe(img, own))
			}
		case images.ImageStatusDeleted, images.ImageStatusPendingDelete:
		default: // deactivated, or a status this code does not know
			p.conflicts = append(p.conflicts, describe(img, own))
		}
	}
	if len(matches) == 0 {
		return p
	}
	// Several active images from the same source (a race of two runs): the
	// earliest wins, as in dedupe; later own ones are duplicates.
	sortByAge(matches)
	p.reuse = &matches[0]
	for _, img := range matches[1:] {
		if r.g.owned(img) {
			p.stale = append(p.stale, img)
		} else {
			p.conflicts = append(p.conflicts, describe(img, false))
		}
	}
	// With an active image there, an upload in progress is a duplicate in
	// the making; leave it to its own run's duplicate check.
	p.inProgress = nil
	return p
}

func sortByAge(imgs []images.Image) {
	slices.SortStableFunc(imgs, func(a, b images.Image) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
}

// awaitOther waits, bounded, for an image of ours that another run may be
// filling right now (queued or saving, and recently updated). It returns the
// image once it is no longer being filled: active, killed, or no longer
// updated for longer than a live run would take (nil when it is gone).
func (r *registration) awaitOther(ctx context.Context, img images.Image) (*images.Image, error) {
	r.log.Info("an image of ours is being filled, maybe by another run; waiting for it", "id", img.ID, "status", img.Status,
		"updated", logging.Round(time.Since(img.UpdatedAt)).String()+" ago")
	cur := &img
	err := wait.For(ctx, r.log, wait.Spec{
		What:    fmt.Sprintf("image %s (%s), being filled by another run", r.spec.Name, img.ID),
		Timeout: r.spec.Timeout, Interval: r.spec.PollInterval,
	}, func(ctx context.Context) (bool, string, error) {
		got, err := images.Get(ctx, r.g.Client, img.ID).Extract()
		if cloud.IsNotFound(err) {
			cur = nil
			return true, "deleted", nil
		}
		if err != nil {
			return false, "", r.g.errorf(r.spec.Name, img.ID, "reading it: %w", err)
		}
		cur = got
		return !r.alive(*got), string(got.Status), nil
	})
	if wait.IsTimeout(err) {
		r.log.Warn("the other run's upload is stuck; replacing the image", "id", img.ID)
		return cur, nil
	}
	return cur, err
}

// removeAll deletes images of ours (never anything else: callers pass only
// images owned() approved).
func (r *registration) removeAll(ctx context.Context, imgs []images.Image, why string) error {
	for _, img := range imgs {
		if !r.g.owned(img) {
			return r.g.errorf(r.spec.Name, img.ID, "refusing to delete an image capilab does not own")
		}
		r.log.Info("deleting an image of ours "+why, "id", img.ID, "status", img.Status)
		if err := r.g.remove(ctx, r.spec.Name, img.ID); err != nil {
			return err
		}
		r.replaced = append(r.replaced, img.ID)
	}
	return nil
}

// errRecreate: the image cannot take the upload any more (killed, deleted,
// stored something else); delete it and create a new one.
var errRecreate = errors.New("the image must be created again")

// register uploads a verified source into a new image.
func (r *registration) register(ctx context.Context, src source) (Result, error) {
	d, err := inspectDisk(src.path)
	if err != nil {
		return Result{}, fmt.Errorf("source %s: %w", r.spec.Source, err)
	}
	upload := src.path
	if r.spec.Raw && d.format == "qcow2" {
		r.step.Progress("converting qcow2 to raw", "virtual_size", humanBytes(d.virtualSize))
		if upload, err = r.convertToRaw(ctx, src, d); err != nil {
			return Result{}, err
		}
		d.format = "raw"
	}
	fi, err := os.Stat(upload)
	if err != nil {
		return Result{}, err
	}
	var lastErr error
	for attempt := 1; attempt <= maxImageAttempts; attempt++ {
		img, err := r.create(ctx, src, d)
		if err != nil {
			return Result{}, err
		}
		final, err := r.fill(ctx, img, upload, fi.Size())
		if err == nil {
			if upload != src.path {
				_ = os.Remove(upload) // the conversion; the source or download stays
			}
			return r.dedupe(ctx, final, src.sha256)
		}
		if ctx.Err() != nil {
			r.abandon(ctx, img)
			return Result{}, err
		}
		if !errors.Is(err, errRecreate) {
			r.abandon(ctx, img)
			return Result{}, err
		}
		lastErr = err
		r.log.Warn("image cannot be completed; deleting it and creating it again", "id", img.ID, "attempt", attempt, "error", err)
		if err := r.g.remove(ctx, r.spec.Name, img.ID); err != nil {
			return Result{}, err
		}
		r.replaced = append(r.replaced, img.ID)
	}
	return Result{}, fmt.Errorf("giving up after %d images: %w", maxImageAttempts, lastErr)
}

// abandon deletes an image this run created but could not complete, with a
// short budget of its own (the run's context may be cancelled already). If
// that fails too, the next run finds the image and replaces it.
func (r *registration) abandon(ctx context.Context, img *images.Image) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	r.log.Info("removing the incomplete image", "id", img.ID)
	if err := r.g.remove(ctx, r.spec.Name, img.ID); err != nil {
		r.log.Warn("could not remove the incomplete image; the next run replaces it", "id", img.ID, "error", err)
	}
}

// create creates the image, reconciling lost responses: every attempt of one
// create carries the same random upload ID, so an image the cloud created
// although its answer never arrived is found and adopted.
func (r *registration) create(ctx context.Context, src source, d disk) (*images.Image, error) {
	uploadID := randomID()
	opts := images.CreateOpts{
		Name:            r.spec.Name,
		Tags:            []string{Tag},
		ContainerFormat: "bare",
		DiskFormat:      d.format,
		MinDisk:         d.minDiskGiB(),
		MinRAM:          1024,
		Properties:      r.spec.properties(src.sha256, uploadID, src.built),
	}
	var img *images.Image
	unsure := false // a create may have been applied without our knowing
	err := r.retry(ctx, "creating the image", func(ctx context.Context) error {
		if unsure {
			found, err := r.adopt(ctx, uploadID)
			if err != nil {
				return err
			}
			unsure = false
			if found != nil {
				img = found
				return nil
			}
		}
		created, err := r.g.create(ctx, opts)
		if err == nil {
			img = created
			return nil
		}
		if definite(err) {
			return permanent(err)
		}
		unsure = true
		found, lerr := r.adopt(ctx, uploadID)
		if lerr != nil {
			return err
		}
		unsure = false
		if found != nil {
			img = found
			return nil
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	r.log.Info("created image", "id", img.ID, "disk_format", d.format, "min_disk_gib", d.minDiskGiB())
	return img, nil
}

// adopt finds the images a create with uploadID made, keeps the oldest and
// deletes the others (each lost response may have made one).
func (r *registration) adopt(ctx context.Context, uploadID string) (*images.Image, error) {
	all, err := r.g.list(ctx, r.spec.Name)
	if err != nil {
		return nil, err
	}
	mine := slices.DeleteFunc(all, func(img images.Image) bool {
		return prop(img, PropUploadID) != uploadID || !r.g.owned(img)
	})
	if len(mine) == 0 {
		return nil, nil
	}
	sortByAge(mine)
	r.log.Info("the create was applied although its answer was lost; adopting the image", "id", mine[0].ID)
	if err := r.removeAll(ctx, mine[1:], "created twice by lost responses"); err != nil {
		return nil, err
	}
	return &mine[0], nil
}

// fill uploads the file into the image, waits for it to become active and
// checks what Glance stored.
func (r *registration) fill(ctx context.Context, img *images.Image, p string, size int64) (*images.Image, error) {
	sum := ""
	delay := r.spec.RetryDelay
	for attempt := 1; ; attempt++ {
		got, err := r.uploadOnce(ctx, img.ID, p, size)
		if err == nil {
			sum = got
			break
		}
		if ctx.Err() != nil {
			return nil, err
		}
		cur, gerr := images.Get(ctx, r.g.Client, img.ID).Extract()
		if cloud.IsNotFound(gerr) {
			return nil, fmt.Errorf("%w: it disappeared during the upload (%v)", errRecreate, err)
		}
		if gerr != nil {
			return nil, errors.Join(err, r.g.errorf(r.spec.Name, img.ID, "reading it after a failed upload: %w", gerr))
		}
		if cur.Status == images.ImageStatusQueued {
			// Glance threw the partial data away: send it again.
			if attempt >= maxUploadAttempts {
				return nil, fmt.Errorf("%w: upload failed %d times: %w", errRecreate, attempt, err)
			}
			r.log.Warn("upload failed; sending the file again", "id", img.ID, "attempt", attempt, "in", delay, "error", err)
			if err := wait.Sleep(ctx, delay); err != nil {
				return nil, err
			}
			delay = min(2*delay, maxRetryDelay)
			continue
		}
		if cur.Status == images.ImageStatusSaving || cur.Status == images.ImageStatusActive {
			// The data arrived but the answer did not: verify what was stored.
			r.log.Warn("upload answer lost but the image has the data; verifying it", "id", img.ID, "status", cur.Status, "error", err)
			break
		}
		return nil, fmt.Errorf("%w: status %s after a failed upload (%v)", errRecreate, cur.Status, err)
	}
	cur, err := r.awaitActive(ctx, img.ID)
	if err != nil {
		return nil, err
	}
	if cur.SizeBytes != size {
		return nil, fmt.Errorf("%w: Glance stored %d bytes, %d were sent", errRecreate, cur.SizeBytes, size)
	}
	if algo := prop(*cur, "os_hash_algo"); algo == "sha512" {
		if sum == "" {
			if sum, err = r.sha512File(ctx, p, size); err != nil {
				return nil, err
			}
		}
		if stored := prop(*cur, "os_hash_value"); stored != sum {
			return nil, fmt.Errorf("%w: Glance's sha512 of the stored data %s differs from the file's %s", errRecreate, stored, sum)
		}
	}
	return cur, nil
}

// uploadOnce streams the file into the image and returns its sha512.
func (r *registration) uploadOnce(ctx context.Context, id, p string, size int64) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	body := &uploadBody{f: f, size: size, step: r.step, every: r.spec.ProgressEvery}
	body.rewind()
	if err := r.g.upload(ctx, r.spec.Name, id, body, size); err != nil {
		return "", err
	}
	if !body.r.eof {
		return "", fmt.Errorf("upload of %s ended after %d of %d bytes", p, body.r.meter.bytes(), size)
	}
	body.r.meter.finish()
	return hex.EncodeToString(body.sum.Sum(nil)), nil
}

// uploadBody is the request body of an upload: it counts, hashes and
// reports progress, and rewinds (Seek to 0) when gophercloud re-sends the
// request after re-authenticating.
type uploadBody struct {
	f     *os.File
	size  int64
	step  *logging.Step
	every time.Duration
	sum   hash.Hash
	r     *meteredReader
}

func (b *uploadBody) rewind() {
	b.sum = sha512.New()
	b.r = &meteredReader{r: b.f, meter: newMeter(b.step, "upload", b.size, 0, b.every), hashes: []hash.Hash{b.sum}}
}

func (b *uploadBody) Read(p []byte) (int, error) { return b.r.Read(p) }

func (b *uploadBody) Seek(offset int64, whence int) (int64, error) {
	if offset != 0 || whence != io.SeekStart {
		return 0, errors.New("upload body can only be rewound to the start")
	}
	if _, err := b.f.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	b.rewind()
	return 0, nil
}

func (r *registration) sha512File(ctx context.Context, p string, size int64) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha512.New()
	mr := &meteredReader{r: ctxReader{ctx, f}, meter: newMeter(r.step, "verifying sha512", size, 0, r.spec.ProgressEvery)}
	if _, err := io.Copy(h, mr); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// awaitActive waits, bounded by the spec's timeout, for the image to become active.
func (r *registration) awaitActive(ctx context.Context, id string) (*images.Image, error) {
	var cur *images.Image
	err := wait.For(ctx, r.log, wait.Spec{
		What:    fmt.Sprintf("image %s (%s) to become active", r.spec.Name, id),
		Timeout: r.spec.Timeout, Interval: r.spec.PollInterval,
	}, func(ctx context.Context) (bool, string, error) {
		got, err := images.Get(ctx, r.g.Client, id).Extract()
		if cloud.IsNotFound(err) {
			return false, "", fmt.Errorf("%w: it was deleted", errRecreate)
		}
		if err != nil {
			return false, "", r.g.errorf(r.spec.Name, id, "reading it: %w", err)
		}
		cur = got
		switch got.Status {
		case images.ImageStatusActive:
			return true, "active", nil
		case images.ImageStatusKilled, images.ImageStatusQueued:
			return false, string(got.Status), fmt.Errorf("%w: status %s after the upload", errRecreate, got.Status)
		}
		return false, string(got.Status), nil
	})
	if err != nil {
		return nil, err
	}
	return cur, nil
}

// queuedGrace is how long a queued image of ours may belong to a live run:
// a run keeps an image queued only between its create and its upload and
// between upload attempts (backoff of a few seconds). An image queued for
// longer was left by a run that died.
const queuedGrace = 30 * time.Second

// dedupe makes sure the image just registered is the only one of its name
// from this source. Two runs racing each register one; both apply the same
// rule: of the images from this source that are active or still being
// filled by a live run, the earliest created wins. A run whose image is not
// the winner waits for the winner to become active, then deletes its own;
// the winner's run deletes later active duplicates whose run died. Only
// images whose run may still be alive count, so a dead run cannot block
// the others. (Lookups by name after the upload happen only here.)
func (r *registration) dedupe(ctx context.Context, mine *images.Image, sum string) (Result, error) {
	var res Result
	err := wait.For(ctx, r.log, wait.Spec{
		What:    fmt.Sprintf("image %s: a concurrent registration of the same source to finish", r.spec.Name),
		Timeout: r.spec.Timeout, Interval: r.spec.PollInterval,
	}, func(ctx context.Context) (bool, string, error) {
		all, err := r.g.list(ctx, r.spec.Name)
		if err != nil {
			return false, "", err
		}
		var cands []images.Image
		found := false
		for _, img := range all {
			if prop(img, PropSourceSHA256) != sum {
				continue
			}
			if img.ID == mine.ID {
				found = true
				cands = append(cands, img)
				continue
			}
			if img.Status == images.ImageStatusActive || (r.g.owned(img) && r.alive(img)) {
				cands = append(cands, img)
			}
		}
		if len(cands) == 0 {
			return false, "", fmt.Errorf("%w: it disappeared after becoming active", errRecreate)
		}
		sortByAge(cands)
		winner := cands[0]
		switch {
		case winner.ID == mine.ID:
			var dups []images.Image
			for _, img := range cands[1:] {
				if r.g.owned(img) && img.Status == images.ImageStatusActive {
					dups = append(dups, img)
				}
			}
			if err := r.removeAll(ctx, dups, "registered twice by concurrent runs"); err != nil {
				return false, "", err
			}
			r.log.Info("image registered", "id", mine.ID, "size", humanBytes(mine.SizeBytes))
			res = resultOf(Registered, mine, sum)
			return true, "", nil
		case winner.Status != images.ImageStatusActive:
			return false, fmt.Sprintf("waiting for the earlier image %s (%s)", winner.ID, winner.Status), nil
		}
		if found {
			r.log.Info("another run registered the same image first; removing ours", "id", mine.ID, "kept", winner.ID)
			if err := r.removeAll(ctx, []images.Image{*mine}, "registered twice by concurrent runs"); err != nil {
				return false, "", err
			}
		}
		res = resultOf(Unchanged, &winner, sum)
		return true, "", nil
	})
	return res, err
}

// alive reports whether an incomplete image may still be filled by a live run.
func (r *registration) alive(img images.Image) bool {
	switch img.Status {
	case images.ImageStatusQueued:
		return time.Since(img.UpdatedAt) < queuedGrace
	case images.ImageStatusSaving, images.ImageStatusImporting, "uploading":
		return time.Since(img.UpdatedAt) < r.spec.Timeout
	}
	return false
}

func resultOf(action Action, img *images.Image, sum string) Result {
	return Result{
		Action: action, ID: img.ID, Name: img.Name, Owner: img.Owner, Visibility: string(img.Visibility),
		SourceSHA256: sum, DiskFormat: img.DiskFormat, MinDiskGiB: img.MinDiskGigabytes, SizeBytes: img.SizeBytes,
	}
}

// permanentError stops retry.
type permanentError struct{ err error }

func permanent(err error) error         { return &permanentError{err} }
func (p *permanentError) Error() string { return p.err.Error() }
func (p *permanentError) Unwrap() error { return p.err }

// retry runs fn up to maxAttempts times with exponential backoff, until it
// succeeds, returns a permanent error or ctx ends.
func (r *registration) retry(ctx context.Context, what string, fn func(context.Context) error) error {
	delay := r.spec.RetryDelay
	for attempt := 1; ; attempt++ {
		err := fn(ctx)
		if err == nil {
			return nil
		}
		var pe *permanentError
		if errors.As(err, &pe) {
			return pe.err
		}
		if ctx.Err() != nil {
			return err
		}
		if attempt >= maxAttempts {
			return fmt.Errorf("%s: giving up after %d attempts: %w", what, attempt, err)
		}
		r.log.Warn(what+" failed; retrying", "attempt", attempt, "in", delay, "error", err)
		if err := wait.Sleep(ctx, delay); err != nil {
			return err
		}
		delay = min(2*delay, maxRetryDelay)
	}
}

func randomID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
