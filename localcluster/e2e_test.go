//go:build e2e

// The whole story on a local cluster (make e2e): nodes booted from our own
// user data, real systemd, real fleetd 1.0.0, flannel v0.14.0 vxlan, etcd
// 3.5, the registrar, OpenResty's stand-in. It drives deployctl as a user
// does (the built binary), kills containers and nodes with Docker.
package localcluster_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deployctl/deployctl/internal/etcdconn"
	"github.com/deployctl/deployctl/internal/testenv"
	"github.com/deployctl/deployctl/localcluster"
	"github.com/deployctl/deployctl/nodescripts"
	"github.com/deployctl/deployctl/units"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// story is one local cluster under test.
type story struct {
	t       *testing.T
	name    string
	bin     string
	state   string
	env     map[string]string
	lb      string
	http    *http.Client
	results map[string]float64
	// killed: a node was killed and stays dead, so pulumi destroy cannot
	// run that node's delete commands (it dials the dead droplet).
	killed bool
}

func newStory(t *testing.T, name string) *story {
	bin, tools := os.Getenv("DEPLOYCTL_BIN"), os.Getenv("DEPLOYCTL_TOOLS")
	if bin == "" || tools == "" {
		t.Fatal("DEPLOYCTL_BIN (static deployctl, registrar, etcd) and DEPLOYCTL_TOOLS (../shared/tools/linux-amd64) must be set: make e2e sets them")
	}
	s := &story{t: t, name: name, bin: bin, state: t.TempDir(), results: map[string]float64{},
		http: &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}}
	t.Cleanup(func() {
		if t.Failed() {
			s.dumpNodes()
		}
		start := time.Now()
		if out, err := s.try(15*time.Minute, "cluster", "local", "down", "--name", name, "--state-dir", s.state); err != nil {
			t.Errorf("cluster local down: %v\n%s", err, out)
		} else if strings.Contains(out, "removing its containers directly") {
			if !s.killed {
				t.Errorf("cluster local down: pulumi destroy failed:\n%s", out)
			} else { // a known limit: the program's delete commands dial every node
				t.Logf("cluster local down: pulumi destroy failed on the node killed earlier, the rest removed directly:\n%s", lastLine(out))
			}
		} else {
			s.results["cluster down: pulumi destroy, then the network and state (s)"] = time.Since(start).Seconds()
		}
		s.report()
	})
	return s
}

// deployctl runs the built binary with the cluster's env; it fails the
// test on a non-zero exit.
func (s *story) deployctl(timeout time.Duration, args ...string) string {
	s.t.Helper()
	out, err := s.try(timeout, args...)
	if err != nil {
		s.t.Fatalf("deployctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (s *story) try(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(s.bin, "deployctl"), args...)
	cmd.Env = os.Environ()
	for k, v := range s.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	b, err := cmd.CombinedOutput()
	return string(b), err
}

func (s *story) up(nodes, edge int, tlsOn bool) {
	args := []string{"cluster", "local", "up", "--name", s.name, "--state-dir", s.state, "--nodes", fmt.Sprint(nodes), "--edge", fmt.Sprint(edge),
		"--tools", os.Getenv("DEPLOYCTL_TOOLS"), "--bin", s.bin}
	if tlsOn {
		args = append(args, "--tls")
	}
	start := time.Now()
	out := s.deployctl(30*time.Minute, args...)
	key := "new stack: pulumi up to every member healthy, images cached (s)"
	if strings.Contains(out, "debootstrap") {
		key = "new stack: pulumi up to every member healthy, cold: node image built (s)"
	}
	if len(s.env) == 0 { // the first up of the story, not a grow or shrink
		s.results[key] = time.Since(start).Seconds()
	}
	out = s.deployctl(time.Minute, "cluster", "local", "env", "--name", s.name, "--state-dir", s.state, "-o", "json")
	if err := json.Unmarshal([]byte(out), &s.env); err != nil {
		s.t.Fatalf("cluster local env -o json: %v\n%s", err, out)
	}
	s.lb = s.env["DEPLOYCTL_LB_URL"]
	if s.lb == "" {
		s.t.Fatalf("no DEPLOYCTL_LB_URL in %v", s.env)
	}
}

// get asks the load balancer once: the instance that answered.
func (s *story) get() (string, error) {
	resp, err := s.http.Get(s.lb)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if resp.StatusCode != 200 {
		return "", fmt.Errorf("status %d: %s", resp.StatusCode, strings.TrimSpace(string(b)))
	}
	return strings.TrimSpace(string(b)), nil
}

// answers asks n times; it returns the count per instance and the errors.
func (s *story) answers(n int) (map[string]int, []error) {
	got := map[string]int{}
	var errs []error
	for i := 0; i < n; i++ {
		name, err := s.get()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		got[name]++
	}
	return got, errs
}

// waitAll waits (bounded) until the load balancer answers from exactly
// want, with no error, and returns how long it took.
func (s *story) waitAll(want []string, within time.Duration) time.Duration {
	s.t.Helper()
	start := time.Now()
	var got map[string]int
	var errs []error
	for time.Since(start) < within {
		got, errs = s.answers(4 * len(want))
		if len(errs) == 0 && sameSet(got, want) {
			return time.Since(start)
		}
		time.Sleep(200 * time.Millisecond)
	}
	s.t.Fatalf("after %s the load balancer answers from %v with %d errors (%v), want exactly %v", within, got, len(errs), first(errs), want)
	return 0
}

func sameSet(got map[string]int, want []string) bool {
	if len(got) != len(want) {
		return false
	}
	for _, w := range want {
		if got[w] == 0 {
			return false
		}
	}
	return true
}

func first(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	return errs[0]
}

// unitStatus is one row of deployctl units status -o json.
type unitStatus struct {
	Unit         string `json:"unit"`
	CurrentState string `json:"currentState"`
	IP           string `json:"ip"`
	Hash         string `json:"hash"`
}

func (s *story) status() map[string]unitStatus {
	s.t.Helper()
	out := s.deployctl(time.Minute, "units", "status", "-o", "json")
	var rows []unitStatus
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		s.t.Fatalf("units status -o json: %v\n%s", err, out)
	}
	m := map[string]unitStatus{}
	for _, r := range rows {
		m[r.Unit] = r
	}
	return m
}

// machines counts the machines fleet lists.
func (s *story) machines() int {
	s.t.Helper()
	out := s.deployctl(time.Minute, "units", "machines", "-o", "json")
	var rows []map[string]any
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		s.t.Fatalf("units machines -o json: %v\n%s", err, out)
	}
	return len(rows)
}

