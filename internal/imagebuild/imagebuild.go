// Package imagebuild builds the project's own container images through the
// Docker Engine API. No image can be pulled on the machines deployctl is
// tested on, so every image is built FROM scratch: a static Go binary, or
// the host's nginx binary with the shared libraries ldd lists.
package imagebuild

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"

	"github.com/deployctl/deployctl/internal/containers"
	"github.com/deployctl/deployctl/internal/docker"
)

// DemoAppPackage is the import path of the demo app built into images.
const DemoAppPackage = "github.com/deployctl/deployctl/cmd/demoapp"

// file is one entry of a scratch image's root filesystem.
type file struct {
	mode int64
	data []byte
	dir  bool
}

// rootfs maps absolute paths to files.
type rootfs map[string]file

// tarContext returns a build context with a Dockerfile that copies the
// rootfs into a scratch image.
func (fs rootfs) tarContext(dockerfile string) (*bytes.Buffer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, f file) error {
		h := &tar.Header{Name: name, Mode: f.mode, Size: int64(len(f.data)), Typeflag: tar.TypeReg}
		if f.dir {
			h.Typeflag, h.Size, h.Name = tar.TypeDir, 0, name+"/"
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		_, err := tw.Write(f.data)
		return err
	}
	if err := add("Dockerfile", file{mode: 0o644, data: []byte(dockerfile)}); err != nil {
		return nil, err
	}
	paths := make([]string, 0, len(fs))
	for p := range fs {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		if err := add("rootfs"+p, fs[p]); err != nil {
			return nil, err
		}
	}
	return &buf, tw.Close()
}

// digest is a short content hash used to tag images so an unchanged build
// is reused.
func (fs rootfs) digest(dockerfile string) string {
	h := sha256.New()
	h.Write([]byte(dockerfile))
	paths := make([]string, 0, len(fs))
	for p := range fs {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		fmt.Fprintf(h, "%s %o %d\n", p, fs[p].mode, len(fs[p].data))
		h.Write(fs[p].data)
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

func build(ctx context.Context, cli *docker.Client, repo string, fs rootfs, dockerfile string) (string, error) {
	tag := repo + ":" + fs.digest(dockerfile)
	ok, err := containers.ImageExists(ctx, cli, tag)
	if err != nil {
		return "", fmt.Errorf("check image %s: %w", tag, err)
	}
	if ok {
		return tag, nil
	}
	tc, err := fs.tarContext(dockerfile)
	if err != nil {
		return "", fmt.Errorf("build context for %s: %w", tag, err)
	}
	if out, err := containers.Build(ctx, cli, tag, tc); err != nil {
		return "", fmt.Errorf("build image %s: %w\n%s", tag, err, out)
	}
	return tag, nil
}

// BuildTags are the Makefile's build tags (GO_TAGS): grpcnotrace leaves
// out gRPC's x/net/trace and the html/template it brings, a fifth of the
// registrar's binary and of its resident memory (the text it maps).
const BuildTags = "grpcnotrace"

// GoBinary compiles a main package statically for linux on this machine's
// architecture, with the Makefile's flags and tags, into dir and returns
// the binary's path.
func GoBinary(ctx context.Context, pkg, dir string) (string, error) {
	out := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-tags", BuildTags, "-ldflags=-s -w", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	return out, nil
}

// DemoApp builds the demo app (cmd/demoapp) with the Go toolchain and a
// scratch image holding it, for the tests; see AppImage.
func DemoApp(ctx context.Context, cli *docker.Client) (string, error) {
	dir, err := os.MkdirTemp("", "deployctl-demoapp-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	bin, err := GoBinary(ctx, DemoAppPackage, dir)
	if err != nil {
		return "", err
	}
	return AppImage(ctx, cli, bin)
}

// AppImage builds a FROM scratch image around bin, a static binary that
// runs the demo app when given "demo-app" first (deployctl itself, or
// cmd/demoapp), and returns its tag (repo "deployctl/demoapp"). The image
// is reused when its content has not changed.
func AppImage(ctx context.Context, cli *docker.Client, bin string) (string, error) {
	if err := static(bin); err != nil {
		return "", err
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return "", err
	}
	fs := rootfs{"/app": {mode: 0o755, data: data}}
	return build(ctx, cli, "deployctl/demoapp", fs, "FROM scratch\nCOPY rootfs/ /\nEXPOSE 3000\nENTRYPOINT [\"/app\", \"demo-app\"]\n")
}

// static refuses a dynamically linked binary, which cannot run in a
// FROM scratch image.
func static(bin string) error {
	f, err := elf.Open(bin)
	if err != nil {
		return fmt.Errorf("%s: not a Linux binary: %w", bin, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked and cannot run in a FROM scratch image: build it with CGO_ENABLED=0 (make build and make demo do)", bin)
		}
	}
	return nil
}

var lddLine = regexp.MustCompile(`(?:=>\s*)?(/\S+)\s+\(0x`)

// sharedLibs lists the absolute paths of the libraries ldd reports for bin.
func sharedLibs(ctx context.Context, bin string) ([]string, error) {
	out, err := exec.CommandContext(ctx, "ldd", bin).Output()
	if err != nil {
		return nil, fmt.Errorf("ldd %s: %w", bin, err)
	}
	var libs []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if m := lddLine.FindStringSubmatch(sc.Text()); m != nil {
			libs = append(libs, m[1])
		}
	}
	return libs, sc.Err()
}

// Nginx builds a scratch image from the host's nginx binary (default
// /usr/sbin/nginx) and its shared libraries, with the files nginx needs to
// start as root (passwd/group for the "nobody" worker user, log and temp
// directories). It runs `nginx -g 'daemon off;'` with /etc/nginx/nginx.conf,
// which the caller mounts.
func Nginx(ctx context.Context, cli *docker.Client, nginxBin string) (string, error) {
	if nginxBin == "" {
		nginxBin = "/usr/sbin/nginx"
	}
	fs := rootfs{}
	addFile := func(path string, mode int64) error {
		real, err := filepath.EvalSymlinks(path)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(real)
		if err != nil {
			return err
		}
		fs[path] = file{mode: mode, data: b}
		return nil
	}
	if err := addFile(nginxBin, 0o755); err != nil {
		return "", fmt.Errorf("nginx image: %w (install Debian's nginx package)", err)
	}
	libs, err := sharedLibs(ctx, nginxBin)
	if err != nil {
		return "", err
	}
	for _, l := range libs {
		if err := addFile(l, 0o755); err != nil {
			return "", fmt.Errorf("nginx image: library %s: %w", l, err)
		}
	}
	fs["/etc/passwd"] = file{mode: 0o644, data: []byte("root:x:0:0:root:/root:/bin/false\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")}
	fs["/etc/group"] = file{mode: 0o644, data: []byte("root:x:0:\nnogroup:x:65534:\n")}
	fs["/etc/nsswitch.conf"] = file{mode: 0o644, data: []byte("passwd: files\ngroup: files\n")}
	for _, d := range []string{"/var/log/nginx", "/var/lib/nginx", "/var/lib/nginx/body", "/run", "/tmp", "/etc/nginx/conf.d"} {
		fs[d] = file{mode: 0o1777, dir: true}
	}
	df := "FROM scratch\nCOPY rootfs/ /\nENTRYPOINT [\"" + nginxBin + "\", \"-g\", \"daemon off;\"]\n"
	return build(ctx, cli, "deployctl/nginx", fs, df)
}
