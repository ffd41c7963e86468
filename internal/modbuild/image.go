package modbuild

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/capilab/capilab/internal/command"
)

// CacheKeyLabel is the label on every image capilab builds; its value is
// the image's content key.
const CacheKeyLabel = "dev.capilab.cache-key"

// NonRootUID is the user the static base image provides (as distroless's
// "nonroot").
const NonRootUID = 65532

// Image is a container image to assemble.
type Image struct {
	// Ref is the reference to tag, normally the upstream name.
	Ref string
	// From is a base image (already in the engine); empty means a static
	// base: CA certificates, passwd/group with root and nonroot (65532), /tmp.
	From  string
	Files []File
	// Image config.
	Entrypoint []string
	Cmd        []string
	User       string
	Env        []string
	WorkDir    string
	Labels     map[string]string
}

// File is one file of an image: Source (a host path) or Data.
type File struct {
	Path   string // absolute path in the image
	Source string
	Data   []byte
	Mode   fs.FileMode // default 0644, 0755 for Source files that are executable
}

// EnsureImage builds img unless an image of that reference with the same
// content key exists; it reports whether it built.
func (b *Builder) EnsureImage(ctx context.Context, img Image) (bool, error) {
	if img.Ref == "" {
		return false, errors.New("modbuild: image Ref is required")
	}
	key, err := b.imageKey(ctx, img)
	if err != nil {
		return false, fmt.Errorf("image %s: %w", img.Ref, err)
	}
	have, found, err := b.imageLabel(ctx, img.Ref)
	if err != nil {
		return false, err
	}
	if found && have == key {
		b.log().Debug("image is current", "image", img.Ref)
		return false, nil
	}
	unlock, err := b.lock(ctx, "image-"+key[:16])
	if err != nil {
		return false, err
	}
	defer unlock()
	if have, found, err := b.imageLabel(ctx, img.Ref); err == nil && found && have == key {
		return false, nil
	}
	start := time.Now()
	if img.From == "" {
		err = b.importImage(ctx, img, key)
	} else {
		err = b.buildImage(ctx, img, key)
	}
	if err != nil {
		return false, fmt.Errorf("image %s: %w", img.Ref, err)
	}
	b.log().Info("image built", "image", img.Ref, "elapsed", time.Since(start).Round(100*time.Millisecond))
	return true, nil
}

func (b *Builder) docker() string {
	if b.Docker == "" {
		return "docker"
	}
	return b.Docker
}

func (b *Builder) dockerCmd(args ...string) *command.Cmd {
	return command.New(b.docker(), args...).WithEnv(b.Env, "DOCKER_BUILDKIT=0")
}

// imageLabel reads the cache-key label of ref; found is false when there is
// no such image.
func (b *Builder) imageLabel(ctx context.Context, ref string) (string, bool, error) {
	out, err := b.dockerCmd("image", "inspect", "--format", "{{json .Config.Labels}}", ref).CombinedOutput(ctx)
	if err != nil {
		if strings.Contains(string(out), "No such image") {
			return "", false, nil
		}
		return "", false, err
	}
	var labels map[string]string
	if err := json.Unmarshal([]byte(strings.TrimSpace(string(out))), &labels); err != nil {
		return "", true, nil
	}
	return labels[CacheKeyLabel], true, nil
}

// ImageID is the ID of an image in the engine.
func (b *Builder) ImageID(ctx context.Context, ref string) (string, error) {
	out, err := b.dockerCmd("image", "inspect", "--format", "{{.Id}}", ref).Output(ctx)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(out)), nil
}

