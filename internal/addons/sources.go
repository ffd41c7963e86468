package addons

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/dirhash"

	"github.com/capilab/capilab/internal/fsutil"
	"github.com/capilab/capilab/internal/logging"
	"github.com/capilab/capilab/internal/versions"
	"github.com/capilab/capilab/internal/wait"
)

// ModuleFetcher puts module@version into the module cache and returns its
// (read-only) directory. modbuild.Builder is one (ModuleDir: `go mod
// download`, which checks the checksum database).
type ModuleFetcher interface {
	ModuleDir(ctx context.Context, module, version string) (string, error)
}

// Sources reads addon sources: Go modules (verified against the go.sum
// hash pinned in versions.yaml) and downloads (cached; verified against the
// pinned sha256 or the one recorded at the first download).
type Sources struct {
	Modules ModuleFetcher
	// CacheDir holds downloads and their recorded checksums (required for
	// download sources).
	CacheDir string
	// HTTP fetches downloads (nil: a client with a 2-minute timeout).
	HTTP *http.Client
	Log  *slog.Logger
	// Now is the clock of checksum records (nil: time.Now).
	Now func() time.Time
	// Backoff is the first pause between download attempts (default 2s,
	// doubling).
	Backoff time.Duration

	mu       sync.Mutex
	verified map[string]string // module@version -> dir, verified this process
}

func (s *Sources) log() *slog.Logger {
	if s.Log == nil {
		return logging.Discard()
	}
	return s.Log
}

// Module returns the directory of module@version after checking its
// content against the pinned go.sum hash.
func (s *Sources) Module(ctx context.Context, module, version, sum string) (string, error) {
	key := module + "@" + version
	s.mu.Lock()
	dir, ok := s.verified[key]
	s.mu.Unlock()
	if ok {
		return dir, nil
	}
	if s.Modules == nil {
		return "", fmt.Errorf("%s: no module fetcher configured", key)
	}
	if !strings.HasPrefix(sum, "h1:") {
		return "", fmt.Errorf("%s: no pinned go.sum hash (h1:...) in manifests/versions.yaml", key)
	}
	dir, err := s.Modules.ModuleDir(ctx, module, version)
	if err != nil {
		return "", fmt.Errorf("module %s (from the Go module proxy): %w", key, err)
	}
	got, err := dirhash.HashDir(dir, key, dirhash.Hash1)
	if err != nil {
		return "", fmt.Errorf("module %s: hashing %s: %w", key, dir, err)
	}
	if got != sum {
		return "", &ChecksumError{Source: "module " + key, Got: got, Want: sum, Where: "pinned in manifests/versions.yaml"}
	}
	s.mu.Lock()
	if s.verified == nil {
		s.verified = map[string]string{}
	}
	s.verified[key] = dir
	s.mu.Unlock()
	return dir, nil
}

// ChecksumError is a source whose content does not match its checksum: it
// is refused.
type ChecksumError struct {
	Source    string
	Got, Want string
	Where     string // where Want comes from
}

func (e *ChecksumError) Error() string {
	return fmt.Sprintf("%s: checksum %s does not match %s (%s): refusing it", e.Source, e.Got, e.Want, e.Where)
}

// record is what the cache keeps about a download's checksum.
type record struct {
	URL      string    `json:"url"`
	SHA256   string    `json:"sha256"`
	Recorded time.Time `json:"recorded"`
}

// downloadPaths are a URL's cache file and checksum record.
func (s *Sources) downloadPaths(url string) (file, rec string) {
	sum := sha256.Sum256([]byte(url))
	base := hex.EncodeToString(sum[:])[:16] + "-" + path.Base(url)
	dir := filepath.Join(s.CacheDir, "downloads")
	return filepath.Join(dir, base), filepath.Join(dir, base+".sha256.json")
}

