package localcluster

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

//go:embed node-rootfs.sh
var rootfsScript []byte

//go:embed all:rootfs
var overlay embed.FS

// Image names the node units use. The stand-ins carry the names the
// units pull, so nothing is pulled.
const (
	EtcdImage     = "quay.io/coreos/etcd:v3.5.35-amd64"
	FlannelImage  = "quay.io/coreos/flannel:v0.14.0"
	OpenRestyTag  = "openresty/openresty:1.25.3.2-bookworm"
	nodeBaseRepo  = "deployctl/node-base"
	nodeImageRepo = "deployctl/node"
)

// Parts are the files the local cluster is built from.
type Parts struct {
	// Tools holds prebuilt fleetd, fleetctl, flanneld and coreos-cloudinit
	// (each gzip'ed, SHA256SUMS of the unpacked files); any of them may be
	// absent. Absent fleetd, fleetctl and flanneld are downloaded from
	// their pinned upstream releases; coreos-cloudinit has none.
	Tools string
	// FleetSHA256 pins fleet-v1.0.0-linux-amd64.tar.gz when fleetd and
	// fleetctl are downloaded (default: pinnedFleetSHA256).
	FleetSHA256 string
	// FlannelSHA256 pins flannel v0.14.0's flanneld-amd64 when flanneld is
	// downloaded (default: pinnedFlannelSHA256).
	FlannelSHA256 string
	// DownloadBase replaces https://github.com in the release URLs (a
	// mirror laid out as GitHub's release downloads).
	DownloadBase string
	// client fetches the releases (nil: http.DefaultClient).
	client *http.Client
	// Deployctl is a static linux/amd64 deployctl (the nodes' sdnotify-proxy).
	Deployctl string
	// Registrar is the static linux/amd64 registrar shipped to the nodes.
	Registrar string
	// Etcd is a static etcd 3.5 server (compat/etcd35/etcd).
	Etcd string
	// Cache holds what is slow to build, by content (~/.cache/deployctl).
	Cache string
	// AppImages are extra images loaded into every node (the app's).
	AppImages []string
}

