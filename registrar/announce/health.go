package announce

import (
	"context"
	"io"
	"net/http"
	"time"
)

// Health configures the HTTP health check that gates registration.
type Health struct {
	// Path is requested as http://ADDR/Path; 2xx and 3xx pass.
	Path string
	// Interval between checks once the address has passed one (default 5s).
	Interval time.Duration
	// StartupInterval between checks of a new address until it first
	// passes (default 200ms; at most Interval): a starting instance is
	// registered soon after it is ready, not up to an Interval later.
	StartupInterval time.Duration
	// Timeout of one check (default 2s).
	Timeout time.Duration
	// Failures is how many consecutive failures withdraw the key (default 3).
	Failures int

	clock clock // nil: the wall clock
}

func (h *Health) defaults() {
	if h.Interval <= 0 {
		h.Interval = 5 * time.Second
	}
	if h.StartupInterval <= 0 {
		h.StartupInterval = 200 * time.Millisecond
	}
	if h.Timeout <= 0 {
		h.Timeout = 2 * time.Second
	}
	if h.Failures <= 0 {
		h.Failures = 3
	}
}

type healthResult struct {
	addr string
	err  error
	// first marks an address's first passing check; startup is then the
	// time from the address arriving to that check's end.
	first   bool
	startup time.Duration
}

// check performs one request against addr.
func (h *Health) check(ctx context.Context, client *http.Client, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, h.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+h.Path, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode >= 400 {
		return &httpStatusError{path: h.Path, code: resp.StatusCode}
	}
	return nil
}

// loop checks the address it is given on addrs and reports the results
// until ctx ends. A new address is checked at once, then every
// StartupInterval until it first passes (a starting instance, like
// Kubernetes' startup probe), then every Interval. An empty address is
// not checked.
func (h *Health) loop(ctx context.Context, addrs <-chan string, results chan<- healthResult) {
	client := &http.Client{
		Transport: &http.Transport{DisableKeepAlives: true},
		// A redirect is the instance's answer, 3xx, which passes; following
		// it would check another URL (maybe another host) instead.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	defer client.CloseIdleConnections()
	clk := h.clock
	if clk == nil {
		clk = wallClock{}
	}
	var (
		addr   string
		since  time.Time        // when addr arrived
		passed bool             // has addr passed a check yet?
		next   <-chan time.Time // the next check's time; nil: none due
	)
	for {
		select {
		case <-ctx.Done():
			return
		case a := <-addrs:
			addr, since, passed, next = a, clk.Now(), false, nil
			if addr == "" {
				continue
			}
		case <-next:
		}
		r := healthResult{addr: addr, err: h.check(ctx, client, addr)}
		if r.err == nil && !passed {
			passed, r.first, r.startup = true, true, clk.Now().Sub(since)
		}
		next = clk.After(h.period(passed))
		select {
		case results <- r:
		case <-ctx.Done():
			return
		}
	}
}

// period is the time to the next check: StartupInterval until the address
// first passes, then Interval.
func (h *Health) period(passed bool) time.Duration {
	if !passed && h.StartupInterval < h.Interval {
		return h.StartupInterval
	}
	return h.Interval
}
