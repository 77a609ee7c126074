package announce

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Health configures the HTTP health check that gates registration.
type Health struct {
	// Path is requested as http://ADDR/Path; 2xx and 3xx pass.
	Path string
	// Interval between checks (default 5s).
	Interval time.Duration
	// Timeout of one check (default 2s).
	Timeout time.Duration
	// Failures is how many consecutive failures withdraw the key (default 3).
	Failures int
}

func (h *Health) defaults() {
	if h.Interval <= 0 {
		h.Interval = 5 * time.Second
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
		return fmt.Errorf("health check %s answered %d", h.Path, resp.StatusCode)
	}
	return nil
}

// loop checks the address it is given on addrs every Interval, at once when
// the address changes, and reports results until ctx ends.
func (h *Health) loop(ctx context.Context, addrs <-chan string, results chan<- healthResult) {
	client := &http.Client{
		Transport: &http.Transport{DisableKeepAlives: true},
		// A redirect is the instance's answer, 3xx, which passes; following
		// it would check another URL (maybe another host) instead.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	defer client.CloseIdleConnections()
	addr := ""
	passed := false // has the current address passed a check yet?
	t := time.NewTimer(h.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case a := <-addrs:
			addr, passed = a, false
			if !t.Stop() {
				select {
				case <-t.C:
				default:
				}
			}
		case <-t.C:
		}
		if addr == "" {
			t.Reset(h.Interval)
			continue
		}
		err := h.check(ctx, client, addr)
		passed = passed || err == nil
		// A new instance is usually still starting: until it first passes,
		// check again soon instead of a whole interval later.
		next := h.Interval
		if !passed && next > 200*time.Millisecond {
			next = 200 * time.Millisecond
		}
		t.Reset(next)
		select {
		case results <- healthResult{addr: addr, err: err}:
		case <-ctx.Done():
			return
		}
	}
}