// container is the node container with ip.
func (s *story) container(ip string) string {
	s.t.Helper()
	b, err := os.ReadFile(filepath.Join(s.state, s.name, "cluster.json"))
	if err != nil {
		s.t.Fatal(err)
	}
	var st struct {
		Nodes []struct{ Container, IP, Role string }
	}
	if err := json.Unmarshal(b, &st); err != nil {
		s.t.Fatal(err)
	}
	for _, n := range st.Nodes {
		if n.IP == ip {
			return n.Container
		}
	}
	s.t.Fatalf("no node with IP %s", ip)
	return ""
}

// edgeNode is the node container that serves DEPLOYCTL_LB_URL.
func (s *story) edgeNode() string {
	return s.container(strings.TrimSuffix(strings.TrimPrefix(s.lb, "http://"), ":80"))
}

func dockerCmd(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, b)
	}
	return strings.TrimSpace(string(b))
}

func (s *story) etcd(tlsOn bool) *clientv3.Client {
	s.t.Helper()
	cfg := clientv3.Config{Endpoints: strings.Split(s.env["ETCDCTL_ENDPOINTS"], ","), DialTimeout: 5 * time.Second}
	if tlsOn {
		cfg.TLS = s.tlsConfig(true)
	}
	c, err := clientv3.New(cfg)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { c.Close() })
	return c
}

func (s *story) tlsConfig(withCert bool) *tls.Config {
	s.t.Helper()
	ca, err := os.ReadFile(s.env["ETCDCTL_CACERT"])
	if err != nil {
		s.t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	c := &tls.Config{RootCAs: pool}
	if withCert {
		pair, err := tls.LoadX509KeyPair(s.env["ETCDCTL_CERT"], s.env["ETCDCTL_KEY"])
		if err != nil {
			s.t.Fatal(err)
		}
		c.Certificates = []tls.Certificate{pair}
	}
	return c
}

// nodeDump is what a failed story logs of each node, so that CI's log alone
// diagnoses it: failed units, warnings, fleetd's journal, and the journal
// of every unit deployctl submitted (apps, sidekicks, load balancers) with
// what systemd and Docker say of them now.
const nodeDump = `systemctl --failed --no-pager
echo "--- warnings"; journalctl --no-pager -n 60 -p warning
echo "--- fleet"; journalctl --no-pager -n 200 -o short-precise -u fleet.service
echo "--- units"; systemctl list-units --all --no-pager --plain 'someapp*'
echo "--- containers"; docker ps -a --format '{{.Names}} {{.Status}} {{.Label "io.deployctl.version"}}'
echo "--- their journals"; journalctl --no-pager -n 300 -o short-precise -u 'someapp*'`

func (s *story) dumpNodes() {
	out, _ := exec.Command("docker", "ps", "-a", "--filter", "label=io.deployctl.local-cluster="+s.name, "--format", "{{.Names}}").Output()
	for _, c := range strings.Fields(string(out)) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		j, _ := exec.CommandContext(ctx, "docker", "exec", c, "sh", "-c", nodeDump).CombinedOutput()
		cancel()
		s.t.Logf("node %s:\n%s", c, j)
	}
}

// report prints the story's figures and, with DEPLOYCTL_E2E_REPORT, adds
// them to that JSON file (make e2e: bench/out/e2e.json).
func (s *story) report() {
	keys := make([]string, 0, len(s.results))
	for k := range s.results {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		s.t.Logf("%s: %s = %.2f", s.name, k, s.results[k])
	}
	path := os.Getenv("DEPLOYCTL_E2E_REPORT")
	if path == "" {
		return
	}
	all := map[string]map[string]float64{}
	if b, err := os.ReadFile(path); err == nil {
		json.Unmarshal(b, &all)
	}
	all[s.name] = s.results
	b, _ := json.MarshalIndent(all, "", "  ")
	os.MkdirAll(filepath.Dir(path), 0o755)
	os.WriteFile(path, append(b, '\n'), 0o644)
}

var instances = []string{"someapp@1", "someapp@2", "someapp@3", "someapp@4"}

