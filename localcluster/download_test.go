package localcluster

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// releaseServer serves, over TLS on loopback, a fleet release archive
// and a flanneld binary built here, at the paths GitHub serves the real
// ones; it counts the requests.
type releaseServer struct {
	*httptest.Server
	fleetTar, flanneld []byte
	requests           atomic.Int64
}

func newReleaseServer(t *testing.T) *releaseServer {
	t.Helper()
	rs := &releaseServer{fleetTar: fleetArchive(t), flanneld: []byte("\x7fELF flanneld v0.14.0")}
	files := map[string][]byte{
		"/coreos/fleet/releases/download/v1.0.0/fleet-v1.0.0-linux-amd64.tar.gz": rs.fleetTar,
		"/flannel-io/flannel/releases/download/v0.14.0/flanneld-amd64":           rs.flanneld,
	}
	rs.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rs.requests.Add(1)
		b, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(b)
	}))
	t.Cleanup(rs.Close)
	return rs
}

// fleetArchive is laid out as fleet-v1.0.0-linux-amd64.tar.gz is.
func fleetArchive(t *testing.T) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	tw.WriteHeader(&tar.Header{Name: "fleet-v1.0.0-linux-amd64/", Mode: 0o755, Typeflag: tar.TypeDir})
	for _, n := range []string{"README.md", "fleetd", "fleetctl"} {
		b := []byte("\x7fELF " + n + " 1.0.0")
		if err := tw.WriteHeader(&tar.Header{Name: "fleet-v1.0.0-linux-amd64/" + n, Mode: 0o755, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write(b)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// parts downloads from rs (its client trusts rs's certificate only) with
// rs's files pinned, and has only coreos-cloudinit in --tools.
func (rs *releaseServer) parts(t *testing.T) Parts {
	tools := fakeTools(t, "")
	for _, n := range []string{"fleetd", "fleetctl", "flanneld"} {
		os.Remove(filepath.Join(tools, n+".gz"))
	}
	return Parts{Tools: tools, Cache: t.TempDir(), DownloadBase: rs.URL, client: rs.Client(),
		FleetSHA256: sum(rs.fleetTar), FlannelSHA256: sum(rs.flanneld)}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func TestToolsDownloadedCheckedUnpackedAndCached(t *testing.T) {
	rs := newReleaseServer(t)
	p := rs.parts(t)
	var said []string
	progress := func(f string, a ...any) { said = append(said, f) }
	got, err := p.tools(testCtx(t), progress)
	if err != nil {
		t.Fatal(err)
	}
	for n, want := range map[string]string{"fleetd": "\x7fELF fleetd 1.0.0", "fleetctl": "\x7fELF fleetctl 1.0.0",
		"flanneld": "\x7fELF flanneld v0.14.0", "coreos-cloudinit": "binary coreos-cloudinit"} {
		b, err := os.ReadFile(got[n])
		if err != nil || string(b) != want {
			t.Fatalf("%s: %q, %v; want %q", n, b, err, want)
		}
		if fi, _ := os.Stat(got[n]); fi.Mode()&0o100 == 0 || !strings.HasPrefix(got[n], p.Cache) {
			t.Fatalf("%s at %s, mode %v: want an executable in the cache", n, got[n], fi.Mode())
		}
	}
	if n := rs.requests.Load(); n != 2 {
		t.Fatalf("%d requests, want 2 (the fleet archive, flanneld)", n)
	}
	if len(said) == 0 || !strings.HasPrefix(said[0], "downloading") {
		t.Fatalf("no download progress shown: %q", said)
	}
	again, err := p.tools(testCtx(t), progress)
	if err != nil {
		t.Fatal(err)
	}
	if n := rs.requests.Load(); n != 2 {
		t.Fatalf("second run made %d more request(s); want none, the cache has them", n-2)
	}
	for n := range got {
		if again[n] != got[n] {
			t.Fatalf("%s: %s, then %s", n, got[n], again[n])
		}
	}
}

func TestDownloadRefusesAWrongSumAndKeepsNothing(t *testing.T) {
	rs := newReleaseServer(t)
	p := rs.parts(t)
	p.FlannelSHA256 = sum([]byte("another flanneld"))
	_, err := p.tools(testCtx(t), nil)
	if err == nil || !strings.Contains(err.Error(), "flanneld-amd64") || !strings.Contains(err.Error(), "refusing") ||
		!strings.Contains(err.Error(), p.FlannelSHA256) || !strings.Contains(err.Error(), "flanneld.gz") {
		t.Fatalf("wrong flanneld sum: err = %v", err)
	}
	t.Log(err)
	filepath.WalkDir(p.Cache, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), ".") || strings.Contains(path, "flanneld") || strings.Contains(path, p.FlannelSHA256) {
			t.Errorf("left in the cache: %s", path)
		}
		return nil
	})
}

func TestToolsMissingCloudinitNamesTheFileAndHowToBuildIt(t *testing.T) {
	rs := newReleaseServer(t)
	p := rs.parts(t)
	p.Tools = ""
	_, err := p.tools(testCtx(t), nil)
	var missing *MissingToolsError
	if !errors.As(err, &missing) || strings.Join(missing.Files, " ") != "coreos-cloudinit" {
		t.Fatalf("err = %v, want coreos-cloudinit missing (and only it)", err)
	}
	t.Log(err)
	for _, want := range []string{"coreos-cloudinit has no upstream release binary", "git clone https://github.com/flatcar/coreos-cloudinit",
		"./build", "coreos-cloudinit.gz", "SHA256SUMS", "--tools"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if n := rs.requests.Load(); n != 2 {
		t.Fatalf("%d requests, want fleet and flannel downloaded all the same", n)
	}
}

func TestFetchWithoutAFleetSumSaysWhatToGive(t *testing.T) {
	if pinnedFleetSHA256 != "" {
		t.Skip("fleet's archive has a pinned sum")
	}
	rs := newReleaseServer(t)
	p := rs.parts(t)
	p.FleetSHA256 = ""
	_, err := p.tools(testCtx(t), nil)
	var missing *MissingToolsError
	if !errors.As(err, &missing) || strings.Join(missing.Files, " ") != "fleetd fleetctl" {
		t.Fatalf("err = %v, want fleetd and fleetctl missing", err)
	}
	t.Log(err)
	for _, want := range []string{"https://github.com/coreos/fleet/releases/download/v1.0.0/fleet-v1.0.0-linux-amd64.tar.gz",
		"--fleet-sha256", "fleetd.gz and fleetctl.gz"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if n := rs.requests.Load(); n != 1 {
		t.Fatalf("%d requests, want only flanneld's", n)
	}
	p.FleetSHA256 = "not-a-sum"
	if _, err := p.tools(testCtx(t), nil); err == nil || !strings.Contains(err.Error(), `--fleet-sha256 "not-a-sum" is not a SHA-256`) {
		t.Fatalf("bad --fleet-sha256: err = %v", err)
	}
}

func TestToolsAFileWithoutItsSumIsRefused(t *testing.T) {
	p := Parts{Tools: fakeTools(t, ""), Cache: t.TempDir()}
	if err := os.WriteFile(filepath.Join(p.Tools, "SHA256SUMS"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := p.tools(testCtx(t), nil)
	if err == nil || !strings.Contains(err.Error(), "fleetd.gz has no line in") {
		t.Fatalf("err = %v", err)
	}
}
