package localcluster

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// toolNames are the node tools Parts.tools returns, in the order their
// problems are reported.
var toolNames = []string{"fleetd", "fleetctl", "flanneld", "coreos-cloudinit"}

// defaultDownloadBase is where the release archives are fetched from;
// Parts.DownloadBase replaces it (a mirror, or a test's server).
const defaultDownloadBase = "https://github.com"

// pinnedFleetSHA256 would pin fleet-v1.0.0-linux-amd64.tar.gz (github.com/
// coreos/fleet, release v1.0.0). It is empty on purpose: no published
// SHA-256 of that archive was found (fleet's releases carry only GPG .sig
// files; the packaging found pins older versions, by md5, or builds from
// source), and the fleetd/fleetctl in ../shared/tools are patched source
// builds, so their SHA256SUMS cannot stand in for the release's. Until a
// sum is pinned here, downloading fleet needs --fleet-sha256 (a sum the
// user checked) or fleetd.gz and fleetctl.gz in --tools.
const pinnedFleetSHA256 = ""

// pinnedFlannelSHA256 pins flanneld-amd64 of flannel v0.14.0 (github.com/
// flannel-io/flannel, release v0.14.0: the bare binary; the release also
// has flannel-v0.14.0-linux-amd64.tar.gz, whose sum was not found).
// Source: github.com/sysoperator/kubernetes-formula, pillar/flannel.sls
// at commit 0450a8b3dc2e1904430e4ed12e3993a595f0154c ("Upgrade core
// components", 2021-10-15): the Salt file.managed source_hash of
// https://github.com/flannel-io/flannel/releases/download/v0.14.0/flanneld-amd64
// (flannel/install.sls there), until 46ff7898 moved it to v0.15.1. One
// third-party pin, not a checksum flannel publishes; not re-checked
// against GitHub from here. The flanneld in ../shared/tools is a patched
// source build, so its SHA256SUMS line is not this binary's.
const pinnedFlannelSHA256 = "47f039b97f2f1879fbb5aae972fb0f2e01124f55b29ade088976f34cd948c240"

// cloudinitHelp says where coreos-cloudinit comes from: it has no release
// binary. flatcar/coreos-cloudinit's README has no build section; its
// `build` script is the build (go build -ldflags "-X main.version=..."
// with the vendored modules).
const cloudinitHelp = `coreos-cloudinit has no upstream release binary: build Flatcar's (github.com/flatcar/coreos-cloudinit, with Go >= 1.20) and give it in --tools DIR:
      git clone https://github.com/flatcar/coreos-cloudinit && cd coreos-cloudinit
      CGO_ENABLED=0 ./build        # the repository's build script; writes bin/coreos-cloudinit
      gzip -c bin/coreos-cloudinit > DIR/coreos-cloudinit.gz
      (cd bin && sha256sum coreos-cloudinit) >> DIR/SHA256SUMS`

// release is an upstream release file the node tools come from.
type release struct {
	project string            // e.g. "fleet v1.0.0"
	urlPath string            // under the download base
	sha256  string            // pinned SHA-256 of the file
	flag    string            // the flag that supplies sha256
	members map[string]string // tool name → path in the tar.gz ("" : the file is the binary)
}

// url is where r is fetched from under base.
func (r release) url(base string) string {
	return strings.TrimSuffix(base, "/") + "/" + r.urlPath
}

// releases are the files fleetd, fleetctl and flanneld are fetched from.
func (p Parts) releases() []release {
	return []release{
		{
			project: "fleet v1.0.0",
			urlPath: "coreos/fleet/releases/download/v1.0.0/fleet-v1.0.0-linux-amd64.tar.gz",
			sha256:  strings.ToLower(orDefault(p.FleetSHA256, pinnedFleetSHA256)),
			flag:    "--fleet-sha256",
			members: map[string]string{
				"fleetd":   "fleet-v1.0.0-linux-amd64/fleetd",
				"fleetctl": "fleet-v1.0.0-linux-amd64/fleetctl",
			},
		},
		{
			project: "flannel v0.14.0",
			urlPath: "flannel-io/flannel/releases/download/v0.14.0/flanneld-amd64",
			sha256:  strings.ToLower(orDefault(p.FlannelSHA256, pinnedFlannelSHA256)),
			flag:    "--flannel-sha256",
			members: map[string]string{"flanneld": ""},
		},
	}
}