// specFile writes deploy.yaml for the story: the example, with the image
// tag given.
func specFile(t *testing.T, tag string, tlsOn bool, env ...string) string {
	b, err := os.ReadFile("../examples/deploy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	spec := strings.Replace(string(b), "example/someapp:1.4", "example/someapp:"+tag, 1)
	if len(env) > 0 {
		// The demo app's readiness knobs (READY_AFTER, HEALTHY).
		spec = strings.Replace(spec, "env: {NODE_ENV: production}", "env: {NODE_ENV: production, "+strings.Join(env, ", ")+"}", 1)
	}
	// A plain cluster's registrars reach etcd in plaintext: cluster local
	// env says so (DEPLOYCTL_NODE_ETCD_ENDPOINTS), the spec stays the
	// example's.
	p := filepath.Join(t.TempDir(), "deploy.yaml")
	if err := os.WriteFile(p, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// submit submits the spec and returns how long until the load balancer
// answered from every instance (the clock starts with the command).
func (s *story) submit(spec string) time.Duration {
	start := time.Now()
	s.deployctl(10*time.Minute, "units", "submit", "-f", spec, "--start")
	s.waitAll(instances, 2*time.Minute)
	return time.Since(start)
}

// TestE2EPlain: the story on 5 nodes (one edge), etcd without TLS.
func TestE2EPlain(t *testing.T) {
	s := newStory(t, "e2e-plain")
	s.up(5, 1, false)
	cli := s.etcd(false)

	// 1. Submit: the load balancer answers round robin from all 4, each
	// on a machine of its own.
	s.results["submit to all instances answering (s)"] = s.submit(specFile(t, "1.4", false)).Seconds()
	got, errs := s.answers(40)
	if len(errs) > 0 || !sameSet(got, instances) {
		t.Fatalf("40 requests: %v, errors %v", got, errs)
	}
	for name, n := range got {
		if n < 5 || n > 15 {
			t.Errorf("round robin: %s answered %d of 40", name, n)
		}
	}
	st := s.status()
	machines := map[string]string{}
	for i := 1; i <= 4; i++ {
		u := st[fmt.Sprintf("someapp@%d.service", i)]
		if u.CurrentState != "launched" || u.IP == "" {
			t.Fatalf("someapp@%d: %+v", i, u)
		}
		if other, ok := machines[u.IP]; ok {
			t.Fatalf("someapp@%d and %s share machine %s (spread)", i, other, u.IP)
		}
		machines[u.IP] = fmt.Sprintf("someapp@%d", i)
	}

	// Instances have flannel addresses, reached by the edge's nginx and
	// not from this machine (nothing is published on the hosts).
	{
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		r, err := cli.Get(ctx, "/services/someapp/upstream/someapp@1")
		cancel()
		if err != nil || len(r.Kvs) != 1 {
			t.Fatalf("someapp@1's registration: %v %v", r, err)
		}
		addr := string(r.Kvs[0].Value)
		if !strings.HasPrefix(addr, "10.1.") {
			t.Fatalf("someapp@1 registered %q, want a flannel address in 10.1.0.0/16", addr)
		}
		// No packet is sent (a request would leave through this machine's
		// default route): its route to the address must not be the
		// cluster's network.
		netID := dockerCmd(t, "network", "inspect", "--format", "{{.Id}}", "deployctl-"+s.name)
		host, _, _ := strings.Cut(addr, ":")
		route, err := exec.Command("ip", "route", "get", host).CombinedOutput()
		if err == nil && strings.Contains(string(route), "br-"+netID[:12]) {
			t.Fatalf("this machine routes %s into the cluster's network: %s", host, route)
		}
	}

	// 2. Kill an instance's container: out of etcd (and so of the LB),
	// then systemd starts it again and it is back.
	t.Run("instance death", func(t *testing.T) {
		ip := st["someapp@2.service"].IP
		node := s.container(ip)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		w := cli.Watch(ctx, "/services/someapp/upstream/someapp@2")
		killed := time.Now()
		dockerCmd(t, "exec", node, "docker", "kill", "someapp-2")
		var gone time.Duration
		for wr := range w {
			for _, ev := range wr.Events {
				if ev.Type == clientv3.EventTypeDelete {
					gone = time.Since(killed)
				}
			}
			if gone > 0 {
				break
			}
		}
		if gone == 0 {
			t.Fatal("someapp@2's key was not deleted within 30s of its container's death")
		}
		s.results["instance death to out of etcd (ms)"] = float64(gone.Milliseconds())
		back := s.waitAll(instances, 90*time.Second)
		s.results["instance death to back in the LB (s)"] = (gone + back).Seconds()
	})

	// 3. Roll back and forth between two versions that take 2 s to become
	// healthy, under steady load (issue 37: 1 roll in ~18 wedged when fleet
	// replaced a running unit in place): every roll finishes, every
	// instance's container runs the version its unit names after each, no
	// request fails, and never fewer than 4 - max-unavailable (1) are
	// registered. DEPLOYCTL_E2E_ROLLS sets the count (default 20).
	t.Run("rolls back and forth under load", func(t *testing.T) {
		rolls := 20
		if n, err := strconv.Atoi(os.Getenv("DEPLOYCTL_E2E_ROLLS")); err == nil && n > 0 {
			rolls = n
		}
		specs := []string{specFile(t, "1.5", false, "READY_AFTER: 2s"), specFile(t, "1.4", false, "READY_AFTER: 2s")}
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(rolls)*3*time.Minute)
		defer cancel()
		load := s.startLoad(ctx, cli)
		var slowest, total time.Duration
		finished, rollbacks := 0, 0
		defer func() {
			s.results["rolls done by units rollback"] = float64(rollbacks)
			requests, failed, minRegistered, _ := load.halt()
			s.results["rolls finished under load"] = float64(finished)
			s.results["slowest roll of 4 instances under load (s)"] = slowest.Seconds()
			if finished > 0 {
				s.results["roll of 4 instances under load (s)"] = (total / time.Duration(finished)).Seconds()
			}
			s.results["failed requests during the roll"] = float64(failed) // all the rolls'; the key make bench reads
			t.Logf("%d of %d rolls finished, slowest %s, %d requests, %d failed, at least %d registered", finished, rolls, slowest, requests, failed, minRegistered)
		}()
		for i := 0; i < rolls; i++ {
			spec := specs[(rolls-1-i)%2] // the last roll is to 1.5, which the cases after it build on
			before := load.count()
			start := time.Now()
			args := []string{"units", "submit", "-f", spec, "--start"}
			if i%5 == 4 {
				// Every fifth roll is `units rollback`: the spec before the
				// newest in etcd's history is the other version, this one.
				args = []string{"units", "rollback"}
				rollbacks++
			}
			out, err := s.try(10*time.Minute, args...)
			took := time.Since(start)
			if load.count() == before {
				t.Fatalf("roll %d of %d: no request went through the LB during it: the load stopped", i+1, rolls)
			}
			if err != nil {
				s.dumpNodes() // now, while the roll's state is there to see
				t.Fatalf("roll %d of %d (%s): %v\n%s", i+1, rolls, strings.Join(args, " "), err, out)
			}
			finished++
			total += took
			slowest = max(slowest, took)
			s.checkVersions(t, spec, fmt.Sprintf("roll %d of %d", i+1, rolls))
		}
		requests, failed, minRegistered, firstFail := load.halt()
		if failed > 0 || requests < 10 {
			t.Fatalf("%d rolls under load: %d of %d requests failed (first: %v)", rolls, failed, requests, firstFail)
		}
		if minRegistered < 3 {
			t.Fatalf("rolls: only %d instances registered at one point, want at least 4 - 1", minRegistered)
		}
	})

	// 3b. Partition a worker from the other nodes for 90 s under load
	// (issue 32 item 3): fleet moves its instance, and once the partition
	// heals the copy left behind never registers again (one registration,
	// one copy serving). Failed requests are counted and reported (item
	// 1's target, 0, is not asserted here: 1 of 29,140 failed in the one
	// run, a 1 s client timeout).
	t.Run("a worker partitioned", func(t *testing.T) { s.partition(t, cli) })

	// 4. Kill a worker node: fleet moves its units, the LB serves from the
	// survivors, back to full capacity.
	t.Run("node death", func(t *testing.T) {
		victimUnit, victim, _ := s.workerInstance(t)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		load := s.startLoad(ctx, cli)
		killed := time.Now()
		dockerCmd(t, "kill", victim)
		s.killed = true
		// Counted through the whole window: the dead instance's lease
		// running out (15 s), fleet moving it, the new copy registering.
		key := "/services/someapp/upstream/" + victimUnit
		testenv.WaitFor(t, time.Minute, victimUnit+" out of etcd", func() bool {
			gctx, gcancel := context.WithTimeout(ctx, 2*time.Second)
			defer gcancel()
			r, err := cli.Get(gctx, key)
			return err == nil && len(r.Kvs) == 0
		})
		s.results["node death to out of etcd (s)"] = time.Since(killed).Seconds()
		s.waitAll(instances, 3*time.Minute)
		s.results["node death to full capacity (s)"] = time.Since(killed).Seconds()
		requests, failed, _, firstFail := load.halt()
		s.results["failed requests through node death"] = float64(failed)
		t.Logf("node death: %s out of etcd after %.1f s, all 4 serving after %.1f s; %d requests, %d failed",
			victimUnit, s.results["node death to out of etcd (s)"], s.results["node death to full capacity (s)"], requests, failed)
		if failed > 0 {
			t.Fatalf("node death: %d of %d requests through the LB failed (first: %v)", failed, requests, firstFail)
		}
	})

	// 5. nginx killed with SIGKILL comes back and serves the right set.
	t.Run("nginx SIGKILL", func(t *testing.T) {
		edge := s.edgeNode()
		killed := time.Now()
		dockerCmd(t, "exec", edge, "docker", "kill", "-s", "KILL", "someapp-lb")
		s.waitAll(instances, 2*time.Minute)
		s.results["nginx SIGKILL to serving all (s)"] = time.Since(killed).Seconds()
	})
	// 6. A global load balancer (one per machine) rolls machine by
	// machine on real fleet: a mode switch restarts nginx on every
	// machine, never on more than max-unavailable (1) at once.
	t.Run("global LB rolls machine by machine", func(t *testing.T) {
		spec := func(mode string) string {
			b, err := os.ReadFile(specFile(t, "1.5", false, "READY_AFTER: 2s")) // what runs now: only the LB changes
			if err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(t.TempDir(), "deploy.yaml")
			edge := fmt.Sprintf("  edge:\n    nginx: {listen: 8080, upstream: someapp, image: %q, mode: %s}\n    machine: {global: true}\n", localcluster.OpenRestyTag, mode)
			out := strings.Replace(string(b), "services:\n", "services:\n"+edge, 1)
			if out == string(b) {
				t.Fatalf("no services: line in the spec to add the edge LB to:\n%s", b)
			}
			if err := os.WriteFile(p, []byte(out), 0o644); err != nil {
				t.Fatal(err)
			}
			return p
		}
		s.deployctl(10*time.Minute, "units", "submit", "-f", spec("dynamic"), "--start")
		var ips []string
		for name, u := range s.status() {
			if strings.HasPrefix(name, "someapp-edge@") && u.IP != "" {
				ips = append(ips, u.IP)
			}
		}
		sort.Strings(ips)
		// The cluster firewall (the program's) opens only 80 and 443, and
		// only on edge nodes: 8080 on every machine is a rule the user
		// adds for a global LB, as on DigitalOcean; here in each node's
		// firewall chain.
		for _, n := range s.nodes(t) {
			dockerCmd(t, "exec", n, "iptables", "-I", "DO-FIREWALL", "2", "-p", "tcp", "--dport", "8080", "-j", "RETURN")
		}
		alive := s.machines()
		if len(ips) != alive || len(ips) < 3 {
			t.Fatalf("global LB on %v, want one on each of fleet's %d machines", ips, alive)
		}
		probe := func(ip string) error {
			resp, err := s.http.Get("http://" + ip + ":8080/")
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				return fmt.Errorf("status %d", resp.StatusCode)
			}
			return nil
		}
		for _, ip := range ips {
			deadline := time.Now().Add(time.Minute)
			for probe(ip) != nil {
				if time.Now().After(deadline) {
					t.Fatalf("the LB on %s does not answer: %v", ip, probe(ip))
				}
				time.Sleep(200 * time.Millisecond)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		done := make(chan struct{})
		var wg sync.WaitGroup
		most, rounds := 0, 0
		downAt := map[string]bool{}
		wg.Add(1)
		go func() { // bounded: one round of probes every 100 ms until the roll ends
			defer wg.Done()
			for rounds < 20000 {
				select {
				case <-done:
					return
				case <-ctx.Done():
					return
				case <-time.After(100 * time.Millisecond):
				}
				rounds++
				down := 0
				for _, ip := range ips {
					if probe(ip) != nil {
						down++
						downAt[ip] = true
					}
				}
				most = max(most, down)
			}
		}()
		start := time.Now()
		out, err := s.try(10*time.Minute, "units", "submit", "-f", spec("reload"), "--start")
		close(done)
		wg.Wait()
		took := time.Since(start)
		if err != nil {
			t.Fatalf("submit mode: reload: %v\n%s", err, out)
		}
		s.results["global LB roll, mode switch on every machine (s)"] = took.Seconds()
		s.results["global LB roll: most machines down at once"] = float64(most)
		if most > 1 {
			t.Fatalf("%d machines' LBs were down at once during the roll, want at most max-unavailable (1)\n%s", most, out)
		}
		st := s.status()
		for name, u := range st {
			if pn, err := units.ParseName(name); err == nil && pn.IsInstance() && strings.HasPrefix(name, "someapp-edge") {
				if tpl := st[pn.Template()]; u.Hash != tpl.Hash {
					t.Errorf("%s runs %s, the template is %s", name, u.Hash, tpl.Hash)
				}
			}
		}
		t.Logf("global LB: %d machines rolled in %s; %d probe rounds, at most %d down at once, %d machines seen down", len(ips), took.Round(100*time.Millisecond), rounds, most, len(downAt))
	})

	// 7. A new version that never becomes healthy: the roll stops at the
	// progress deadline with one instance on it (not registered) and the
	// other three still serving the old version.
	t.Run("broken version stops at the deadline", func(t *testing.T) {
		before := s.status()["someapp@.service"].Hash
		spec := specFile(t, "1.5", false, "READY_AFTER: 2s", "HEALTHY: \"false\"")
		start := time.Now()
		out, err := s.try(5*time.Minute, "units", "submit", "-f", spec, "--start", "--progress-deadline", "30s")
		if err == nil {
			t.Fatalf("a never-healthy version rolled through:\n%s", out)
		}
		s.results["broken version: submit to stopped (s)"] = time.Since(start).Seconds()
		got, errs := s.answers(30)
		if len(errs) > 0 || len(got) != 3 {
			t.Fatalf("after the stopped roll the LB answers from %v with %d errors (%v), want 3 instances", got, len(errs), first(errs))
		}
		st := s.status()
		onNew := 0
		for i := 1; i <= 4; i++ {
			if h := st[fmt.Sprintf("someapp@%d.service", i)].Hash; h != before {
				onNew++
			}
		}
		if onNew != 1 {
			t.Fatalf("%d instances on the broken version, want 1 (max-unavailable)\n%s", onNew, out)
		}
		t.Logf("stopped as expected: %s", lastLine(out))
		s.dayTwo(t, spec, out)
	})
}

var logsHint = regexp.MustCompile("see `deployctl units logs (someapp@[0-9]+)`")

// dayTwo is issue 33's commands after the broken version stopped: the
// roll's message names the instance, its failing health check and the
// command that shows more; that command (units logs) shows the sidekick's
// lines from the instance's machine; units ssh runs there; history keeps
// the roll as stopped; the summary counts 3 serving.
func (s *story) dayTwo(t *testing.T, spec, stopped string) {
	m := logsHint.FindStringSubmatch(stopped)
	if m == nil || !strings.Contains(stopped, "GET /healthz -> 503") {
		t.Fatalf("the stopped roll does not name the instance, its health check's status and units logs:\n%s", stopped)
	}
	inst := m[1]
	logs := s.deployctl(time.Minute, "units", "logs", inst, "-n", "40")
	if !strings.Contains(logs, "someapp-discovery") && !strings.Contains(logs, "registrar") {
		t.Errorf("units logs %s shows no line of its sidekick:\n%s", inst, logs)
	}
	if out, err := s.try(time.Minute, "units", "ssh", inst, "--", "systemctl", "show", "-p", "LoadState", "--value", inst+".service"); err != nil || strings.TrimSpace(lastLine(out)) != "loaded" {
		t.Errorf("units ssh %s -- systemctl show -p LoadState: %v %q (the unit is not on the machine units ssh reached)", inst, err, out)
	}
	if out, err := s.try(time.Minute, "units", "ssh", inst, "--", "exit", "3"); err == nil || !strings.Contains(err.Error(), "exit status 3") {
		t.Errorf("units ssh %s -- exit 3: want exit status 3, got %v\n%s", inst, err, out)
	}
	// By the spec's file: the global LB case's spec (another set of
	// services) keeps a history of its own.
	hist := s.deployctl(time.Minute, "units", "history", "-f", spec)
	if last := lastLine(hist); !strings.Contains(last, "stopped") {
		t.Errorf("units history's newest entry is not the stopped roll:\n%s", hist)
	}
	sum := s.deployctl(time.Minute, "units", "status", "--summary")
	if !regexp.MustCompile(`(?m)^someapp\s+4\s+\d\s+\d\s+3\s`).MatchString(sum) {
		t.Errorf("units status --summary: want someapp wanted 4 and serving 3:\n%s", sum)
	}
	t.Logf("day 2:\n%s\n%s\n%s", lastLine(logs), lastLine(hist), sum)
}

// load is steady sequential traffic through the LB, bounded in count and
// time, with a poll of etcd for the fewest instances registered.
type load struct {
	mu            sync.Mutex
	requests      int
	failed        int
	firstFail     error
	minRegistered int
	stop          chan struct{}
	wg            sync.WaitGroup
	once          sync.Once
}

// The load's pace and bound: 200 requests a second at most, 2 hours'
// worth (a bounded loop that outlasts every case; the case's context ends
// it first).
const (
	loadEvery = 5 * time.Millisecond
	loadMax   = 1_440_000
)

// startLoad starts the traffic; halt stops it and returns the counts.
func (s *story) startLoad(ctx context.Context, cli *clientv3.Client) *load {
	l := &load{minRegistered: 99, stop: make(chan struct{})}
	l.wg.Add(2)
	go func() {
		defer l.wg.Done()
		// One request every loadEvery (at most), so that the load lasts the
		// whole case within its bound on the count.
		next := time.Now()
		for i := 0; i < loadMax; i++ {
			select {
			case <-l.stop:
				return
			case <-ctx.Done():
				return
			case <-time.After(time.Until(next)):
			}
			next = time.Now().Add(loadEvery)
			_, err := s.get()
			l.mu.Lock()
			l.requests++
			if err != nil {
				l.failed++
				if l.firstFail == nil {
					l.firstFail = err
				}
			}
			l.mu.Unlock()
		}
	}()
	go func() {
		defer l.wg.Done()
		for {
			select {
			case <-l.stop:
				return
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
			r, err := cli.Get(rctx, "/services/someapp/upstream/", clientv3.WithPrefix(), clientv3.WithCountOnly())
			rcancel()
			if err == nil {
				l.mu.Lock()
				l.minRegistered = min(l.minRegistered, int(r.Count))
				l.mu.Unlock()
			}
		}
	}()
	return l
}

// count is how many requests were sent so far.
func (l *load) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.requests
}

func (l *load) halt() (requests, failed, minRegistered int, firstFail error) {
	l.once.Do(func() { close(l.stop) })
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.requests, l.failed, l.minRegistered, l.firstFail
}

var versionLabel = regexp.MustCompile(`io\.deployctl\.version=([0-9a-f]+)`)

// checkVersions checks, after a roll, that fleet reports every instance
// with the template's hash and that the container running on each
// instance's machine carries the version the spec's app unit names.
func (s *story) checkVersions(t *testing.T, spec, what string) {
	t.Helper()
	dir := t.TempDir()
	s.deployctl(time.Minute, "units", "render", "-f", spec, "-o", dir)
	tpl, err := os.ReadFile(filepath.Join(dir, "someapp@.service"))
	if err != nil {
		t.Fatal(err)
	}
	m := versionLabel.FindSubmatch(tpl)
	if m == nil {
		t.Fatalf("no %s label in the rendered someapp@.service:\n%s", "io.deployctl.version", tpl)
	}
	want := string(m[1])
	st := s.status()
	for i := 1; i <= 4; i++ {
		u := st[fmt.Sprintf("someapp@%d.service", i)]
		if u.Hash != st["someapp@.service"].Hash {
			t.Errorf("%s: fleet reports someapp@%d with hash %s, the template is %s", what, i, u.Hash, st["someapp@.service"].Hash)
		}
		node := s.container(u.IP)
		got := dockerCmd(t, "exec", node, "docker", "inspect", "-f", `{{index .Config.Labels "io.deployctl.version"}}`, fmt.Sprintf("someapp-%d", i))
		if got != want {
			t.Fatalf("%s: someapp@%d's container on %s runs version %s, its unit names %s", what, i, node, got, want)
		}
	}
}

func lastLine(s string) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	return l[len(l)-1]
}

// healthy checks that every member answers its status (so has a leader).
func healthy(t *testing.T, cli *clientv3.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, m := range memberList(t, cli) {
		for _, ep := range m.ClientURLs {
			st, err := cli.Status(ctx, ep)
			if err != nil || st.Leader == 0 {
				t.Fatalf("member %s (%s) not healthy: %v", m.Name, ep, err)
			}
		}
	}
}

func members(t *testing.T, cli *clientv3.Client) int { return len(memberList(t, cli)) }

func memberList(t *testing.T, cli *clientv3.Client) []*etcdserverpb.Member {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := cli.MemberList(ctx)
	if err != nil {
		t.Fatalf("etcd member list: %v", err)
	}
	return r.Members
}

// TestE2ETLS: 3 nodes grown to 5 one at a time and shrunk to 3, etcd with mutual TLS and auth; the example spec as
// it is (https endpoints, the registrar's certificate).
func TestE2ETLS(t *testing.T) {
	s := newStory(t, "e2e-tls")
	s.up(3, 1, true)
	cli := s.etcd(true)
	// Grow to 5: pulumi up with nodeCount 5; infra joins each new node
	// through a v3 member add as root (auth is on by now), one at a time,
	// and returns with every member healthy.
	start := time.Now()
	s.up(5, 1, true)
	if got := members(t, cli); got != 5 {
		t.Fatalf("after growing to 5 nodes etcd has %d members", got)
	}
	healthy(t, cli)
	s.results["grow 3 to 5 nodes: pulumi up to every member healthy (s)"] = time.Since(start).Seconds()
	s.results["submit to all instances answering (s)"] = s.submit(specFile(t, "1.4", true)).Seconds()
	shrink := func(t *testing.T) {
		// Back to 3: fleet leaves the last two nodes (their instances move
		// where they can: spread puts at most one on each of the 3 left),
		// etcd removes their members, they go.
		start := time.Now()
		s.up(3, 1, true)
		s.results["shrink 5 to 3 nodes: pulumi up (s)"] = time.Since(start).Seconds()
		if n := members(t, cli); n != 3 {
			t.Fatalf("after shrinking to 3 nodes etcd has %d members", n)
		}
		healthy(t, cli)
		var got map[string]int
		var errs []error
		serving := 0
		for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(time.Second) {
			st := s.status()
			serving = 0
			for i := 1; i <= 4; i++ {
				if u := st[fmt.Sprintf("someapp@%d.service", i)]; u.CurrentState == "launched" && u.IP != "" {
					serving++
				}
			}
			got, errs = s.answers(30)
			if len(errs) == 0 && len(got) == 3 && serving == 3 {
				return
			}
		}
		t.Fatalf("after shrinking: LB answers %v with %d errors (%v); fleet runs %d instances; want 3 and 3", got, len(errs), first(errs), serving)
	}

	t.Run("client without certificate refused", func(t *testing.T) {
		ep := strings.Split(s.env["ETCDCTL_ENDPOINTS"], ",")[0]
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: s.tlsConfig(false)}}
		resp, err := c.Get(ep + "/v2/keys/_coreos.com/fleet/job")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			t.Fatalf("etcd answered a client without a certificate: %d %s", resp.StatusCode, b)
		}
		t.Logf("refused as expected: %v", err)
	})
	t.Run("registrar certificate only under /services/", func(t *testing.T) {
		node := s.edgeNode()
		etcdctl := "ETCDCTL_API=3 etcdctl --endpoints https://127.0.0.1:2379 --cacert /etc/ssl/etcd/ca.pem --cert /etc/ssl/etcd/registrar.pem --key /etc/ssl/etcd/registrar-key.pem"
		if out, err := exec.Command("docker", "exec", node, "sh", "-c", etcdctl+" put /services/e2e/probe x").CombinedOutput(); err != nil {
			t.Fatalf("registrar cannot write under /services/: %v\n%s", err, out)
		}
		out, err := exec.Command("docker", "exec", node, "sh", "-c", etcdctl+" put /_coreos.com/fleet/job/evil x").CombinedOutput()
		if err == nil || !strings.Contains(string(out), "permission denied") {
			t.Fatalf("registrar wrote outside /services/ (err %v): %s", err, out)
		}
	})
	t.Run("registrar certificate cannot drive fleet over v2", func(t *testing.T) {
		node := s.edgeNode()
		curl := "curl -sS -o /dev/null -w '%{http_code}' --cacert /etc/ssl/etcd/ca.pem --cert /etc/ssl/etcd/registrar.pem --key /etc/ssl/etcd/registrar-key.pem"
		out, _ := exec.Command("docker", "exec", node, "sh", "-c", curl+" -X PUT https://127.0.0.1:2379/v2/keys/_coreos.com/fleet/job/evil/object -d value=x").CombinedOutput()
		if code := strings.TrimSpace(string(out)); code != "401" && code != "403" {
			t.Fatalf("v2 PUT under fleet's prefix with the registrar's certificate: %s, want 401 or 403", code)
		}
	})
	t.Run("containers cannot reach the metadata service", func(t *testing.T) {
		node := s.edgeNode()
		// The node itself reads it (that is how it booted)...
		if out, err := exec.Command("docker", "exec", node, "curl", "-fsS", "-m", "5", "-o", "/dev/null", "http://169.254.169.254/metadata/v1.json").CombinedOutput(); err != nil {
			t.Fatalf("the node cannot read its metadata: %v %s", err, out)
		}
		// ...a container on it does not (it would read the host key).
		out, err := exec.Command("docker", "exec", node, "docker", "run", "--rm", "--entrypoint", "curl", "quay.io/coreos/flannel:v0.14.0", "-fsS", "-m", "5", "http://169.254.169.254/metadata/v1/user-data").CombinedOutput()
		if err == nil {
			t.Fatalf("a container read the node's user data:\n%.200s", out)
		}
		t.Logf("refused as expected: %s", strings.TrimSpace(string(out)))
		// ...nor does one on the host's network that is not root (the LB's
		// nginx workers run as nobody): the OUTPUT rule, issue 35.
		out, err = exec.Command("docker", "exec", node, "docker", "run", "--rm", "--network", "host", "--user", "65534:65534", "--entrypoint", "curl",
			"quay.io/coreos/flannel:v0.14.0", "-fsS", "-m", "5", "http://169.254.169.254/metadata/v1/user-data").CombinedOutput()
		if err == nil {
			t.Fatalf("a host-network container as nobody read the node's user data:\n%.200s", out)
		}
		t.Logf("host network as nobody, refused as expected: %s", strings.TrimSpace(string(out)))
	})
	t.Run("shrink", shrink)
	// On the 3 nodes left (3 passes, 9 etcd restarts).
	t.Run("rotate the CA under load", func(t *testing.T) {
		s.rotateUnderLoad(t)
		cli = s.etcd(true) // the operator's files are the new CA's now
		healthy(t, cli)
		if got, errs := s.answers(30); len(errs) > 0 || len(got) != 3 {
			t.Fatalf("after the rotation the LB answers %v with %d errors (%v); want 3 instances", got, len(errs), first(errs))
		}
	})
}

