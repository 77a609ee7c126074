package etcd35_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

// goldenDir holds the main module's cloud-config golden files (the user
// data) and scriptsDir its nodescripts golden files (what infra runs on the
// nodes); their tests keep them equal to what the renderer and infra
// produce.
var (
	goldenDir  = filepath.Join("..", "..", "cloud-config", "testdata")
	scriptsDir = filepath.Join("..", "..", "nodescripts", "testdata")
)

// nodeEndpoint is the etcd endpoint the node's commands use (etcd-member on
// the node itself); the tests point it at their own server.
const nodeEndpoint = "http://127.0.0.1:2379"

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

type server struct {
	cfg      *embed.Config
	endpoint string
}

// newServer configures an etcd 3.5 member as Flatcar's etcd-member runs it
// (ETCD_ENABLE_V2=true) on free loopback ports; start starts it.
func newServer(t *testing.T) *server {
	t.Helper()
	cfg := embed.NewConfig()
	cfg.Name = "core-1"
	cfg.Dir = t.TempDir()
	cfg.EnableV2 = true
	cfg.LogLevel = "error"
	cu, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", freePort(t)))
	pu, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", freePort(t)))
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*cu}, []url.URL{*cu}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*pu}, []url.URL{*pu}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	return &server{cfg: cfg, endpoint: cu.String()}
}

func (s *server) start(t *testing.T) {
	t.Helper()
	e, err := embed.StartEtcd(s.cfg)
	if err != nil {
		t.Fatalf("start etcd 3.5: %v", err)
	}
	t.Cleanup(e.Close)
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(60 * time.Second):
		t.Fatal("etcd 3.5 not ready within 60s")
	}
}

// golden returns the first line of a golden file containing all of parts,
// with leading blanks removed.
func golden(t *testing.T, file string, parts ...string) string {
	t.Helper()
	f, err := os.Open(filepath.Join(goldenDir, file))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
lines:
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		for _, p := range parts {
			if !strings.Contains(line, p) {
				continue lines
			}
		}
		return line
	}
	t.Fatalf("%s has no line with %q", file, parts)
	return ""
}