// orDefault is s, or def when s is empty.
func orDefault(s, def string) string {
	if s != "" {
		return s
	}
	return def
}

// MissingToolsError names each node tool neither --tools nor a download
// gave, where it comes from and how to supply it.
type MissingToolsError struct {
	Files    []string // the missing files, e.g. "coreos-cloudinit"
	Problems []string // one paragraph per source
}

// Error lists the missing files, then one paragraph per source.
func (e *MissingToolsError) Error() string {
	return fmt.Sprintf("node tools missing: %s\n  - %s", strings.Join(e.Files, ", "), strings.Join(e.Problems, "\n  - "))
}

// tools returns the node tools' paths by name: those --tools holds
// (NAME.gz checked against its SHA256SUMS), the rest downloaded from the
// pinned upstream releases into the cache. It fails with a
// MissingToolsError naming what is still missing and how to supply it.
func (p Parts) tools(ctx context.Context, progress func(string, ...any)) (map[string]string, error) {
	out, err := p.localTools()
	if err != nil {
		return nil, fmt.Errorf("tools: %w", err)
	}
	missing := &MissingToolsError{}
	for _, r := range p.releases() {
		var need []string
		for _, n := range toolNames {
			if _, ok := r.members[n]; ok && out[n] == "" {
				need = append(need, n)
			}
		}
		if len(need) == 0 {
			continue
		}
		if r.sha256 != "" && !isSHA256(r.sha256) {
			return nil, fmt.Errorf("tools: %s %q is not a SHA-256 (64 hex characters) of %s", r.flag, r.sha256, r.url(defaultDownloadBase))
		}
		if r.sha256 == "" {
			missing.Files = append(missing.Files, need...)
			missing.Problems = append(missing.Problems, fmt.Sprintf("%s: from %s's release %s, which has no SHA-256 pinned in deployctl (no published sum was found): check the archive yourself and give %s SUM, or give %s in --tools (gzip'ed, with SHA256SUMS of the unpacked files)",
				strings.Join(need, ", "), r.project, r.url(defaultDownloadBase), r.flag, gzNames(need)))
			continue
		}
		got, err := p.fetchRelease(ctx, r, need, progress)
		if err != nil {
			return nil, fmt.Errorf("tools: %s (%s, SHA-256 pinned by deployctl or %s) for %s: %w; or give %s in --tools", r.project, r.url(defaultDownloadBase), r.flag, strings.Join(need, ", "), err, gzNames(need))
		}
		for n, f := range got {
			out[n] = f
		}
	}
	if out["coreos-cloudinit"] == "" {
		missing.Files = append(missing.Files, "coreos-cloudinit")
		missing.Problems = append(missing.Problems, cloudinitHelp)
	}
	if len(missing.Files) > 0 {
		return nil, missing
	}
	return out, nil
}

// isSHA256: 64 hex digits.
func isSHA256(s string) bool {
	b, err := hex.DecodeString(s)
	return err == nil && len(b) == sha256.Size
}

// gzNames lists names' .gz files for --tools.
func gzNames(names []string) string {
	gz := make([]string, len(names))
	for i, n := range names {
		gz[i] = n + ".gz"
	}
	return strings.Join(gz, " and ")
}

// localTools unpacks the tools --tools holds; a name it lacks is left out.
// A NAME.gz without a line in SHA256SUMS is an error: it cannot be checked.
func (p Parts) localTools() (map[string]string, error) {
	out := map[string]string{}
	if p.Tools == "" {
		return out, nil
	}
	want, err := readSums(filepath.Join(p.Tools, "SHA256SUMS"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("--tools: %w", err)
	}
	for _, n := range toolNames {
		gz := filepath.Join(p.Tools, n+".gz")
		if _, err := os.Stat(gz); errors.Is(err, os.ErrNotExist) {
			continue
		}
		sum, ok := want[n]
		if !ok {
			return nil, fmt.Errorf("--tools: %s has no line in %s/SHA256SUMS (the SHA-256 of the unpacked %s): it cannot be checked", gz, p.Tools, n)
		}
		f, err := unpackCached(gz, p.Cache, n, sum)
		if err != nil {
			return nil, fmt.Errorf("--tools: %w", err)
		}
		out[n] = f
	}
	return out, nil
}

// readSums reads a SHA256SUMS file: name → sum.
func readSums(file string) (map[string]string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	want := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 2 {
			want[strings.TrimPrefix(f[1], "*")] = f[0]
		}
	}
	return want, nil
}

