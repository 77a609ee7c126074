package cli_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/deployctl/deployctl/internal/containers"
	"github.com/deployctl/deployctl/internal/testenv"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// waitDeleted returns a channel that receives the time key's delete event
// arrives.
func waitDeleted(ctx context.Context, cli *clientv3.Client, key string, rev int64) <-chan time.Time {
	out := make(chan time.Time, 1)
	wch := cli.Watch(ctx, key, clientv3.WithRev(rev))
	go func() {
		for resp := range wch {
			for _, ev := range resp.Events {
				if ev.Type == clientv3.EventTypeDelete {
					out <- time.Now()
					return
				}
			}
		}
	}()
	return out
}

func pct(ds []time.Duration, p float64) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := max(0, min(int(p*float64(len(s))+0.5)-1, len(s)-1))
	return s[i]
}

func rssKiB(pid int) int {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			return n
		}
	}
	return 0
}

// BenchmarkDockerStopToWithdraw: the registrar binary follows a demo app
// container; time from the docker stop call to the key's delete event, over
// 20 stop/start cycles, and the registrar's resident memory meanwhile.
func BenchmarkDockerStopToWithdraw(b *testing.B) { benchWithdraw(b, "stop") }

// BenchmarkDockerKillToWithdraw: the same with docker kill (SIGKILL), a
// crash rather than an orderly stop.
func BenchmarkDockerKillToWithdraw(b *testing.B) { benchWithdraw(b, "kill") }

func benchWithdraw(b *testing.B, action string) {
	dc := testenv.Docker(b)
	srv, etcd := testenv.Etcd(b)
	network := testenv.Network(b, dc)
	name := testenv.Unique("someapp-1")
	testenv.RunApp(b, dc, name, "someapp@1", network)
	key := "/services/someapp/upstream/someapp@1"
	cmd, _ := startRegistrarTB(b, "announce", "--allow-loopback", "--service", "someapp", "--instance", "someapp@1", "--container", name,
		"--network", network, "--port", "3000", "--etcd-endpoints", srv.Endpoint(), "--log-level", "warn")
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		var lat []time.Duration
		maxRSS := 0
		for r := 0; r < 20; r++ {
			rev := registeredRev(b, etcd, key)
			maxRSS = max(maxRSS, rssKiB(cmd.Process.Pid))
			wctx, cancel := context.WithCancel(ctx)
			del := waitDeleted(wctx, etcd, key, rev)
			t0 := time.Now()
			var err error
			if action == "kill" {
				err = dc.Kill(ctx, name, "KILL")
			} else {
				err = containers.Stop(ctx, dc, name, 10*time.Second)
			}
			if err != nil {
				b.Fatal(err)
			}
			select {
			case t1 := <-del:
				lat = append(lat, t1.Sub(t0))
			case <-time.After(20 * time.Second):
				b.Fatal("key not withdrawn within 20s of docker stop")
			}
			cancel()
			if err := containers.Start(ctx, dc, name); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(pct(lat, .5))/1e6, "p50-ms")
		b.ReportMetric(float64(pct(lat, .99))/1e6, "p99-ms")
		b.ReportMetric(float64(maxRSS)/1024, "rss-MiB")
	}
}

// BenchmarkKillToExpire: SIGKILL the registrar (TTL 2s) and time until etcd
// expires its key.
func BenchmarkKillToExpire(b *testing.B) {
	srv, etcd := testenv.Etcd(b)
	ctx := context.Background()
	key := "/services/web/upstream/web@1"
	for i := 0; i < b.N; i++ {
		var lat []time.Duration
		for r := 0; r < 3; r++ {
			cmd, _ := startRegistrarTB(b, "announce", "--allow-loopback", "--service", "web", "--instance", "web@1", "--addr", "127.0.0.1:3000",
				"--ttl", "2s", "--etcd-endpoints", srv.Endpoint())
			rev := registeredRev(b, etcd, key)
			del := waitDeleted(ctx, etcd, key, rev)
			t0 := time.Now()
			_ = cmd.Process.Kill()
			_, _ = cmd.Process.Wait()
			select {
			case t1 := <-del:
				lat = append(lat, t1.Sub(t0))
			case <-time.After(20 * time.Second):
				b.Fatal("key did not expire within 20s")
			}
		}
		b.ReportMetric(float64(pct(lat, .5))/1e6, "p50-ms")
		b.ReportMetric(float64(pct(lat, 1))/1e6, "max-ms")
		b.ReportMetric(2000, "ttl-ms")
	}
}

func startRegistrarTB(tb testing.TB, args ...string) (*exec.Cmd, *strings.Builder) {
	tb.Helper()
	bin := testenv.Binary(tb, registrarPkg)
	cmd := exec.Command(bin, args...)
	var logs strings.Builder
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
	return cmd, &logs
}

// BenchmarkKillToExpireDefaults compares, with real default timings, how
// long a killed sidekick's key lingers: the registrar with its default 15s
// TTL, and the seed's loop (etcdctl set --ttl 60 every 45s) killed right
// after a refresh, its worst case. One sample each (about 75s).
func BenchmarkKillToExpireDefaults(b *testing.B) {
	srv, etcd := testenv.Etcd(b)
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		key := "/services/web/upstream/web@1"
		cmd, _ := startRegistrarTB(b, "announce", "--allow-loopback", "--service", "web", "--instance", "web@1", "--addr", "127.0.0.1:3000",
			"--etcd-endpoints", srv.Endpoint())
		rev := registeredRev(b, etcd, key)
		del := waitDeleted(ctx, etcd, key, rev)
		t0 := time.Now()
		_ = cmd.Process.Kill()
		_, _ = cmd.Process.Wait()
		ours := (<-del).Sub(t0)

		// The seed's sidekick: a fresh 60s TTL every 45s; killed right after
		// a refresh, the key lives its whole TTL.
		seedKey := "/services/web/upstream/web@2"
		lease, err := etcd.Grant(ctx, 60)
		if err != nil {
			b.Fatal(err)
		}
		resp, err := etcd.Put(ctx, seedKey, "127.0.0.1:3001", clientv3.WithLease(lease.ID))
		if err != nil {
			b.Fatal(err)
		}
		del = waitDeleted(ctx, etcd, seedKey, resp.Header.Revision+1)
		t0 = time.Now()
		// (the loop is killed here: no further refresh, no rm)
		var seed time.Duration
		select {
		case t1 := <-del:
			seed = t1.Sub(t0)
		case <-time.After(90 * time.Second):
			b.Fatal("seed key did not expire within 90s")
		}
		b.ReportMetric(ours.Seconds(), "registrar-s")
		b.ReportMetric(seed.Seconds(), "seed-s")
	}
}

// registeredRev waits for key and returns the revision after it, from
// which a watch sees its deletion.
func registeredRev(tb testing.TB, etcd *clientv3.Client, key string) int64 {
	tb.Helper()
	var rev int64
	testenv.WaitFor(tb, 15*time.Second, "key registered", func() bool {
		resp, err := etcd.Get(context.Background(), key)
		if err != nil || len(resp.Kvs) == 0 {
			return false
		}
		rev = resp.Header.Revision + 1
		return true
	})
	return rev
}
