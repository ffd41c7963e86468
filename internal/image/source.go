package image

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Download limits.
const (
	maxDownloadAttempts = 5
	maxChecksumFile     = 1 << 20
	downloadIdleTimeout = 60 * time.Second
)

func defaultHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.ResponseHeaderTimeout = 30 * time.Second
	return &http.Client{Transport: t}
}

// parseChecksumFile finds the sha256 of fileName in a published checksum
// file. It accepts sha256sum lines ("<hex>  <name>", "<hex> *<name>"), BSD
// lines ("SHA256 (<name>) = <hex>") and a bare hex digest. With several
// entries, the one naming fileName wins; a single entry is taken whatever
// name it gives (checksum files next to their image often name a build path).
func parseChecksumFile(data []byte, fileName string) (string, error) {
	type entry struct{ sum, name string }
	var entries []entry
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if rest, ok := strings.CutPrefix(line, "SHA256 ("); ok {
			name, sum, ok := strings.Cut(rest, ") = ")
			if ok && hexSHA256.MatchString(strings.ToLower(strings.TrimSpace(sum))) {
				entries = append(entries, entry{strings.ToLower(strings.TrimSpace(sum)), name})
				continue
			}
			return "", fmt.Errorf("unreadable line %q", line)
		}
		fields := strings.Fields(line)
		sum := strings.ToLower(fields[0])
		if !hexSHA256.MatchString(sum) {
			return "", fmt.Errorf("unreadable line %q (want a sha256 in hex, optionally followed by a file name)", line)
		}
		name := ""
		if len(fields) > 1 {
			name = strings.TrimPrefix(fields[len(fields)-1], "*")
		}
		entries = append(entries, entry{sum, name})
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	switch len(entries) {
	case 0:
		return "", errors.New("no checksum in it")
	case 1:
		return entries[0].sum, nil
	}
	for _, e := range entries {
		if path.Base(e.name) == fileName {
			return e.sum, nil
		}
	}
	return "", fmt.Errorf("%d checksums in it, none for %s", len(entries), fileName)
}

// fetchChecksum reads and parses a published checksum file.
func (r *registration) fetchChecksum(ctx context.Context) (string, error) {
	s := r.spec
	_, srcURL, _ := parseSource(s.Source)
	fileName := path.Base(srcURL)
	if u, err := url.Parse(srcURL); err == nil {
		fileName = path.Base(u.Path)
	}
	var data []byte
	err := r.retry(ctx, "fetching the checksum file "+s.ChecksumURL, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		var err error
		data, err = r.get(ctx, s.ChecksumURL, maxChecksumFile)
		if err != nil && !transientDownloadErr(err) {
			return permanent(err)
		}
		return err
	})
	if err != nil {
		return "", err
	}
	sum, err := parseChecksumFile(data, fileName)
	if err != nil {
		return "", fmt.Errorf("checksum file %s: %w", s.ChecksumURL, err)
	}
	return sum, nil
}

// get fetches a small document.
func (r *registration) get(ctx context.Context, u string, limit int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := r.spec.HTTPClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, &statusError{url: u, code: resp.StatusCode}
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("GET %s: larger than %s", u, humanBytes(limit))
	}
	return data, nil
}

// statusError is an unexpected HTTP status of a download.
type statusError struct {
	url  string
	code int
}

func (e *statusError) Error() string {
	return fmt.Sprintf("GET %s: HTTP %d %s", e.url, e.code, http.StatusText(e.code))
}

// transientDownloadErr says whether a failed download attempt is worth repeating.
func transientDownloadErr(err error) bool {
	var se *statusError
	if errors.As(err, &se) {
		return se.code == http.StatusTooManyRequests || se.code == http.StatusRequestTimeout || se.code >= 500
	}
	if errors.Is(err, errIdle) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, errShort) {
		return true
	}
	// A name that does not resolve will not resolve on the next attempt;
	// a DNS timeout or a failing DNS server may pass.
	var de *net.DNSError
	if errors.As(err, &de) {
		return de.IsTimeout || (de.IsTemporary && !de.IsNotFound)
	}
	// A certificate that does not verify will not verify next time.
	var cv *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	if errors.As(err, &cv) || errors.As(err, &ua) || errors.As(err, &hn) {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	var ue *url.Error
	return errors.As(err, &ue) && !errors.Is(err, context.Canceled)
}

