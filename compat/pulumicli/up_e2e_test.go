//go:build e2e

package pulumicli

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// standIn is `deployctl cluster local api` running for a test: the
// DigitalOcean API whose droplets are node containers.
type standIn struct {
	name, stateDir, bin string
	config              []string // the pulumi config set lines it printed
	cmd                 *exec.Cmd
}

// startStandIn starts the API and reads the config lines it prints; the
// test's end stops it and removes the cluster (cluster local down).
func startStandIn(t *testing.T, name string) *standIn {
	t.Helper()
	bin, tools := os.Getenv("DEPLOYCTL_BIN"), os.Getenv("DEPLOYCTL_TOOLS")
	if bin == "" || tools == "" {
		missing(t, "DEPLOYCTL_BIN and DEPLOYCTL_TOOLS (make e2e sets them)")
	}
	if _, err := exec.LookPath("docker"); err != nil {
		missing(t, "docker: %v", err)
	}
	s := &standIn{name: name, stateDir: t.TempDir(), bin: bin}
	s.cmd = exec.Command(filepath.Join(bin, "deployctl"), "cluster", "local", "api", "--name", name, "--state-dir", s.stateDir,
		"--tools", tools, "--bin", bin, "--listen", "127.0.0.1:0")
	out, err := s.cmd.StdoutPipe()
	must(t, err)
	logf, err := os.Create(filepath.Join(t.TempDir(), "api.log"))
	must(t, err)
	s.cmd.Stderr = logf
	must(t, s.cmd.Start())
	t.Cleanup(func() {
		s.cmd.Process.Signal(syscall.SIGTERM)
		s.cmd.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("the stand-in's log:\n%s", lastLines(string(b), 60))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		exec.CommandContext(ctx, filepath.Join(bin, "deployctl"), "cluster", "local", "down", "--name", name, "--state-dir", s.stateDir).Run()
	})
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	timeout := time.After(20 * time.Minute)
	for len(s.config) < 5 {
		select {
		case l, ok := <-lines:
			if !ok {
				b, _ := os.ReadFile(logf.Name())
				t.Fatalf("cluster local api ended before it printed its config:\n%s", b)
			}
			if strings.HasPrefix(l, "pulumi config set") {
				s.config = append(s.config, l)
			}
		case <-timeout:
			t.Fatal("cluster local api printed no config in 20 minutes")
		}
	}
	go func() {
		for range lines {
		}
	}()
	return s
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(l[max(0, len(l)-n):], "\n")
}

// droplets are the stand-in's node containers.
func (s *standIn) droplets(t *testing.T) []string {
	out, err := exec.Command("docker", "ps", "-a", "--filter", "label=io.deployctl.local-cluster="+s.name, "--filter", "name=droplet", "--format", "{{.Names}}").Output()
	must(t, err)
	return strings.Fields(string(out))
}

// membersHealthy asks every droplet's etcd member for /health (with the
// fleet role's certificate, as the nodes' clients do); an error names the
// first that is not.
func (s *standIn) membersHealthy(t *testing.T) error {
	healthy, all, err := s.health(t)
	if healthy < all {
		return err
	}
	return nil
}

// health counts the droplets whose etcd member answers healthy.
func (s *standIn) health(t *testing.T) (healthy, all int, first error) {
	for _, c := range s.droplets(t) {
		all++
		out, err := exec.Command("docker", "exec", c, "curl", "-fsS", "--max-time", "3", "--cacert", "/etc/ssl/etcd/ca.pem",
			"--cert", "/etc/ssl/etcd/fleet.pem", "--key", "/etc/ssl/etcd/fleet-key.pem", "https://127.0.0.1:2379/health").CombinedOutput()
		if err != nil || !strings.Contains(string(out), `"health":"true"`) {
			if first == nil {
				first = fmt.Errorf("%s: etcd not healthy: %v %s", c, err, out)
			}
			continue
		}
		healthy++
	}
	return healthy, all, first
}

var exportRe = regexp.MustCompile(`(?m)^export (.*)$`)

