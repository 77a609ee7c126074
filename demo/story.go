package demo

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/deployctl/deployctl/registrar/catalog"
	"github.com/deployctl/deployctl/registrar/registry"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

func (r *run) story(ctx context.Context) error {
	want := len(r.apps)
	if _, err := waitUntil(ctx, 60*time.Second, func() bool { return len(r.keys(ctx)) == want }); err != nil {
		return fmt.Errorf("waiting for %d instances in etcd: %w (logs in %s)", want, err, r.dir)
	}
	r.say("\n==> etcd: %s (the v3 view of the talk's `etcdctl ls --recursive`)", registry.UpstreamPrefix(registry.DefaultPrefix, r.svc.Name))
	r.printTree(ctx)
	if err := r.waitSettled(ctx, want); err != nil {
		return err
	}
	r.say("\n==> curl %s, 8 times (round robin across the instances):", r.url)
	var seq []string
	for i := 0; i < 8; i++ {
		seq = append(seq, answer(r.fetch(ctx)))
	}
	r.say("    %s", strings.Join(seq, " "))
	r.res.Served, _ = r.servedSet(ctx, 8*want)

	victim := r.apps[1%len(r.apps)]
	r.res.Killed = victim.instance
	r.say("\n==> Killing %s (%s)", victim.instance, map[bool]string{true: "docker kill", false: "kill -9"}[r.docker != nil])
	key := registry.Key(registry.DefaultPrefix, r.svc.Name, victim.instance)
	gone := r.watchKey(ctx, key, clientv3.EventTypeDelete)
	// nginx is watched from the kill on, beside the kill call itself:
	// Docker's kill answers only once the container is gone (~100 ms),
	// later than the registrar sees it die.
	t0 := time.Now()
	killed := make(chan error, 1)
	go func() { killed <- r.stopApp(ctx, victim) }()
	tEtcd, tNginx, err := r.waitGone(ctx, victim.instance, gone)
	if kerr := <-killed; kerr != nil {
		return kerr
	}
	if err != nil {
		return err
	}
	r.res.KillToEtcd, r.res.KillToNginx = tEtcd.Sub(t0), tNginx.Sub(t0)
	r.say("    gone from etcd after %s, from nginx after %s", r.res.KillToEtcd.Round(time.Millisecond), r.res.KillToNginx.Round(time.Millisecond))
	r.printTree(ctx)

	r.say("\n==> Starting %s again", victim.instance)
	back := r.watchKey(ctx, key, clientv3.EventTypePut)
	t0 = time.Now()
	if err := r.restartApp(ctx, victim); err != nil {
		return err
	}
	tEtcd, err = waitEvent(ctx, back)
	if err != nil {
		return fmt.Errorf("waiting for %s to return to etcd: %w", victim.instance, err)
	}
	if tNginx, err = r.waitNginx(ctx, victim.instance); err != nil {
		return err
	}
	r.res.StartToEtcd, r.res.StartToNginx = tEtcd.Sub(t0), tNginx.Sub(t0)
	r.say("    back in etcd after %s (health check passed), served by nginx after %s", r.res.StartToEtcd.Round(time.Millisecond), r.res.StartToNginx.Round(time.Millisecond))
	r.printTree(ctx)
	return nil
}

// waitNginx returns when nginx first answers from instance: requests one
// after another on new connections, the time being that of the first
// answer showing the change, as the benchmarks measure a change.
func (r *run) waitNginx(ctx context.Context, instance string) (time.Time, error) {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if _, body := r.fetch(ctx); body == instance {
			return time.Now(), nil
		}
	}
	return time.Time{}, fmt.Errorf("nginx did not serve %s within 30s", instance)
}

// waitGone returns when instance's key left etcd (the time gone reports)
// and when nginx stopped picking it: the first request, begun after the
// key left etcd, of a run of 3×instances answers none of which came from
// it or failed. A request nginx sent to the dead instance before that and
// retried on another one (proxy_next_upstream) answers cleanly, so earlier
// requests cannot tell whether nginx still picks it; nginx follows etcd,
// so it cannot drop the instance before etcd does.
func (r *run) waitGone(ctx context.Context, instance string, gone <-chan time.Time) (tEtcd, tNginx time.Time, err error) {
	deadline := time.Now().Add(30 * time.Second)
	clean := 0
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if tEtcd.IsZero() {
			select {
			case t, ok := <-gone:
				if !ok {
					return tEtcd, tNginx, fmt.Errorf("waiting for %s to leave etcd: no event within 30s", instance)
				}
				tEtcd = t
			default:
			}
		}
		t := time.Now()
		code, body := r.fetch(ctx)
		if tEtcd.IsZero() || code != 200 || body == instance {
			clean = 0
			continue
		}
		if clean == 0 {
			tNginx = t
		}
		if clean++; clean >= 3*len(r.apps) {
			return tEtcd, tNginx, nil
		}
	}
	if tEtcd.IsZero() {
		return tEtcd, tNginx, fmt.Errorf("%s did not leave etcd within 30s", instance)
	}
	return tEtcd, tNginx, fmt.Errorf("nginx did not stop serving %s within 30s", instance)
}

func (r *run) printTree(ctx context.Context) {
	ins, err := catalog.ListInstances(ctx, r.cli, registry.DefaultPrefix, r.svc.Name)
	if err != nil {
		r.say("    (etcd: %v)", err)
		return
	}
	if len(ins) == 0 {
		r.say("    (no instances)")
	}
	for _, in := range ins {
		r.say("    %s%s = %s   (lease TTL %ds)", registry.UpstreamPrefix(registry.DefaultPrefix, in.Service), in.Instance, in.Address, in.TTLLeft)
	}
}