var (
	errIdle  = fmt.Errorf("no data for %s", downloadIdleTimeout)
	errShort = errors.New("connection closed before the end of the file")
)

// source is the verified local file a registration uploads from.
type source struct {
	path   string
	sha256 string
	built  time.Time // image_build_date: Last-Modified of the download, or the file's mtime
}

// fetchSource makes the source available as a local file and verifies it
// against want ("" = record whatever a local file hashes to).
func (r *registration) fetchSource(ctx context.Context, want, wantFrom string) (source, error) {
	kind, loc, _ := parseSource(r.spec.Source)
	p := loc
	if kind == sourceHTTP {
		var err error
		if p, err = r.download(ctx, loc, want, wantFrom); err != nil {
			return source{}, err
		}
		// download verified it already.
		fi, err := os.Stat(p)
		if err != nil {
			return source{}, err
		}
		return source{path: p, sha256: want, built: fi.ModTime()}, nil
	}
	fi, err := os.Stat(p)
	if err != nil {
		return source{}, fmt.Errorf("source %s: %w", r.spec.Source, unwrapPath(err))
	}
	if !fi.Mode().IsRegular() {
		return source{}, fmt.Errorf("source %s: not a regular file", r.spec.Source)
	}
	got, err := r.hashFile(ctx, p, fi.Size())
	if err != nil {
		return source{}, fmt.Errorf("source %s: %w", r.spec.Source, err)
	}
	if want != "" && got != want {
		return source{}, mismatch(r.spec.Source, got, want, wantFrom)
	}
	return source{path: p, sha256: got, built: fi.ModTime()}, nil
}

func mismatch(src, got, want, wantFrom string) error {
	return fmt.Errorf("source %s: sha256 mismatch: the file hashes to %s, %s says %s; nothing was registered", src, got, wantFrom, want)
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// hashFile computes a file's sha256, with progress.
func (r *registration) hashFile(ctx context.Context, p string, size int64) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	m := newMeter(r.step, "verifying sha256", size, 0, r.spec.ProgressEvery)
	mr := &meteredReader{r: ctxReader{ctx, f}, meter: m}
	if _, err := io.Copy(h, mr); err != nil {
		return "", err
	}
	m.finish()
	return hex.EncodeToString(h.Sum(nil)), nil
}

// ctxReader stops a long read when the context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, context.Cause(c.ctx)
	}
	return c.r.Read(p)
}

// download fetches srcURL into the cache, resuming a partial file left by an
// interrupted run, and verifies it. A cached complete file is reused when
// its hash still matches.
func (r *registration) download(ctx context.Context, srcURL, want, wantFrom string) (string, error) {
	if err := os.MkdirAll(r.spec.CacheDir, 0o700); err != nil {
		return "", fmt.Errorf("image cache %s: %w", r.spec.CacheDir, err)
	}
	u, err := url.Parse(srcURL)
	if err != nil {
		return "", err
	}
	base := path.Base(u.Path)
	if base == "/" || base == "." || base == "" {
		base = "image"
	}
	dst := filepath.Join(r.spec.CacheDir, want[:16]+"-"+base)
	if fi, err := os.Stat(dst); err == nil {
		r.log.Info("found a cached download; verifying it", "file", dst)
		got, err := r.hashFile(ctx, dst, fi.Size())
		if err != nil {
			return "", fmt.Errorf("cached download %s: %w", dst, err)
		}
		if got == want {
			return dst, nil
		}
		r.log.Warn("cached download does not match its checksum; downloading again", "file", dst, "sha256", got, "want", want)
		if err := os.Remove(dst); err != nil {
			return "", err
		}
	}
	part := dst + ".part"
	var modified time.Time
	err = r.retry(ctx, "downloading", func(ctx context.Context) error {
		var err error
		modified, err = r.downloadOnce(ctx, srcURL, part)
		if err != nil && !transientDownloadErr(err) {
			return permanent(err)
		}
		return err
	})
	if err != nil {
		return "", fmt.Errorf("source %s: %w", srcURL, err)
	}
	fi, err := os.Stat(part)
	if err != nil {
		return "", err
	}
	got, err := r.hashFile(ctx, part, fi.Size())
	if err != nil {
		return "", fmt.Errorf("source %s: %w", srcURL, err)
	}
	if got != want {
		os.Remove(part)
		return "", mismatch(srcURL, got, want, wantFrom)
	}
	if !modified.IsZero() {
		_ = os.Chtimes(part, modified, modified)
	}
	if err := os.Rename(part, dst); err != nil {
		return "", err
	}
	return dst, nil
}