// unpackChecked unpacks dir's NAME.gz files into cache/tools/SUM/NAME,
// each checked against dir's SHA256SUMS (of the unpacked files), and
// returns their paths by name; an unpacked file already there is reused.
func unpackChecked(dir, cache string, names ...string) (map[string]string, error) {
	want, err := readSums(filepath.Join(dir, "SHA256SUMS"))
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, name := range names {
		sum, ok := want[name]
		if !ok {
			return nil, fmt.Errorf("%s is not in %s/SHA256SUMS", name, dir)
		}
		if out[name], err = unpackCached(filepath.Join(dir, name+".gz"), cache, name, sum); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// unpack gunzips src into dst through dst.tmp, keeping it only if its
// SHA-256 is sum.
func unpack(src, dst, sum string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	tmp := dst + ".tmp"
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o755)
	if err != nil {
		return err
	}
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(out, h), zr); err != nil {
		out.Close()
		return fmt.Errorf("%s: %w", src, err)
	}
	if err := out.Close(); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sum {
		os.Remove(tmp)
		return fmt.Errorf("%s: SHA-256 %s, SHA256SUMS says %s: refusing a file that is not the one checked", src, got, sum)
	}
	return os.Rename(tmp, dst)
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// images are what Build made: the node image and the tarball of the
// images every node loads.
type images struct {
	Node     string
	InnerTar string
	FleetTar string
	FleetSHA string
}

// build makes (or finds, by content) every image the cluster needs.
func (p Parts) build(ctx context.Context, progress func(string, ...any)) (*images, error) {
	tools, err := p.tools(ctx, progress)
	if err != nil {
		return nil, err
	}
	for _, f := range []struct{ flag, path string }{{"deployctl", p.Deployctl}, {"registrar", p.Registrar}, {"etcd", p.Etcd}} {
		if _, err := os.Stat(f.path); err != nil {
			return nil, fmt.Errorf("%s binary: %w (make e2e builds bin/deployctl, bin/registrar and bin/etcd)", f.flag, err)
		}
	}
	base, err := p.nodeBase(ctx, progress)
	if err != nil {
		return nil, err
	}
	im := &images{}
	if im.Node, err = p.nodeImage(ctx, base, tools["coreos-cloudinit"]); err != nil {
		return nil, err
	}
	progress("node image %s", im.Node)
	inner := []string{}
	for _, b := range []struct {
		tag string
		df  string
		ctx map[string]string
	}{
		{EtcdImage, "FROM scratch\nCOPY etcd /usr/local/bin/etcd\nENTRYPOINT [\"/usr/local/bin/etcd\"]\n", map[string]string{"etcd": p.Etcd}},
		{FlannelImage, "FROM " + base + "\nCOPY flanneld mk-docker-opts.sh /opt/bin/\nENTRYPOINT [\"/opt/bin/flanneld\"]\n",
			map[string]string{"flanneld": tools["flanneld"], "mk-docker-opts.sh": "embed:rootfs-images/mk-docker-opts.sh"}},
		{OpenRestyTag, "FROM " + base + "\nCOPY nginx.conf /usr/local/openresty/nginx/conf/nginx.conf\n" +
			"RUN mkdir -p /usr/local/openresty/nginx/sbin /etc/nginx/conf.d && ln -sf /usr/sbin/nginx /usr/local/openresty/nginx/sbin/nginx && ln -sf /usr/local/openresty/nginx/conf/nginx.conf /etc/nginx/nginx.conf\n" +
			"ENV PATH=/usr/local/openresty/nginx/sbin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\nSTOPSIGNAL SIGQUIT\nCMD [\"nginx\", \"-g\", \"daemon off;\"]\n",
			map[string]string{"nginx.conf": "embed:rootfs-images/openresty-nginx.conf"}},
	} {
		if err := buildImage(ctx, b.tag, b.df, b.ctx); err != nil {
			return nil, err
		}
		inner = append(inner, b.tag)
	}
	inner = append(inner, p.AppImages...)
	if im.InnerTar, err = p.saveImages(ctx, inner); err != nil {
		return nil, err
	}
	if im.FleetTar, im.FleetSHA, err = p.fleetRelease(tools); err != nil {
		return nil, err
	}
	return im, nil
}

// nodeBase imports the Debian root filesystem node-rootfs.sh builds,
// cached by the script's hash.
func (p Parts) nodeBase(ctx context.Context, progress func(string, ...any)) (string, error) {
	sum := sha256.Sum256(rootfsScript)
	key := hex.EncodeToString(sum[:])[:16]
	tag := nodeBaseRepo + ":" + key
	if imageExists(ctx, tag) {
		return tag, nil
	}
	tarball := filepath.Join(p.Cache, "node-base", key+".tar")
	if _, err := os.Stat(tarball); err != nil {
		if err := os.MkdirAll(filepath.Dir(tarball), 0o755); err != nil {
			return "", err
		}
		progress("building the node's root filesystem with debootstrap (once; cached in %s)", tarball)
		bctx, cancel := context.WithTimeout(ctx, 20*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(bctx, "bash", "-s", tarball)
		cmd.Stdin = bytes.NewReader(rootfsScript)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			return "", fmt.Errorf("node root filesystem: %w\n%s", err, out.String())
		}
	}
	progress("importing the node's root filesystem as %s", tag)
	if _, err := docker(ctx, "import", tarball, tag); err != nil {
		return "", err
	}
	return tag, nil
}

// nodeImage adds the stand-ins, coreos-cloudinit and deployctl to the base.
func (p Parts) nodeImage(ctx context.Context, base, cloudinit string) (string, error) {
	files := map[string]string{"deployctl": p.Deployctl, "coreos-cloudinit": cloudinit}
	err := fs.WalkDir(overlay, "rootfs", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		files[path] = "embed:" + path
		return nil
	})
	if err != nil {
		return "", err
	}
	df := "FROM " + base + `
COPY rootfs/ /
COPY coreos-cloudinit /usr/bin/coreos-cloudinit
COPY deployctl /usr/lib/deployctl/deployctl
RUN ln -sf /usr/lib/deployctl/modprobe /usr/sbin/modprobe && mkdir -p /var/lib/deployctl/metadata && \
    : > /etc/machine-id && rm -f /var/lib/dbus/machine-id && \
    systemctl enable deployctl-metadata.service deployctl-cloudinit.service deployctl-images.service locksmithd.service update-engine.service docker.service containerd.service ssh.service
ENV container=docker
STOPSIGNAL SIGRTMIN+3
CMD ["/sbin/init"]
`
	key, err := contentKey(df, files)
	if err != nil {
		return "", err
	}
	tag := nodeImageRepo + ":" + key
	if imageExists(ctx, tag) {
		return tag, nil
	}
	return tag, buildImage(ctx, tag, df, files)
}