// run runs a node command with sh against endpoint. The commands use only
// single quotes and no $, % or backslashes, so sh splits them as systemd
// splits an Exec line.
func run(ctx context.Context, command, endpoint string) (string, error) {
	if !strings.Contains(command, nodeEndpoint) {
		return "", fmt.Errorf("command does not use %s: %s", nodeEndpoint, command)
	}
	cmd := exec.CommandContext(ctx, "sh", "-c", strings.ReplaceAll(command, nodeEndpoint, endpoint))
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func curlOrSkip(t *testing.T) {
	t.Helper()
	for _, bin := range []string{"curl", "sh"} {
		if _, err := exec.LookPath(bin); err != nil {
			// Under .ci/run (DEPLOYCTL_REQUIRE_ALL) a missing part fails.
			if os.Getenv("DEPLOYCTL_REQUIRE_ALL") != "" {
				t.Fatalf("%s not installed (make check installs it); DEPLOYCTL_REQUIRE_ALL is set", bin)
			}
			t.Skipf("SKIP: %s not installed (make check installs it)", bin)
		}
	}
}

func getJSON(t *testing.T, u string, out any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", u, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
}

type v2node struct {
	Node struct {
		Key           string `json:"key"`
		Value         string `json:"value"`
		ModifiedIndex int64  `json:"modifiedIndex"`
	} `json:"node"`
}

// TestFlannelConfigPut runs flanneld's ExecStartPre from the node golden:
// started before etcd is up (as at boot), it waits for etcd, writes the
// network config flannel v0.14 reads over v2, and a second run (the next
// boot) leaves it alone.
func TestFlannelConfigPut(t *testing.T) {
	curlOrSkip(t)
	line := golden(t, "cluster-3-node-1.yaml", "ExecStartPre=", "/v2/keys/coreos.com/network/config")
	command := strings.TrimPrefix(line, "ExecStartPre=")
	srv := newServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	type result struct {
		out string
		err error
	}
	first := make(chan result, 1)
	go func() {
		out, err := run(ctx, command, srv.endpoint)
		first <- result{out, err}
	}()
	time.Sleep(500 * time.Millisecond) // curl is retrying connection refused
	srv.start(t)
	r := <-first
	if r.err != nil {
		t.Fatalf("flannel config put failed: %v\n%s", r.err, r.out)
	}

	key := srv.endpoint + "/v2/keys/coreos.com/network/config"
	var got v2node
	getJSON(t, key, &got)
	var cfg struct {
		Network string
		Backend struct{ Type string }
	}
	if err := json.Unmarshal([]byte(got.Node.Value), &cfg); err != nil {
		t.Fatalf("flannel config is not JSON: %v: %q", err, got.Node.Value)
	}
	if _, _, err := net.ParseCIDR(cfg.Network); err != nil || cfg.Backend.Type != "vxlan" {
		t.Fatalf("flannel config %q: want a Network CIDR and Backend.Type vxlan", got.Node.Value)
	}

	// Next boot: the key exists, prevExist=false refuses, the command still
	// succeeds and the value is not rewritten.
	if out, err := run(ctx, command, srv.endpoint); err != nil {
		t.Fatalf("second run failed: %v\n%s", err, out)
	}
	var again v2node
	getJSON(t, key, &again)
	if again.Node.ModifiedIndex != got.Node.ModifiedIndex || again.Node.Value != got.Node.Value {
		t.Fatalf("second boot rewrote the flannel config: %+v, was %+v", again.Node, got.Node)
	}
}

// TestMemberAdd runs the script infra runs on an existing node before a new
// one joins: the member is added with etcdctl over the v3 API, and a second
// run (pulumi up again) still succeeds and adds nothing.
func TestMemberAdd(t *testing.T) {
	curlOrSkip(t)
	script := withEtcdctl(memberAddScript(t), etcdctlOrSkip(t))
	srv := newServer(t)
	srv.start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := run(ctx, script, srv.endpoint)
	if err != nil || !strings.Contains(out, "member core-4 (http://10.0.0.4:2380) added") {
		t.Fatalf("member add: %v\n%s", err, out)
	}
	members := func() map[string]int {
		var ms struct {
			Members []struct {
				PeerURLs []string `json:"peerURLs"`
			} `json:"members"`
		}
		getJSON(t, srv.endpoint+"/v2/members", &ms)
		seen := map[string]int{}
		for _, m := range ms.Members {
			for _, u := range m.PeerURLs {
				seen[u]++
			}
		}
		return seen
	}
	if n := members()["http://10.0.0.4:2380"]; n != 1 {
		t.Fatalf("new member's peer URL listed %d times after the add, want 1 (members %v)", n, members())
	}
	if out, err := run(ctx, script, srv.endpoint); err != nil || !strings.Contains(out, "already added") {
		t.Fatalf("second run: %v\n%s", err, out)
	}
	if n := members()["http://10.0.0.4:2380"]; n != 1 {
		t.Fatalf("new member's peer URL listed %d times after a second run, want 1", n)
	}

}

// TestJoinAndLeave runs infra's membership scripts against two real etcd
// 3.5 members: node 2 is added from node 1, starts with state existing
// listing exactly the members after its add, becomes ready; then, its
// nodeCount gone, it is removed from node 1 while it runs (etcd stops it),
// and a second removal finds it gone.
func TestJoinAndLeave(t *testing.T) {
	etcdctl := etcdctlOrSkip(t)
	m1 := newServer(t)
	m1.start(t)
	m2 := newServer(t)
	m2.cfg.Name = "core-2"
	peer1, peer2 := m1.cfg.AdvertisePeerUrls[0].String(), m2.cfg.AdvertisePeerUrls[0].String()
	script := func(file string) string {
		b, err := os.ReadFile(filepath.Join(scriptsDir, file))
		if err != nil {
			t.Fatal(err)
		}
		return strings.NewReplacer("http://10.0.0.4:2380", peer2, "core-4", "core-2").Replace(withEtcdctl(string(b), etcdctl))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if out, err := run(ctx, script("member-add.sh"), m1.endpoint); err != nil || !strings.Contains(out, "added") {
		t.Fatalf("member add: %v\n%s", err, out)
	}
	m2.cfg.InitialCluster = "core-1=" + peer1 + ",core-2=" + peer2
	m2.cfg.ClusterState = embed.ClusterStateFlagExisting
	m2.start(t)
	members := func() int {
		var ms struct {
			Members []json.RawMessage `json:"members"`
		}
		getJSON(t, m1.endpoint+"/v2/members", &ms)
		return len(ms.Members)
	}
	if n := members(); n != 2 {
		t.Fatalf("%d members after the join, want 2", n)
	}
	if out, err := run(ctx, script("member-remove.sh"), m1.endpoint); err != nil || !strings.Contains(out, "member core-2 ("+peer2+") removed") {
		t.Fatalf("member remove: %v\n%s", err, out)
	}
	if n := members(); n != 1 {
		t.Fatalf("%d members after the removal, want 1", n)
	}
	if out, err := run(ctx, script("member-remove.sh"), m1.endpoint); err != nil || !strings.Contains(out, "already removed") {
		t.Fatalf("second member remove: %v\n%s", err, out)
	}
}

// TestMemberAddFailsWhenEtcdIsDown: the script fails, rather than reporting
// success, when the local member does not answer: the new node could not
// join.
func TestMemberAddFailsWhenEtcdIsDown(t *testing.T) {
	script := withEtcdctl(memberAddScript(t), etcdctlOrSkip(t))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if out, err := run(ctx, script+"\n", "http://127.0.0.1:1"); err == nil {
		t.Fatalf("member add succeeded with no etcd listening:\n%s", out)
	}
}

func memberAddScript(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(scriptsDir, "member-add.sh"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
