package image

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

const gib = 1 << 30

// disk is what the upload needs to know about an image file.
type disk struct {
	format      string // qcow2 or raw (Glance disk_format)
	virtualSize int64  // bytes the guest sees
}

// minDiskGiB is Glance's min_disk for a virtual size: whole GiB, rounded up.
func (d disk) minDiskGiB() int {
	return int(max((d.virtualSize+gib-1)/gib, 1))
}

// inspectDisk reads the format and virtual size from the file's header,
// without qemu-img: qcow2 (magic "QFI\xfb", size at byte 24) or raw. A qcow2
// that refers to other files (backing file, external data file) is refused:
// converting or booting it would read files outside the image.
func inspectDisk(p string) (disk, error) {
	f, err := os.Open(p)
	if err != nil {
		return disk{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return disk{}, err
	}
	hdr := make([]byte, 512)
	n, err := io.ReadFull(f, hdr)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return disk{}, err
	}
	hdr = hdr[:n]
	switch {
	case bytes.HasPrefix(hdr, []byte("QFI\xfb")):
		if len(hdr) < 104 {
			return disk{}, errors.New("truncated qcow2 header")
		}
		version := binary.BigEndian.Uint32(hdr[4:8])
		if version != 2 && version != 3 {
			return disk{}, fmt.Errorf("qcow2 version %d is not supported", version)
		}
		if binary.BigEndian.Uint64(hdr[8:16]) != 0 {
			return disk{}, errors.New("qcow2 image has a backing file; refusing it")
		}
		if version == 3 && binary.BigEndian.Uint64(hdr[72:80])&(1<<2) != 0 {
			return disk{}, errors.New("qcow2 image has an external data file; refusing it")
		}
		size := int64(binary.BigEndian.Uint64(hdr[24:32]))
		if size <= 0 {
			return disk{}, errors.New("qcow2 image has no virtual size")
		}
		return disk{format: "qcow2", virtualSize: size}, nil
	case bytes.HasPrefix(hdr, []byte("KDMV")), bytes.HasPrefix(hdr, []byte("vhdxfile")),
		bytes.Contains(hdr[:min(len(hdr), 64)], []byte("VirtualBox Disk Image")):
		return disk{}, errors.New("not a qcow2 or raw image (vmdk, vhdx or vdi): convert it first")
	}
	return disk{format: "raw", virtualSize: fi.Size()}, nil
}

// convertToRaw converts a qcow2 source to a sparse raw file in the cache
// (qemu-img convert -O raw -S 4k, as SCS does), reporting qemu-img's
// progress. A complete conversion left by an interrupted run is reused.
func (r *registration) convertToRaw(ctx context.Context, src source, d disk) (string, error) {
	base := strings.TrimSuffix(filepath.Base(src.path), filepath.Ext(src.path))
	dst := filepath.Join(r.spec.CacheDir, base+"-"+src.sha256[:16]+".raw")
	if fi, err := os.Stat(dst); err == nil && fi.Size() == d.virtualSize {
		r.log.Info("reusing the raw conversion of an earlier run", "file", dst)
		return dst, nil
	}
	qemu, err := exec.LookPath(r.spec.QemuImg)
	if err != nil {
		return "", fmt.Errorf("converting to raw (kube_image_raw) needs qemu-img, from Debian's qemu-utils: %w", err)
	}
	if err := os.MkdirAll(r.spec.CacheDir, 0o700); err != nil {
		return "", fmt.Errorf("image cache %s: %w", r.spec.CacheDir, err)
	}
	part := dst + ".part"
	defer os.Remove(part) // no-op after the rename
	cmd := exec.CommandContext(ctx, qemu, "convert", "-p", "-f", "qcow2", "-O", "raw", "-S", "4k", src.path, part)
	cmd.WaitDelay = 5 * time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", err
	}
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("qemu-img convert: %w", err)
	}
	r.reportConvertProgress(stdout)
	if err := cmd.Wait(); err != nil {
		if ctx.Err() != nil {
			return "", context.Cause(ctx)
		}
		return "", fmt.Errorf("qemu-img convert %s to raw: %w: %s", src.path, err, strings.TrimSpace(stderr.String()))
	}
	fi, err := os.Stat(part)
	if err != nil {
		return "", err
	}
	if fi.Size() != d.virtualSize {
		return "", fmt.Errorf("qemu-img convert %s: raw file has %d bytes, the image's virtual size is %d", src.path, fi.Size(), d.virtualSize)
	}
	if err := os.Rename(part, dst); err != nil {
		return "", err
	}
	return dst, nil
}

// reportConvertProgress reads qemu-img -p output ("    (12.34/100%)\r")
// and logs it every ProgressEvery.
func (r *registration) reportConvertProgress(out io.Reader) {
	sc := bufio.NewScanner(out)
	sc.Split(splitCR)
	last := time.Now()
	pct := 0.0
	for sc.Scan() {
		t := strings.TrimSpace(sc.Text())
		t = strings.TrimPrefix(t, "(")
		if v, _, ok := strings.Cut(t, "/100%"); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				pct = f
			}
		}
		if time.Since(last) >= r.spec.ProgressEvery {
			last = time.Now()
			r.step.Progress("converting to raw", "percent", fmt.Sprintf("%.1f%%", pct))
		}
	}
	r.step.Progress("converting to raw done")
}

// splitCR splits on \r or \n, as progress lines end with \r.
func splitCR(data []byte, atEOF bool) (int, []byte, error) {
	if i := bytes.IndexAny(data, "\r\n"); i >= 0 {
		return i + 1, data[:i], nil
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}