// contentKey hashes a Dockerfile and its context.
func contentKey(df string, files map[string]string) (string, error) {
	h := sha256.New()
	io.WriteString(h, df)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		b, err := readPart(files[n])
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s %d\n", n, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// readPart reads a host file, or an embedded one ("embed:PATH").
func readPart(src string) ([]byte, error) {
	if e, ok := strings.CutPrefix(src, "embed:"); ok {
		if strings.HasPrefix(e, "rootfs-images/") {
			return imageFiles.ReadFile(e)
		}
		return overlay.ReadFile(e)
	}
	return os.ReadFile(src)
}

//go:embed rootfs-images
var imageFiles embed.FS

// buildImage builds tag from a Dockerfile and files (context name → source).
func buildImage(ctx context.Context, tag, df string, files map[string]string) error {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, mode int64, b []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(b)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}); err != nil {
			return err
		}
		_, err := tw.Write(b)
		return err
	}
	if err := add("Dockerfile", 0o644, []byte(df)); err != nil {
		return err
	}
	for name, src := range files {
		b, err := readPart(src)
		if err != nil {
			return fmt.Errorf("image %s: %w", tag, err)
		}
		mode := int64(0o644)
		if executable(name, b) {
			mode = 0o755
		}
		if err := add(name, mode, b); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	bctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	if _, err := dockerIn(bctx, &buf, "build", "-q", "-t", tag, "-"); err != nil {
		return fmt.Errorf("build image %s: %w", tag, err)
	}
	return nil
}

// executable: ELF binaries and scripts.
func executable(name string, b []byte) bool {
	return bytes.HasPrefix(b, []byte("\x7fELF")) || bytes.HasPrefix(b, []byte("#!"))
}

// saveImages writes the images every node loads into one tarball, cached
// by their IDs.
func (p Parts) saveImages(ctx context.Context, tags []string) (string, error) {
	var ids []string
	for _, t := range tags {
		id, err := docker(ctx, "image", "inspect", "--format", "{{.Id}}", t)
		if err != nil {
			return "", fmt.Errorf("image %s: %w", t, err)
		}
		ids = append(ids, t+"="+id)
	}
	sum := sha256.Sum256([]byte(strings.Join(ids, "\n")))
	path := filepath.Join(p.Cache, "node-images", hex.EncodeToString(sum[:])[:16]+".tar")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", err
	}
	if _, err := docker(ctx, append([]string{"save", "-o", path + ".tmp"}, tags...)...); err != nil {
		return "", err
	}
	return path, os.Rename(path+".tmp", path)
}

// fleetRelease packs fleetd and fleetctl as fleet's release tarball is
// packed (fleet-v1.0.0-linux-amd64/{fleetd,fleetctl}), byte for byte the
// same each time, so its SHA-256 is stable: the user data pins it as
// fleetSha256 pins the real release's.
func (p Parts) fleetRelease(tools map[string]string) (string, string, error) {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	tw := tar.NewWriter(zw)
	dir := "fleet-v1.0.0-linux-amd64/"
	if err := tw.WriteHeader(&tar.Header{Name: dir, Mode: 0o755, Typeflag: tar.TypeDir, ModTime: time.Unix(0, 0)}); err != nil {
		return "", "", err
	}
	for _, n := range []string{"fleetd", "fleetctl"} {
		b, err := os.ReadFile(tools[n])
		if err != nil {
			return "", "", err
		}
		if err := tw.WriteHeader(&tar.Header{Name: dir + n, Mode: 0o755, Size: int64(len(b)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}); err != nil {
			return "", "", err
		}
		if _, err := tw.Write(b); err != nil {
			return "", "", err
		}
	}
	if err := tw.Close(); err != nil {
		return "", "", err
	}
	if err := zw.Close(); err != nil {
		return "", "", err
	}
	sum := sha256.Sum256(buf.Bytes())
	s := hex.EncodeToString(sum[:])
	path := filepath.Join(p.Cache, "fleet-release", s, "fleet-v1.0.0-linux-amd64.tar.gz")
	if _, err := os.Stat(path); err == nil {
		return path, s, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(path+".tmp", buf.Bytes(), 0o644); err != nil {
		return "", "", err
	}
	return path, s, os.Rename(path+".tmp", path)
}