// endpoints runs `deployctl cluster endpoints` on the stack's outputs and
// returns the environment it exports.
func (e *engine) endpoints(s *standIn) []string {
	e.t.Helper()
	outputs := filepath.Join(e.home, "outputs.json")
	b := e.mustRun(0, "pulumi", "stack", "output", "--json", "--show-secrets")
	must(e.t, os.WriteFile(outputs, []byte(jsonPart(b)), 0o600))
	out := e.mustRun(0, filepath.Join(s.bin, "deployctl"), "cluster", "endpoints", "--outputs", outputs, "--tls-dir", filepath.Join(e.home, "cluster"))
	var env []string
	for _, m := range exportRe.FindAllStringSubmatch(out, -1) {
		env = append(env, strings.Fields(m[1])...)
	}
	return env
}

// outputs are the stack outputs these tests read.
type outputs struct {
	LB         []string `json:"lbAddresses"`
	PrivateIPs []string `json:"nodePrivateIps"`
}

func (e *engine) outputs() outputs {
	var o outputs
	must(e.t, json.Unmarshal([]byte(jsonPart(e.mustRun(0, "pulumi", "stack", "output", "--json"))), &o))
	return o
}

// lb is the stack's first load balancer address.
func (e *engine) lb() string {
	o := e.outputs()
	if len(o.LB) == 0 {
		e.t.Fatal("the stack has no lbAddresses")
	}
	return "http://" + o.LB[0] + "/"
}

// answers asks the LB n times: the count per answer, and the errors.
func answers(url string, n int) (map[string]int, []error) {
	c := &http.Client{Timeout: 2 * time.Second}
	got := map[string]int{}
	var errs []error
	for i := 0; i < n; i++ {
		resp, err := c.Get(url)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		resp.Body.Close()
		if resp.StatusCode != 200 {
			errs = append(errs, fmt.Errorf("status %d", resp.StatusCode))
			continue
		}
		got[strings.TrimSpace(string(b))]++
	}
	return got, errs
}

// stranger runs a shell in a container on the cluster's network that is
// not a droplet (the node image, nothing pulled).
func (s *standIn) stranger(t *testing.T, script string) (string, error) {
	b, err := os.ReadFile(filepath.Join(s.stateDir, s.name, "cluster.json"))
	must(t, err)
	var st struct{ Network, Image string }
	must(t, json.Unmarshal(b, &st))
	out, err := exec.Command("docker", "run", "--rm", "--network", st.Network, "--entrypoint", "bash", st.Image, "-c", script).CombinedOutput()
	return string(out), err
}

// report records a figure for make bench (bench/out/e2e.json's format:
// name → value), when DEPLOYCTL_E2E_REPORT names a file.
func report(t *testing.T, name string, v float64) {
	t.Logf("e2e-pulumi: %s = %.2f", name, v)
	p := os.Getenv("DEPLOYCTL_E2E_REPORT")
	if p == "" {
		return
	}
	m := map[string]float64{}
	if b, err := os.ReadFile(p); err == nil {
		json.Unmarshal(b, &m)
	}
	m["pulumi: "+name] = v
	b, _ := json.MarshalIndent(m, "", "  ")
	os.WriteFile(p, b, 0o644)
}