// keepRunning refreshes a status table until Duration passes or ctx ends.
func (r *run) keepRunning(ctx context.Context) {
	var end <-chan time.Time
	if r.opts.Duration > 0 {
		t := time.NewTimer(r.opts.Duration)
		defer t.Stop()
		end = t.C
	}
	ls := "deployctl services ls"
	if r.opts.EtcdPort != 2379 {
		ls += " --etcd-endpoints " + r.etcd.Endpoint()
	}
	r.say("\n==> Running. Try: curl %s   %s   (Ctrl-C stops and cleans up)", r.url, ls)
	tick := time.NewTicker(r.opts.Refresh)
	defer tick.Stop()
	if r.opts.InPlace {
		defer fmt.Fprintln(r.out)
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-end:
			return
		case <-tick.C:
			served, failed := r.servedSet(ctx, 2*len(r.apps))
			if ctx.Err() != nil {
				return // stopped while asking: the answers mean nothing
			}
			keys := r.keys(ctx)
			var parts []string
			names := make([]string, 0, len(r.apps))
			for _, a := range r.apps {
				names = append(names, a.instance)
			}
			sort.Strings(names)
			for _, n := range names {
				mark := "down"
				if _, ok := keys[n]; ok {
					mark = "up"
				}
				parts = append(parts, fmt.Sprintf("%s %s/%d", n, mark, served[n]))
			}
			if failed > 0 {
				parts = append(parts, fmt.Sprintf("failed %d", failed))
			}
			line := fmt.Sprintf("    %s  %s", time.Now().Format("15:04:05"), strings.Join(parts, "  "))
			if r.opts.InPlace {
				fmt.Fprintf(r.out, "\r\033[K%s", line)
			} else {
				r.say("%s", line)
			}
		}
	}
}

// fetch asks nginx once on a new connection.
func (r *run) fetch(ctx context.Context) (int, string) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, r.url, nil)
	resp, err := r.http.Do(req)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// keys returns instance -> address with one read; the lease lookups of
// ListInstances are only needed where TTLs are printed.
func (r *run) keys(ctx context.Context) map[string]string {
	s, err := catalog.List(ctx, r.cli, registry.UpstreamPrefix(registry.DefaultPrefix, r.svc.Name))
	if err != nil {
		return map[string]string{}
	}
	return s.Entries
}

// watchKey reports when the next event of type typ on key arrives; the
// watch is open before it returns, so no event is missed.
func (r *run) watchKey(ctx context.Context, key string, typ mvccpb.Event_EventType) <-chan time.Time {
	out := make(chan time.Time, 1)
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	resp, err := r.cli.Get(wctx, key)
	if err != nil {
		cancel()
		close(out)
		return out
	}
	wch := r.cli.Watch(wctx, key, clientv3.WithRev(resp.Header.Revision+1))
	go func() {
		defer cancel()
		defer close(out)
		for wr := range wch {
			for _, ev := range wr.Events {
				if ev.Type == typ {
					out <- time.Now()
					return
				}
			}
		}
	}()
	return out
}

func waitEvent(ctx context.Context, ch <-chan time.Time) (time.Time, error) {
	select {
	case t, ok := <-ch:
		if !ok {
			return time.Time{}, fmt.Errorf("no event within 30s")
		}
		return t, nil
	case <-ctx.Done():
		return time.Time{}, ctx.Err()
	}
}

// waitSettled waits until nginx serves exactly the want instances and has
// settled: a batch of requests is answered by every instance and nothing
// else, again after one reload interval. After a reload nginx's old workers
// (on the older config) keep taking connections for 100 ms or more, so a
// clean batch alone can be luck; and the wait puts the kill that follows
// outside the last registration's reload window, so its timing shows an
// event-driven leading-edge reload rather than a coalesced trailing one.
func (r *run) waitSettled(ctx context.Context, want int) error {
	clean := func() bool {
		got, failed := r.servedSet(ctx, 4*want)
		return failed == 0 && len(got) == want
	}
	at, err := waitUntil(ctx, 30*time.Second, clean)
	if err == nil {
		if err = sleepUntil(ctx, at.Add(reloadInterval)); err != nil {
			return err
		}
		_, err = waitUntil(ctx, 30*time.Second, clean)
	}
	if err != nil {
		return fmt.Errorf("waiting for nginx to serve all %d instances and nothing else: %w (logs in %s)", want, err, r.dir)
	}
	return nil
}

// sleepUntil waits until t or until ctx ends.
func sleepUntil(ctx context.Context, t time.Time) error {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

// waitUntil polls cond every 5ms until it holds or timeout passes.
func waitUntil(ctx context.Context, timeout time.Duration, cond func() bool) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return time.Now(), nil
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("timed out after %s", timeout)
		}
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// servedSet asks nginx n times and returns how often each instance answered
// and how many answers were not 200 (503 from workers still on an older,
// empty config while a reload settles, or no answer).
func (r *run) servedSet(ctx context.Context, n int) (got map[string]int, failed int) {
	got = map[string]int{}
	for i := 0; i < n; i++ {
		if code, body := r.fetch(ctx); code == 200 {
			got[body]++
		} else {
			failed++
		}
	}
	return got, failed
}

// answer is how the round-robin display shows one fetch.
func answer(code int, body string) string {
	switch code {
	case 200:
		return body
	case 0:
		return "[no answer]"
	default:
		return fmt.Sprintf("[%d]", code)
	}
}

// reloadInterval is the demo's registrar nginx --min-reload-interval (the
// registrar's default, passed explicitly because the story waits on it).
const reloadInterval = time.Second