// Download returns the content of url: from the cache when it is there
// and verifies, else fetched (with retries on transient errors). The
// content must match pinnedSHA256 when it is set, else the checksum the
// first download recorded; the first download of an unpinned source
// records its checksum and logs it.
func (s *Sources) Download(ctx context.Context, url, pinnedSHA256 string) ([]byte, error) {
	if s.CacheDir == "" {
		return nil, fmt.Errorf("download %s: no cache directory configured", url)
	}
	file, recPath := s.downloadPaths(url)
	want, where := pinnedSHA256, "pinned in manifests/versions.yaml"
	var rec record
	if data, err := os.ReadFile(recPath); err == nil {
		if err := json.Unmarshal(data, &rec); err != nil || rec.URL != url || rec.SHA256 == "" {
			return nil, fmt.Errorf("download %s: checksum record %s is damaged; remove it (and %s) to record afresh", url, recPath, file)
		}
		if want == "" {
			want, where = rec.SHA256, "recorded at the first download on "+rec.Recorded.UTC().Format(time.RFC3339)+" in "+recPath
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}

	if data, err := os.ReadFile(file); err == nil {
		if want == "" {
			return nil, fmt.Errorf("download %s: cached copy %s has no checksum record; remove it to download again", url, file)
		}
		if got := sha256Hex(data); got != want {
			return nil, &ChecksumError{Source: "cached download " + file + " of " + url, Got: got, Want: want, Where: where}
		}
		return data, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}

	data, err := s.fetch(ctx, url)
	if err != nil {
		return nil, err
	}
	got := sha256Hex(data)
	if want != "" && got != want {
		return nil, &ChecksumError{Source: "download " + url, Got: got, Want: want, Where: where}
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return nil, err
	}
	if want == "" {
		now := time.Now
		if s.Now != nil {
			now = s.Now
		}
		rec = record{URL: url, SHA256: got, Recorded: now().UTC()}
		j, _ := json.MarshalIndent(rec, "", "  ")
		if err := fsutil.WriteAtomic(recPath, j, 0o644); err != nil {
			return nil, err
		}
		s.log().Info("first download of an addon source: sha256 recorded, later uses are verified against it", "url", url, "sha256", got, "record", recPath)
	}
	if err := fsutil.WriteAtomic(file, data, 0o644); err != nil {
		return nil, err
	}
	return data, nil
}

// fetch GETs url, retrying transient failures (network errors, 429, 5xx)
// three times with backoff.
func (s *Sources) fetch(ctx context.Context, url string) ([]byte, error) {
	client := s.HTTP
	if client == nil {
		client = &http.Client{Timeout: 2 * time.Minute}
	}
	pause := s.Backoff
	if pause <= 0 {
		pause = 2 * time.Second
	}
	var last error
	for attempt := range 4 {
		if attempt > 0 {
			if err := wait.Sleep(ctx, pause); err != nil {
				return nil, err
			}
			pause *= 2
		}
		data, transient, err := get(ctx, client, url)
		if err == nil {
			return data, nil
		}
		last = err
		if !transient || ctx.Err() != nil {
			break
		}
		s.log().Warn("download failed, retrying", "url", url, "attempt", attempt+1, "err", err)
	}
	return nil, fmt.Errorf("download %s (the addon's source is only a download; this machine must reach it, or the file must be in the cache): %w", url, last)
}

func get(ctx context.Context, client *http.Client, url string) (data []byte, transient bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, false, err
	}
	resp, err := client.Do(req)
	if err != nil {
		var dns *net.DNSError
		if errors.As(err, &dns) && dns.IsNotFound {
			return nil, false, err // the name does not resolve here: retrying will not change that
		}
		return nil, true, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500, fmt.Errorf("HTTP %s", resp.Status)
	}
	data, err = io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	return data, true, err
}

func sha256Hex(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// URL is a download source's URL for a version.
func URL(src versions.AddonSource, version string) string {
	return strings.ReplaceAll(src.URL, "{version}", version)
}