// TestE2EPulumiUp is the README's path for real: a new stack with the
// README's config and Pulumi.yaml's defaults (TLS on) against `deployctl
// cluster local api`, the real engine and the real providers. pulumi up
// makes the cluster; a second plans nothing; cluster endpoints and units
// submit serve the example through the LB from every instance; the
// firewalls hold; pulumi destroy leaves no droplet and no resource in the
// stand-in. The same program's rotation, grow and shrink run in
// localcluster's TLS story (cluster local up and rotate-ca are
// pulumi up of infra.Program, inline); this test is the CLI's own path:
// the README's commands and the Go language host building cmd/pulumi.
func TestE2EPulumiUp(t *testing.T) {
	api := startStandIn(t, "pe2e")
	e := newEngine(t, "e2e")
	e.network = true
	e.configureAsReadme()
	for _, l := range api.config {
		e.mustRun(0, "bash", "-c", l)
	}

	start := time.Now()
	if out, err := e.run(40*time.Minute, "pulumi", "up", "--yes", "--skip-preview"); err != nil {
		t.Fatalf("pulumi up of a new stack: %v\n%s", err, lastLines(out, 80))
	}
	report(t, "up of a new stack to every member healthy (s)", time.Since(start).Seconds())
	if err := api.membersHealthy(t); err != nil {
		t.Fatalf("after pulumi up: %v", err)
	}
	if n := len(api.droplets(t)); n != 5 {
		t.Fatalf("%d droplets, want Pulumi.yaml's 5", n)
	}
	if out, err := e.run(10*time.Minute, "pulumi", "preview", "--expect-no-changes"); err != nil {
		t.Fatalf("a second pulumi up would change something: %v\n%s", err, lastLines(out, 60))
	}

	t.Run("submit through cluster endpoints", func(t *testing.T) { submitExample(t, e, api) })
	t.Run("firewalls", func(t *testing.T) { checkFirewalls(t, e, api) })

	start = time.Now()
	if out, err := e.run(20*time.Minute, "pulumi", "destroy", "--yes", "--skip-preview"); err != nil {
		t.Fatalf("pulumi destroy: %v\n%s", err, lastLines(out, 60))
	}
	report(t, "destroy (s)", time.Since(start).Seconds())
	if left := api.droplets(t); len(left) > 0 {
		t.Errorf("droplets left after pulumi destroy: %v", left)
	}
	b, err := os.ReadFile(filepath.Join(api.stateDir, api.name, "digitalocean.json"))
	must(t, err)
	var st map[string]json.RawMessage
	must(t, json.Unmarshal(b, &st))
	for _, kind := range []string{"keys", "tags", "vpcs", "images", "droplets", "firewalls"} {
		if s := string(st[kind]); s != "{}" {
			t.Errorf("stand-in %s left after pulumi destroy: %s", kind, s)
		}
	}
}

func submitExample(t *testing.T, e *engine, api *standIn) {
	env := e.endpoints(api)
	start := time.Now()
	cmd := exec.Command(filepath.Join(api.bin, "deployctl"), "units", "submit", "-f", filepath.Join(e.root, "examples", "deploy.yaml"), "--start",
		"--ssh-key", filepath.Join(e.home, ".ssh", "id_ed25519"))
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("units submit: %v\n%s", err, lastLines(string(out), 40))
	}
	lb := e.lb()
	var got map[string]int
	var errs []error
	for end := time.Now().Add(3 * time.Minute); time.Now().Before(end); time.Sleep(500 * time.Millisecond) {
		if got, errs = answers(lb, 16); len(errs) == 0 && len(got) == 4 {
			report(t, "submit to all 4 instances answering (s)", time.Since(start).Seconds())
			return
		}
	}
	t.Fatalf("the LB answers from %v with errors %v; want 4 instances", got, errs)
}

func checkFirewalls(t *testing.T, e *engine, api *standIn) {
	o := e.outputs()
	probe := func(ip, port string) string {
		return fmt.Sprintf("timeout 3 bash -c '</dev/tcp/%s/%s' && echo open || echo closed", ip, port)
	}
	for _, c := range []struct{ ip, port, want, why string }{
		{o.PrivateIPs[1], "2379", "closed", "etcd's client port from a container that is not a cluster droplet"},
		{o.PrivateIPs[1], "2380", "closed", "etcd's peer port from a container that is not a cluster droplet"},
		{o.PrivateIPs[1], "22", "closed", "SSH from an address outside allowedSshCidrs"},
		{o.LB[0], "80", "open", "the LB's port 80 from anywhere"},
	} {
		out, _ := api.stranger(t, probe(c.ip, c.port))
		if !strings.Contains(out, c.want) {
			t.Errorf("%s (%s:%s): %s, want %s", c.why, c.ip, c.port, strings.TrimSpace(out), c.want)
		}
	}
}