// rotateUnderLoad rotates the cluster's CA (deployctl cluster local
// rotate-ca: trust both, reissue, drop the old, node by node) while a
// steady load goes through the load balancer, etcd answers a quorum read
// every second, and every instance stays registered (the registrars keep
// their leases across the new CA); then checks that the nodes trust only
// the new CA and that the old CA's certificates are refused.
func (s *story) rotateUnderLoad(t *testing.T) {
	ca := func() string {
		b, err := os.ReadFile(filepath.Join(s.state, s.name, "tls", "ca.pem"))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	oldCA := ca()
	oldRoot, _ := os.ReadFile(s.env["ETCDCTL_CERT"])
	oldRootKey, _ := os.ReadFile(s.env["ETCDCTL_KEY"])
	// The quorum reads run on the edge node with its registrar's files
	// (which the rotation changes under it, as it changes the registrar's)
	// against every member: the operator's files are the new CA's only
	// once pulumi up returns.
	edge := s.edgeNode()
	count := func() (int, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, "docker", "exec", edge, "etcdctl", "--endpoints", s.env["ETCDCTL_ENDPOINTS"],
			"--cacert", "/etc/ssl/etcd/ca.pem", "--cert", "/etc/ssl/etcd/registrar.pem", "--key", "/etc/ssl/etcd/registrar-key.pem",
			"--command-timeout", "3s", "get", "/services/someapp/upstream/", "--prefix", "--keys-only", "-w", "json").Output()
		if err != nil { // etcdctl logs its retries on stderr; a read it retried and got is no failure
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				err = fmt.Errorf("%w: %s", err, strings.TrimSpace(string(ee.Stderr)))
			}
			return 0, err
		}
		var r struct{ Count int }
		if err := json.Unmarshal(out, &r); err != nil {
			return 0, fmt.Errorf("etcdctl get -w json: %w: %s", err, out)
		}
		return r.Count, nil
	}
	ec := etcdconn.Config{Endpoints: strings.Split(s.env["ETCDCTL_ENDPOINTS"], ","), CACert: s.env["ETCDCTL_CACERT"],
		Cert: s.env["ETCDCTL_CERT"], Key: s.env["ETCDCTL_KEY"], DialTimeout: 5 * time.Second}
	// Every instance registered now stays registered throughout.
	want, err := count()
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu                         sync.Mutex
		requests, failed, polls    int
		etcdFailures, fewest       = 0, want
		firstFailure, firstEtcdErr error
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // steady load: a request every 20 ms
		defer wg.Done()
		for tick := time.NewTicker(20 * time.Millisecond); ; {
			select {
			case <-stop:
				tick.Stop()
				return
			case <-tick.C:
			}
			_, err := s.get()
			mu.Lock()
			requests++
			if err != nil {
				failed++
				if firstFailure == nil {
					firstFailure = err
				}
			}
			mu.Unlock()
		}
	}()
	go func() { // etcd: a quorum read of the instances every second
		defer wg.Done()
		for tick := time.NewTicker(time.Second); ; {
			select {
			case <-stop:
				tick.Stop()
				return
			case <-tick.C:
			}
			n, err := count()
			mu.Lock()
			polls++
			if err != nil {
				etcdFailures++
				if firstEtcdErr == nil {
					firstEtcdErr = err
				}
			} else if n < fewest {
				fewest = n
			}
			mu.Unlock()
		}
	}()
	start := time.Now()
	out, rerr := s.try(30*time.Minute, "cluster", "local", "rotate-ca", "--name", s.name, "--state-dir", s.state)
	took := time.Since(start)
	close(stop)
	wg.Wait()
	if rerr != nil {
		t.Fatalf("rotate-ca: %v\n%s", rerr, out)
	}
	t.Logf("CA rotated in %s: %d requests, %d failed; %d etcd polls, %d failed; fewest instances registered %d", took.Round(time.Second), requests, failed, polls, etcdFailures, fewest)
	s.results["CA rotation under load (s)"] = took.Seconds()
	s.results["CA rotation: requests through the LB"] = float64(requests)
	s.results["CA rotation: failed requests"] = float64(failed)
	s.results["CA rotation: failed etcd quorum reads"] = float64(etcdFailures)
	if failed > 0 {
		t.Errorf("%d of %d requests failed during the rotation; first: %v", failed, requests, firstFailure)
	}
	if etcdFailures > 0 {
		t.Errorf("%d of %d etcd quorum reads failed during the rotation; first: %v", etcdFailures, polls, firstEtcdErr)
	}
	// The registrars reach only their node's etcd (the spec's default
	// endpoint): while it restarts, an instance's lease can lapse and it is
	// out of the LB for a moment (seen in 2 of 6 runs; no request failed).
	// One node restarts at a time and spread puts one instance on each, so
	// never more than one is missing.
	if fewest < want-1 {
		t.Errorf("only %d instances registered at one poll during the rotation, want at least %d throughout", fewest, want-1)
	}
	s.results["CA rotation: fewest instances registered at a poll"] = float64(fewest)
	// Every node's etcd and clients restarted during the rotation, and
	// each pass left its marker (written after its last restart).
	for _, n := range s.nodes(t) {
		for _, unit := range []string{"etcd-member", "fleet", "flanneld"} {
			at := dockerCmd(t, "exec", n, "sh", "-c", "date -d \"$(systemctl show -p ActiveEnterTimestamp --value "+unit+")\" +%s")
			if sec, err := strconv.ParseInt(at, 10, 64); err != nil || sec < start.Unix() {
				t.Errorf("%s: %s active since %s, before the rotation started (%s)", n, unit, at, start.Format(time.TimeOnly))
			}
		}
		if m := dockerCmd(t, "exec", n, "ls", nodescripts.RotationMarkerDir); len(strings.Fields(m)) < 3 {
			t.Errorf("%s: rotation markers %q, want one per pass", n, m)
		}
	}
	newCA := ca()
	if newCA == oldCA {
		t.Fatal("the cluster's CA did not change")
	}
	for _, n := range s.nodes(t) {
		got := dockerCmd(t, "exec", n, "cat", "/etc/ssl/etcd/ca.pem")
		if strings.TrimSpace(got) != strings.TrimSpace(newCA) {
			t.Errorf("%s trusts:\n%s\nwant only the new CA", n, got)
		}
	}
	// The old root certificate is refused now.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "root.pem"), oldRoot, 0o600)
	os.WriteFile(filepath.Join(dir, "root-key.pem"), oldRootKey, 0o600)
	old := ec
	old.Cert, old.Key = filepath.Join(dir, "root.pem"), filepath.Join(dir, "root-key.pem")
	oc, err := old.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer oc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := oc.Get(ctx, "/services/", clientv3.WithPrefix(), clientv3.WithCountOnly()); err == nil {
		t.Error("etcd still accepts a certificate of the old CA")
	}
}