// unpackCached unpacks gz into cache/tools/SUM/NAME unless a file with
// that SHA-256 is there already.
func unpackCached(gz, cache, name, sum string) (string, error) {
	dst := filepath.Join(cache, "tools", sum, name)
	if got, err := fileSHA256(dst); err == nil && got == sum {
		return dst, nil
	}
	return dst, unpack(gz, dst, sum)
}

// fetchRelease downloads r (once: cached by its pinned SHA-256 in
// cache/downloads) and returns the paths of the tools in names, unpacked
// into cache/tools/SUM/NAME.
func (p Parts) fetchRelease(ctx context.Context, r release, names []string, progress func(string, ...any)) (map[string]string, error) {
	archive := filepath.Join(p.Cache, "downloads", r.sha256, path.Base(r.urlPath))
	if got, err := fileSHA256(archive); err != nil || got != r.sha256 {
		if err := p.download(ctx, r.url(orDefault(p.DownloadBase, defaultDownloadBase)), archive, r.sha256, progress); err != nil {
			os.Remove(filepath.Dir(archive)) // only if empty
			return nil, err
		}
	}
	out := map[string]string{}
	for _, n := range names {
		f, err := extract(archive, r.members[n], filepath.Join(p.Cache, "tools"), n)
		if err != nil {
			return nil, err
		}
		out[n] = f
	}
	return out, nil
}

// download fetches url into dst through a temporary file beside it, and
// keeps it only if its SHA-256 is sum: a failed or refused download
// leaves nothing behind.
func (p Parts) download(ctx context.Context, url, dst, sum string, progress func(string, ...any)) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	client := p.client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("download: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("download %s: %s", url, resp.Status)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".download-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	h := sha256.New()
	body := &progressReader{r: resp.Body, total: resp.ContentLength, name: url, say: progress}
	_, err = io.Copy(io.MultiWriter(tmp, h), body)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("download %s: %w", url, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sum {
		return fmt.Errorf("download %s: SHA-256 %s, pinned %s: refusing a file that is not the one pinned (nothing kept)", url, got, sum)
	}
	return os.Rename(tmp.Name(), dst)
}

// progressReader reports a download's progress at most every 2 seconds,
// and once at its end.
type progressReader struct {
	r     io.Reader
	total int64
	name  string
	say   func(string, ...any)
	n     int64
	last  time.Time
}

// Read reads from the download and reports progress.
func (pr *progressReader) Read(b []byte) (int, error) {
	n, err := pr.r.Read(b)
	pr.n += int64(n)
	if pr.say != nil && (time.Since(pr.last) >= 2*time.Second || err == io.EOF) {
		pr.last = time.Now()
		if pr.total > 0 {
			pr.say("downloading %s: %.1f of %.1f MB (%d%%)", pr.name, mb(pr.n), mb(pr.total), pr.n*100/pr.total)
		} else {
			pr.say("downloading %s: %.1f MB", pr.name, mb(pr.n))
		}
	}
	return n, err
}

// mb is n bytes in MiB.
func mb(n int64) float64 { return float64(n) / (1 << 20) }

// extract writes member of archive (a tar.gz; "" : archive is the binary
// itself) to dir/SUM/name, SUM its SHA-256, through a temporary file; an
// identical file already there is kept.
func extract(archive, member, dir, name string) (string, error) {
	f, err := os.Open(archive)
	if err != nil {
		return "", err
	}
	defer f.Close()
	var src io.Reader = f
	if member != "" {
		if src, err = tarMember(f, member); err != nil {
			return "", fmt.Errorf("%s: %w", archive, err)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(dir, ".extract-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(tmp, h), src)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("%s: %s: %w", archive, name, err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	dst := filepath.Join(dir, sum, name)
	if got, err := fileSHA256(dst); err == nil && got == sum {
		return dst, nil
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return "", err
	}
	if err := os.Chmod(tmp.Name(), 0o755); err != nil {
		return "", err
	}
	return dst, os.Rename(tmp.Name(), dst)
}

// tarMember finds a regular file in a tar.gz.
func tarMember(r io.Reader, member string) (io.Reader, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, err
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil, fmt.Errorf("no %s in the archive", member)
		}
		if err != nil {
			return nil, err
		}
		if path.Clean(h.Name) == member && h.Typeflag == tar.TypeReg {
			return tr, nil
		}
	}
}
