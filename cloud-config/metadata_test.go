package cloudconfig_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	cloudconfig "github.com/deployctl/deployctl/cloud-config"
	"github.com/deployctl/deployctl/internal/testenv"
	"golang.org/x/sys/unix"
)

// netns runs a command in network namespace ns.
func netns(ctx context.Context, ns string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns}, args...)...).CombinedOutput()
	return string(out), err
}

// listenIn opens a TCP listener inside network namespace ns (the socket
// stays there after the thread switches back).
func listenIn(ns, addr string) (net.Listener, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		return nil, err
	}
	defer orig.Close()
	target, err := os.Open("/var/run/netns/" + ns)
	if err != nil {
		return nil, err
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		return nil, err
	}
	l, lerr := net.Listen("tcp", addr)
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		panic(fmt.Sprintf("cannot return to the test's network namespace: %v", err))
	}
	return l, lerr
}

// A node's containers cannot reach the metadata service (it serves the
// node's user data with its SSH host key), nor can a process of the
// host's network that is not root, while root on the host can: the
// commands of metadata-block.service, run on a "host" namespace that
// routes between a "container" namespace and a stand-in metadata service
// at 169.254.169.254 in a namespace of its own, all made by this test.
func TestContainersCannotReachMetadata(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Missing(t, "root, to make network namespaces")
	}
	for _, bin := range []string{"ip", "iptables", "curl"} {
		if _, err := exec.LookPath(bin); err != nil {
			testenv.Missing(t, "%s (make check installs it)", bin)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	id := fmt.Sprintf("%d", os.Getpid()%100000)
	host, ctr, meta := "dc-host-"+id, "dc-ctr-"+id, "dc-meta-"+id
	setup := strings.Join([]string{
		"set -e",
		"ip netns add " + host, "ip netns add " + ctr, "ip netns add " + meta,
		"ip link add dcm" + id + " netns " + host + " type veth peer name vm netns " + meta,
		"ip link add dcc" + id + " netns " + host + " type veth peer name vc netns " + ctr,
		"ip -n " + meta + " link set lo up", "ip -n " + meta + " link set vm up",
		"ip -n " + meta + " addr add " + cloudconfig.MetadataAddr + "/16 dev vm",
		"ip -n " + host + " link set lo up",
		"ip -n " + host + " link set dcm" + id + " up", "ip -n " + host + " addr add 169.254.0.1/16 dev dcm" + id,
		"ip -n " + host + " link set dcc" + id + " up", "ip -n " + host + " addr add 172.31.254.1/24 dev dcc" + id,
		"ip -n " + ctr + " link set lo up", "ip -n " + ctr + " link set vc up",
		"ip -n " + ctr + " addr add 172.31.254.2/24 dev vc", "ip -n " + ctr + " route add default via 172.31.254.1",
		"ip -n " + meta + " route add 172.31.254.0/24 via 169.254.0.1",
		"ip netns exec " + host + " sysctl -qw net.ipv4.ip_forward=1",
	}, "\n")
	t.Cleanup(func() {
		for _, ns := range []string{host, ctr, meta} {
			exec.Command("ip", "netns", "del", ns).Run()
		}
	})
	if out, err := exec.CommandContext(ctx, "sh", "-c", setup).CombinedOutput(); err != nil {
		t.Fatalf("network namespaces: %v\n%s", err, out)
	}
	l, err := listenIn(meta, cloudconfig.MetadataAddr+":80")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "#cloud-config\nssh_host_ed25519_key: stand-in\n")
	}), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(l)
	defer srv.Close()
	fetch := func(ns string) (string, error) {
		return netns(ctx, ns, "curl", "-sS", "--max-time", "3", "http://"+cloudconfig.MetadataAddr+"/metadata/v1/user-data")
	}
	if out, err := fetch(ctr); err != nil || !strings.Contains(out, "ssh_host") {
		t.Fatalf("without the rules the container should reach the stand-in (the test's own check): %v %s", err, out)
	}
	rules := func() string {
		out, _ := netns(ctx, host, "iptables", "-w", "-S")
		return out
	}
	for run := 1; run <= 2; run++ { // every boot runs them again
		for _, c := range cloudconfig.MetadataBlockCommands {
			if out, err := netns(ctx, host, "sh", "-c", c); err != nil {
				t.Fatalf("run %d: %s: %v\n%s", run, c, err, out)
			}
		}
		if run == 1 {
			defer func(first string) {
				if again := rules(); again != first {
					t.Errorf("a second run changed the rules:\n%s\nwas:\n%s", again, first)
				}
			}(rules())
		}
	}
	if out, err := fetch(ctr); err == nil {
		t.Fatalf("a container reached the metadata service through the node:\n%s", out)
	}
	if out, err := fetch(host); err != nil || !strings.Contains(out, "ssh_host") {
		t.Fatalf("the host itself must still reach the metadata service (coreos-cloudinit): %v %s", err, out)
	}
	// A host-network container (the LB's nginx workers run as nobody) is
	// on the host's own path (issue 35): only root gets through.
	asNobody, err := netns(ctx, host, "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
		"curl", "-sS", "--max-time", "3", "http://"+cloudconfig.MetadataAddr+"/metadata/v1/user-data")
	if err == nil || strings.Contains(asNobody, "ssh_host") {
		t.Fatalf("a process of the host's network as nobody reached the metadata service:\n%s", asNobody)
	}
	if !strings.Contains(cloudconfig.MetadataBlockService, "Before=docker.service flanneld.service") {
		t.Fatal("the rules must be in place before Docker and flannel start")
	}
}