func (b *Builder) imageKey(ctx context.Context, img Image) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "v1\nref=%s\nentrypoint=%q\ncmd=%q\nuser=%s\nenv=%q\nworkdir=%s\n", img.Ref, img.Entrypoint, img.Cmd, img.User, img.Env, img.WorkDir)
	if img.From != "" {
		id, err := b.ImageID(ctx, img.From)
		if err != nil {
			return "", fmt.Errorf("base image %s: %w", img.From, err)
		}
		fmt.Fprintf(h, "from=%s %s\n", img.From, id)
	} else {
		fmt.Fprintf(h, "from=static-base-v1\n")
	}
	for _, k := range sortedKeys(img.Labels) {
		fmt.Fprintf(h, "label %s=%s\n", k, img.Labels[k])
	}
	for _, f := range img.Files {
		data, mode, err := f.content()
		if err != nil {
			return "", err
		}
		sum := sha256.Sum256(data)
		fmt.Fprintf(h, "file %s %o %x\n", f.Path, mode, sum)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func (f File) content() ([]byte, fs.FileMode, error) {
	mode := f.Mode
	if f.Source == "" {
		if mode == 0 {
			mode = 0o644
		}
		return f.Data, mode, nil
	}
	data, err := os.ReadFile(f.Source)
	if err != nil {
		return nil, 0, err
	}
	if mode == 0 {
		mode = 0o644
		if st, err := os.Stat(f.Source); err == nil && st.Mode()&0o111 != 0 {
			mode = 0o755
		}
	}
	return data, mode, nil
}

// changes are the image config as `docker import --change` lines.
func changes(img Image, key string) []string {
	var c []string
	if len(img.Entrypoint) > 0 {
		j, _ := json.Marshal(img.Entrypoint)
		c = append(c, "ENTRYPOINT "+string(j))
	}
	if len(img.Cmd) > 0 {
		j, _ := json.Marshal(img.Cmd)
		c = append(c, "CMD "+string(j))
	}
	if img.User != "" {
		c = append(c, "USER "+img.User)
	}
	if img.WorkDir != "" {
		c = append(c, "WORKDIR "+img.WorkDir)
	}
	env := img.Env
	if img.From == "" {
		env = append([]string{"PATH=/usr/local/bin:/usr/bin:/bin", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"}, env...)
	}
	for _, e := range env {
		c = append(c, "ENV "+e)
	}
	labels := map[string]string{CacheKeyLabel: key}
	for k, v := range img.Labels {
		labels[k] = v
	}
	for _, k := range sortedKeys(labels) {
		c = append(c, fmt.Sprintf("LABEL %s=%q", k, labels[k]))
	}
	return c
}

func (b *Builder) importImage(ctx context.Context, img Image, key string) error {
	args := []string{"import"}
	for _, ch := range changes(img, key) {
		args = append(args, "--change", ch)
	}
	args = append(args, "-", img.Ref)
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeRootfs(pw, img)) }()
	defer pr.Close()
	return b.dockerCmd(args...).WithStdin(pr).Run(ctx)
}

// buildImage builds FROM a base image: a Dockerfile that copies the files
// and sets the config, with the build context streamed on stdin.
func (b *Builder) buildImage(ctx context.Context, img Image, key string) error {
	var df strings.Builder
	fmt.Fprintf(&df, "FROM %s\n", img.From)
	if len(img.Files) > 0 {
		df.WriteString("COPY rootfs/ /\n")
	}
	for _, ch := range changes(img, key) {
		df.WriteString(ch + "\n")
	}
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		err := addFile(tw, "Dockerfile", []byte(df.String()), 0o644, 0, 0)
		if err == nil {
			err = writeFiles(tw, "rootfs", img.Files)
		}
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	}()
	defer pr.Close()
	return b.dockerCmd("build", "-q", "-t", img.Ref, "-").WithStdin(pr).Run(ctx)
}

// writeRootfs writes the static base and the image's files as a tar.
func writeRootfs(w io.Writer, img Image) error {
	tw := tar.NewWriter(w)
	base := []struct {
		path string
		data string
		mode fs.FileMode
	}{
		{"etc/passwd", fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", NonRootUID, NonRootUID), 0o644},
		{"etc/group", fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", NonRootUID), 0o644},
		{"etc/nsswitch.conf", "hosts: files dns\n", 0o644},
	}
	for _, d := range []string{"etc", "etc/ssl", "etc/ssl/certs", "root"} {
		if err := addDir(tw, d, 0o755, 0); err != nil {
			return err
		}
	}
	if err := addDir(tw, "tmp", 0o1777, 0); err != nil {
		return err
	}
	if err := addDir(tw, "home", 0o755, 0); err != nil {
		return err
	}
	if err := addDir(tw, "home/nonroot", 0o755, NonRootUID); err != nil {
		return err
	}
	for _, f := range base {
		if err := addFile(tw, f.path, []byte(f.data), f.mode, 0, 0); err != nil {
			return err
		}
	}
	if certs, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt"); err == nil {
		if err := addFile(tw, "etc/ssl/certs/ca-certificates.crt", certs, 0o644, 0, 0); err != nil {
			return err
		}
	}
	if err := writeFiles(tw, "", img.Files); err != nil {
		return err
	}
	return tw.Close()
}

// writeFiles adds files (and their parent directories) under prefix.
func writeFiles(tw *tar.Writer, prefix string, files []File) error {
	dirs := map[string]bool{"etc": true, "etc/ssl": true, "etc/ssl/certs": true, "tmp": true, "home": true, "home/nonroot": true, "root": true}
	for _, f := range files {
		data, mode, err := f.content()
		if err != nil {
			return err
		}
		rel := strings.TrimPrefix(path.Clean(f.Path), "/")
		if prefix != "" {
			rel = prefix + "/" + rel
		}
		var parents []string
		for d := path.Dir(rel); d != "." && d != "/"; d = path.Dir(d) {
			parents = append(parents, d)
		}
		for i := len(parents) - 1; i >= 0; i-- {
			if !dirs[parents[i]] {
				dirs[parents[i]] = true
				if err := addDir(tw, parents[i], 0o755, 0); err != nil {
					return err
				}
			}
		}
		if err := addFile(tw, rel, data, mode, 0, 0); err != nil {
			return err
		}
	}
	return nil
}

var epoch = time.Unix(0, 0)

func addDir(tw *tar.Writer, name string, mode fs.FileMode, uid int) error {
	return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: int64(mode), Uid: uid, Gid: uid, ModTime: epoch})
}

func addFile(tw *tar.Writer, name string, data []byte, mode fs.FileMode, uid, gid int) error {
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: int64(mode), Size: int64(len(data)), Uid: uid, Gid: gid, ModTime: epoch}); err != nil {
		return err
	}
	_, err := tw.Write(data)
	return err
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
