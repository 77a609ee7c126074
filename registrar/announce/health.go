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
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	defer client.CloseIdleConnections()
	addr := ""
	t := time.NewTicker(h.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case a := <-addrs:
			addr = a
			t.Reset(h.Interval)
		case <-t.C:
		}
		if addr == "" {
			continue
		}
		err := h.check(ctx, client, addr)
		select {
		case results <- healthResult{addr: addr, err: err}:
		case <-ctx.Done():
			return
		}
	}
}