// nodes are the cluster's node containers.
func (s *story) nodes(t *testing.T) []string {
	out := dockerCmd(t, "ps", "--filter", "label=io.deployctl.local-cluster="+s.name, "--format", "{{.Names}}")
	var names []string
	for _, n := range strings.Fields(out) {
		if !strings.Contains(n, "files") {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// workerInstance is an app instance on a worker (not the LB's) node: its
// unit, node container and address.
func (s *story) workerInstance(t *testing.T) (unit, node, ip string) {
	st := s.status()
	for i := 1; i <= 4; i++ {
		u := st[fmt.Sprintf("someapp@%d.service", i)]
		if c := s.container(u.IP); c != s.edgeNode() {
			return fmt.Sprintf("someapp@%d", i), c, u.IP
		}
	}
	t.Fatal("no instance on a worker node")
	return "", "", ""
}

// cut drops (on) or lets through again (off) every packet between node
// and the cluster's other nodes, on all their networks.
func (s *story) cut(t *testing.T, node string, on bool) {
	op := "-I"
	if !on {
		op = "-D"
	}
	for _, other := range s.nodes(t) {
		if other == node {
			continue
		}
		ips := dockerCmd(t, "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", other)
		for _, ip := range strings.Fields(ips) {
			dockerCmd(t, "exec", node, "iptables", op, "INPUT", "-s", ip, "-j", "DROP")
			dockerCmd(t, "exec", node, "iptables", op, "OUTPUT", "-d", ip, "-j", "DROP")
		}
	}
}

// partition is TestE2EPlain's case 3b.
func (s *story) partition(t *testing.T, cli *clientv3.Client) {
	unit, node, _ := s.workerInstance(t)
	key := "/services/someapp/upstream/" + unit
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	before, err := cli.Get(ctx, key)
	if err != nil || len(before.Kvs) != 1 {
		t.Fatalf("%s's registration: %v %v", unit, before, err)
	}
	old := string(before.Kvs[0].Value)
	load := s.startLoad(ctx, cli)
	w := cli.Watch(ctx, key, clientv3.WithRev(before.Header.Revision+1))
	cutAt := time.Now()
	s.cut(t, node, true)
	healed := false
	defer func() {
		if !healed {
			s.cut(t, node, false)
		}
	}()
	var values []string // every value the key took, in order ("" deleted)
	var movedAt, healAt time.Duration
	heal := time.After(90 * time.Second)
	settle := time.After(90*time.Second + 75*time.Second)
watch:
	for {
		select {
		case wr := <-w:
			for _, ev := range wr.Events {
				v := string(ev.Kv.Value)
				if ev.Type == clientv3.EventTypeDelete {
					v = ""
				}
				values = append(values, v)
				if v != "" && v != old && movedAt == 0 {
					movedAt = time.Since(cutAt)
				}
			}
		case <-heal:
			s.cut(t, node, false)
			healed, healAt = true, time.Since(cutAt)
		case <-settle:
			break watch
		}
	}
	requests, failed, minRegistered, firstFail := load.halt()
	s.results["failed requests through a 90 s partition"] = float64(failed)
	s.results["partition: instance moved and registered (s)"] = movedAt.Seconds()
	t.Logf("%s on %s partitioned for %s: registered elsewhere after %.1f s; its key took %q; %d requests, %d failed, at least %d registered",
		unit, node, healAt.Round(time.Second), movedAt.Seconds(), values, requests, failed, minRegistered)
	if failed > 0 {
		t.Logf("%d of %d requests failed through the partition (first: %v)", failed, requests, firstFail)
	}
	if movedAt == 0 {
		t.Fatalf("%s was not registered elsewhere within the partition (its key took %q)", unit, values)
	}
	// After the move, one copy: the key never goes back to the copy left
	// behind, nor changes again.
	var after []string
	for i, v := range values {
		if v != "" && v != old {
			after = values[i+1:]
			break
		}
	}
	if len(after) > 0 {
		t.Errorf("after %s moved its key changed again: %q (two copies registered)", unit, after)
	}
	// And one container: the copy left behind is stopped once the node
	// hears of the move.
	name := strings.Replace(unit, "@", "-", 1)
	running := 0
	for _, n := range s.nodes(t) {
		out, err := exec.Command("docker", "exec", n, "docker", "ps", "-q", "--filter", "name=^"+name+"$").Output()
		if err == nil && strings.TrimSpace(string(out)) != "" {
			running++
		}
	}
	if running != 1 {
		t.Errorf("%d containers named %s run 75 s after the partition healed, want 1", running, name)
	}
}
