package imagebuild

import (
	"archive/tar"
	"io"
	"os"
	"path"
	"slices"
	"strings"
	"time"
)

// entry is one file of an image's root file system.
type entry struct {
	Name string // path inside the image, without leading slash
	Mode int64  // permission bits (and setuid etc.)
	Data []byte // content of a regular file, unless Src is set
	Src  string // host file to copy
	Link string // symlink target (Name is a symlink)
	Dir  bool
}

var epoch = time.Unix(0, 0)

// writeTar writes a root file system as a tar stream, parent directories
// first. Owners are root, times are zero: the same inputs give the same
// bytes.
func writeTar(w io.Writer, entries []entry) error {
	tw := tar.NewWriter(w)
	dirs := map[string]bool{"": true}
	var mkdirs func(dir string) error
	mkdirs = func(dir string) error {
		if dirs[dir] {
			return nil
		}
		if err := mkdirs(parent(dir)); err != nil {
			return err
		}
		dirs[dir] = true
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: 0o755, ModTime: epoch, Format: tar.FormatPAX})
	}
	sorted := slices.Clone(entries)
	slices.SortStableFunc(sorted, func(a, b entry) int { return strings.Compare(clean(a.Name), clean(b.Name)) })
	for _, e := range sorted {
		name := clean(e.Name)
		if err := mkdirs(parent(name)); err != nil {
			return err
		}
		h := &tar.Header{Name: name, Mode: e.Mode, ModTime: epoch, Format: tar.FormatPAX}
		var data []byte
		switch {
		case e.Dir:
			if dirs[name] {
				continue
			}
			dirs[name] = true
			h.Typeflag, h.Name = tar.TypeDir, name+"/"
			if h.Mode == 0 {
				h.Mode = 0o755
			}
		case e.Link != "":
			h.Typeflag, h.Linkname, h.Mode = tar.TypeSymlink, e.Link, 0o777
		default:
			data = e.Data
			if e.Src != "" {
				b, err := os.ReadFile(e.Src)
				if err != nil {
					return err
				}
				data = b
			}
			h.Typeflag, h.Size = tar.TypeReg, int64(len(data))
			if h.Mode == 0 {
				h.Mode = 0o644
			}
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if len(data) > 0 {
			if _, err := tw.Write(data); err != nil {
				return err
			}
		}
	}
	return tw.Close()
}

func clean(name string) string {
	return strings.TrimPrefix(strings.TrimSuffix(path.Clean("/"+name), "/"), "/")
}

func parent(name string) string {
	p := path.Dir(name)
	if p == "." || p == "/" {
		return ""
	}
	return p
}