// downloadOnce is one attempt: it appends to part from where it ends.
func (r *registration) downloadOnce(ctx context.Context, srcURL, part string) (time.Time, error) {
	f, err := os.OpenFile(part, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return time.Time{}, err
	}
	defer f.Close()
	have, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return time.Time{}, err
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	idle := time.AfterFunc(downloadIdleTimeout, func() { cancel(errIdle) })
	defer idle.Stop()

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srcURL, nil)
	if err != nil {
		return time.Time{}, err
	}
	if have > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", have))
	}
	resp, err := r.spec.HTTPClient.Do(req)
	if err != nil {
		if c := context.Cause(ctx); errors.Is(c, errIdle) {
			return time.Time{}, errIdle
		}
		return time.Time{}, err
	}
	defer resp.Body.Close()
	total := int64(-1)
	switch resp.StatusCode {
	case http.StatusOK:
		if have > 0 {
			r.log.Info("server does not resume downloads; starting over", "url", srcURL)
		}
		if err := f.Truncate(0); err != nil {
			return time.Time{}, err
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return time.Time{}, err
		}
		have = 0
		total = resp.ContentLength
	case http.StatusPartialContent:
		start, size, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if !ok || start != have {
			// Not the range asked for: start over next attempt.
			_ = f.Truncate(0)
			return time.Time{}, fmt.Errorf("GET %s: unexpected Content-Range %q: %w", srcURL, resp.Header.Get("Content-Range"), errShort)
		}
		total = size
		r.log.Info("resuming download", "url", srcURL, "have", humanBytes(have))
	case http.StatusRequestedRangeNotSatisfiable:
		// The partial file is complete or longer than the source: start over
		// unless it is exactly complete.
		if _, size, ok := parseContentRange(resp.Header.Get("Content-Range")); ok && size == have {
			return lastModified(resp), nil
		}
		_ = f.Truncate(0)
		return time.Time{}, fmt.Errorf("GET %s: partial download does not fit the source: %w", srcURL, errShort)
	default:
		return time.Time{}, &statusError{url: srcURL, code: resp.StatusCode}
	}
	m := newMeter(r.step, "download", total, have, r.spec.ProgressEvery)
	body := &meteredReader{r: resp.Body, meter: m}
	buf := make([]byte, 1<<20)
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			idle.Reset(downloadIdleTimeout)
			if _, err := f.Write(buf[:n]); err != nil {
				return time.Time{}, err
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			if c := context.Cause(ctx); errors.Is(c, errIdle) {
				return time.Time{}, errIdle
			}
			return time.Time{}, rerr
		}
	}
	if err := f.Sync(); err != nil {
		return time.Time{}, err
	}
	if total > 0 && m.bytes() != total {
		return time.Time{}, fmt.Errorf("GET %s: got %d of %d bytes: %w", srcURL, m.bytes(), total, errShort)
	}
	m.finish()
	return lastModified(resp), nil
}

// parseContentRange reads "bytes <start>-<end>/<size>" or "bytes */<size>".
func parseContentRange(v string) (start, size int64, ok bool) {
	rest, found := strings.CutPrefix(v, "bytes ")
	if !found {
		return 0, 0, false
	}
	rng, sz, found := strings.Cut(rest, "/")
	if !found {
		return 0, 0, false
	}
	size, err := strconv.ParseInt(sz, 10, 64)
	if err != nil {
		return 0, 0, false
	}
	if rng == "*" {
		return 0, size, true
	}
	s, _, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, false
	}
	start, err = strconv.ParseInt(s, 10, 64)
	return start, size, err == nil
}

func lastModified(resp *http.Response) time.Time {
	t, err := http.ParseTime(resp.Header.Get("Last-Modified"))
	if err != nil {
		return time.Time{}
	}
	return t
}
