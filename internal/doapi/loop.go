package doapi

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// maxBootFailures is how many boots of a droplet may fail before it is
// "errored": the provider then stops waiting with an error, and the
// reason is in the stand-in's log.
const maxBootFailures = 3

// bootTimeout bounds one boot of a machine.
const bootTimeout = 5 * time.Minute

// boot is a boot under way.
type boot struct {
	cancel context.CancelFunc
	done   chan struct{} // closed when Boot has returned
}

type bootResult struct {
	id   int
	addr Address
	err  error
}

// Run drives the machines until ctx ends: it boots every droplet that is
// not up yet (again after a failure, with backoff, and after a restart of
// the server), and keeps every machine's firewall as the firewalls say. It
// compares the state with what it applied at every change and at every
// resync. It returns when ctx ends and its boots have stopped.
func (s *Server) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	results := make(chan bootResult)
	retryAt := map[int]time.Time{}
	applied := map[int]string{}
	tick := time.NewTicker(s.cfg.Resync)
	defer tick.Stop()
	for {
		s.startBoots(ctx, &wg, results, retryAt)
		s.applyFirewalls(ctx, applied)
		select {
		case <-ctx.Done():
			s.mu.Lock()
			for id := range s.boots {
				s.stopBootLocked(id, false)
			}
			s.mu.Unlock()
			return nil
		case r := <-results:
			s.booted(r, retryAt)
		case <-s.kick:
		case <-tick.C:
		}
	}
}

// startBoots starts a boot of every droplet that is "new", has none under
// way and is not waiting out a backoff.
func (s *Server) startBoots(ctx context.Context, wg *sync.WaitGroup, results chan<- bootResult, retryAt map[int]time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, d := range s.st.Droplets {
		if d.Droplet.Status != "new" || s.boots[id] != nil || time.Now().Before(retryAt[id]) {
			continue
		}
		bctx, cancel := context.WithTimeout(ctx, bootTimeout)
		b := &boot{cancel: cancel, done: make(chan struct{})}
		s.boots[id] = b
		m := d.machine()
		s.cfg.Log.Info("booting droplet", "id", id, "name", m.Name, "attempt", d.Failures+1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer cancel()
			addr, err := s.cfg.Machines.Boot(bctx, m)
			close(b.done)
			select {
			case results <- bootResult{id: id, addr: addr, err: err}:
			case <-ctx.Done():
			}
		}()
	}
}

// booted records a boot's end: the droplet is active with its address,
// or it waits out a backoff, or after maxBootFailures it is "errored".
func (s *Server) booted(r bootResult, retryAt map[int]time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.boots, r.id)
	d, ok := s.st.Droplets[r.id]
	if !ok || d.Droplet.Status != "new" {
		return // destroyed meanwhile
	}
	if r.err != nil {
		d.Failures++
		s.cfg.Log.Error("droplet boot failed", "id", r.id, "name", d.Droplet.Name, "attempt", d.Failures, "err", r.err)
		if d.Failures >= maxBootFailures {
			d.Droplet.Status = "errored"
		}
		retryAt[r.id] = time.Now().Add(min(time.Minute, s.cfg.BootBackoff<<(d.Failures-1)))
	} else {
		d.up(r.addr)
		s.cfg.Log.Info("droplet active", "id", r.id, "name", d.Droplet.Name, "ip", r.addr.IP.Addr())
	}
	if err := s.changed(); err != nil {
		s.cfg.Log.Error("saving the stand-in's state", "err", err)
	}
}

// stopBoot cancels droplet id's boot under way and waits until it has
// returned; the caller holds mu.
func (s *Server) stopBoot(id int) { s.stopBootLocked(id, true) }

func (s *Server) stopBootLocked(id int, wait bool) {
	b := s.boots[id]
	if b == nil {
		return
	}
	b.cancel()
	if wait {
		<-b.done
	}
}

// applyFirewalls gives every active droplet's machine the rules that
// apply to it now, where they differ from what was applied; a failure is
// tried again at the next change or resync.
func (s *Server) applyFirewalls(ctx context.Context, applied map[int]string) {
	s.mu.Lock()
	type job struct {
		m     Machine
		allow []Allow
		key   string
	}
	var jobs []job
	for id, d := range s.st.Droplets {
		if d.Droplet.Status != "active" {
			delete(applied, id)
			continue
		}
		allow := s.allowFor(d)
		if k := allowKey(allow); applied[id] != k {
			jobs = append(jobs, job{d.machine(), allow, k})
		}
	}
	s.mu.Unlock()
	for _, j := range jobs {
		fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := s.cfg.Machines.Firewall(fctx, j.m, j.allow)
		cancel()
		if err != nil {
			s.cfg.Log.Error("applying a droplet's firewall", "id", j.m.ID, "name", j.m.Name, "err", fmt.Errorf("%w (tried again at the next resync)", err))
			continue
		}
		applied[j.m.ID] = j.key
		s.cfg.Log.Info("firewall applied", "id", j.m.ID, "name", j.m.Name, "rules", len(j.allow), "open", j.allow == nil)
	}
}
