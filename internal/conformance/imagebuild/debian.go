package imagebuild

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// need installs a Debian package when its command is missing.
func (b *Builder) need(ctx context.Context, command, pkg string) error {
	path := ""
	for _, kv := range b.Env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range append(filepath.SplitList(path), "/usr/sbin", "/sbin") {
		if fi, err := os.Stat(filepath.Join(dir, command)); err == nil && !fi.IsDir() {
			return nil
		}
	}
	b.log().Info("installing "+pkg+" from Debian's archive", "for", command)
	install := func() error {
		return b.cmd("apt-get", "install", "-y", "-qq", "--no-install-recommends", pkg).WithEnv(b.Env, "DEBIAN_FRONTEND=noninteractive").Run(ctx)
	}
	if err := install(); err != nil {
		if err := b.cmd("apt-get", "update", "-qq").Run(ctx); err != nil {
			return err
		}
		return install()
	}
	return nil
}

// debianMirror is the host's own Debian mirror (deb822 or one-line
// sources), never a fixed host.
func debianMirror() (string, error) {
	files, _ := filepath.Glob("/etc/apt/sources.list.d/*.sources")
	for _, f := range files {
		data, _ := os.ReadFile(f)
		for _, l := range strings.Split(string(data), "\n") {
			if u, ok := strings.CutPrefix(strings.TrimSpace(l), "URIs:"); ok {
				for _, uri := range strings.Fields(u) {
					if !strings.Contains(uri, "security") {
						return uri, nil
					}
				}
			}
		}
	}
	lists, _ := filepath.Glob("/etc/apt/sources.list.d/*.list")
	for _, f := range append([]string{"/etc/apt/sources.list"}, lists...) {
		data, _ := os.ReadFile(f)
		for _, l := range strings.Split(string(data), "\n") {
			fl := strings.Fields(l)
			if len(fl) < 3 || fl[0] != "deb" {
				continue
			}
			for _, x := range fl[1:] {
				if strings.Contains(x, "://") && !strings.Contains(x, "security") {
					return x, nil
				}
			}
		}
	}
	return "", errors.New("no Debian mirror in /etc/apt/sources.list*")
}

// unmountBelow lazily unmounts what an interrupted debootstrap left mounted
// (proc, sys) below dir.
func unmountBelow(ctx context.Context, b *Builder, dir string) {
	data, err := os.ReadFile("/proc/mounts")
	if err != nil {
		return
	}
	var mounts []string
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) > 1 && strings.HasPrefix(f[1], dir+"/") {
			mounts = append(mounts, f[1])
		}
	}
	slices.Sort(mounts)
	slices.Reverse(mounts)
	for _, m := range mounts {
		_ = b.cmd("umount", "-l", m).Run(ctx)
	}
}

// busyboxBase imports a busybox root file system from Debian's
// busybox-static: the static binary, one link per applet it lists, users
// and a /tmp.
func (b *Builder) busyboxBase(ctx context.Context) (string, error) {
	dir := filepath.Join(b.CacheDir, "busybox")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	deb, err := b.download(ctx, dir, "busybox-static")
	if err != nil {
		return "", err
	}
	sum, err := fileHash(deb)
	if err != nil {
		return "", err
	}
	key := hashOf(recipe, "busybox", sum)
	image := BasePrefix + "busybox:" + key[:16]
	if b.imported(ctx, image, key) {
		return image, nil
	}
	x := filepath.Join(dir, "x")
	os.RemoveAll(x)
	defer os.RemoveAll(x)
	if err := b.cmd("dpkg-deb", "-x", deb, x).Run(ctx); err != nil {
		return "", err
	}
	var bin string
	_ = filepath.WalkDir(x, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && d.Name() == "busybox" && filepath.Base(filepath.Dir(p)) == "bin" && bin == "" {
			bin = p
		}
		return nil
	})
	if bin == "" {
		return "", fmt.Errorf("%s holds no bin/busybox", deb)
	}
	list, err := b.cmd(bin, "--list-full").Output(ctx)
	if err != nil {
		return "", err
	}
	entries := []entry{
		{Name: "bin/busybox", Src: bin, Mode: 0o755},
		{Name: "etc/passwd", Data: []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n")},
		{Name: "etc/group", Data: []byte("root:x:0:\nnobody:x:65534:\n")},
		{Name: "tmp", Dir: true, Mode: 0o1777},
		{Name: "root", Dir: true, Mode: 0o700},
		{Name: "home", Dir: true},
	}
	for _, l := range strings.Split(string(list), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || l == "bin/busybox" || strings.Contains(l, "..") {
			continue
		}
		entries = append(entries, entry{Name: l, Link: "/bin/busybox"})
	}
	err = b.importRootfs(ctx, image, key, []string{"ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin"}, func(w io.Writer) error { return writeTar(w, entries) })
	return image, err
}

// download fetches a package of the host's Debian release into dir (apt-get
// download), once; it returns the .deb's path.
func (b *Builder) download(ctx context.Context, dir, pkg string) (string, error) {
	find := func() string {
		m, _ := filepath.Glob(filepath.Join(dir, pkg+"_*.deb"))
		if len(m) == 0 {
			return ""
		}
		slices.Sort(m)
		return m[len(m)-1]
	}
	if deb := find(); deb != "" {
		return deb, nil
	}
	get := func() error { return b.cmd("apt-get", "download", pkg).WithDir(dir).Run(ctx) }
	if err := get(); err != nil {
		if err := b.cmd("apt-get", "update", "-qq").Run(ctx); err != nil {
			return "", err
		}
		if err := get(); err != nil {
			return "", err
		}
	}
	if deb := find(); deb != "" {
		return deb, nil
	}
	return "", fmt.Errorf("apt-get download %s left no .deb in %s", pkg, dir)
}
