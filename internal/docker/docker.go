// Package docker is the registrar's small client for the Docker Engine HTTP
// API: inspect, events, exec and signals, over a unix socket or tcp:// with
// the Docker CLI's TLS settings, at a pinned (negotiated down) API version.
// It keeps the registrar binary free of the large official client; what the
// demo and the test harness do besides lives in package containers.
package docker

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/deployctl/deployctl/internal/apitransport"
)

// ErrNotFound is returned when the engine answers 404 for a container,
// image or network.
var ErrNotFound = errors.New("not found")

// Client talks to one Docker engine.
type Client struct {
	http *http.Client
	base string // scheme://host, no trailing slash

	// verMu guards version: negotiated once it succeeds, asked again on
	// every call until then (the engine may come up). Calls that find no
	// version negotiate one at a time; none waits on another's reset.
	verMu   sync.Mutex
	version string // negotiated API version, e.g. "1.44"
}

// DefaultHost is used when DOCKER_HOST is not set.
const DefaultHost = "unix:///var/run/docker.sock"

// New returns a client for host ("unix:///path" or "tcp://host:port"); an
// empty host means $DOCKER_HOST, then DefaultHost. For tcp:// hosts,
// DOCKER_TLS_VERIFY and DOCKER_CERT_PATH work as for the Docker CLI: TLS,
// the engine verified against ca.pem, and cert.pem/key.pem presented.
func New(host string) (*Client, error) {
	if host == "" {
		host = os.Getenv("DOCKER_HOST")
	}
	u, host, err := apitransport.Parse("docker host", host, DefaultHost)
	if err != nil {
		return nil, err
	}
	tr := apitransport.New(u, nil, 4)
	c := &Client{http: &http.Client{Transport: tr}}
	switch u.Scheme {
	case "unix":
		c.base = "http://docker"
	case "tcp", "http", "https":
		if u.Host == "" {
			return nil, fmt.Errorf("docker host %q has no host:port", host)
		}
		c.base = "http://" + u.Host
		if v := os.Getenv("DOCKER_TLS_VERIFY"); (v != "" && v != "0") || u.Scheme == "https" {
			cfg, err := tlsConfig(os.Getenv("DOCKER_CERT_PATH"))
			if err != nil {
				return nil, fmt.Errorf("docker host %q: %w", host, err)
			}
			tr.TLSClientConfig = cfg
			c.base = "https://" + u.Host
		}
	default:
		return nil, fmt.Errorf("docker host %q: scheme must be unix or tcp", host)
	}
	return c, nil
}

// Close releases idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// APIError is a non-2xx answer from the engine.
type APIError struct {
	Status  int
	Message string
}

func (e *APIError) Error() string { return fmt.Sprintf("docker engine: %d %s", e.Status, e.Message) }

// Is lets errors.Is(err, ErrNotFound) match 404 answers.
func (e *APIError) Is(target error) bool {
	return target == ErrNotFound && e.Status == http.StatusNotFound
}

// Do sends one request to the engine's API (path without the version
// prefix) and returns the answer; a non-2xx answer is an *APIError.
func (c *Client) Do(ctx context.Context, method, path string, q url.Values, body io.Reader, ctype string) (*http.Response, error) {
	v, err := c.apiVersion(ctx)
	if err != nil {
		return nil, err
	}
	u := c.base + "/v" + v + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("docker %s %s: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		var m struct {
			Message string `json:"message"`
		}
		msg := strings.TrimSpace(string(b))
		if json.Unmarshal(b, &m) == nil && m.Message != "" {
			msg = m.Message
		}
		return nil, fmt.Errorf("docker %s %s: %w", method, path, &APIError{Status: resp.StatusCode, Message: msg})
	}
	return resp, nil
}

// DoJSON sends in (when not nil) as JSON and decodes the answer into out
// (when not nil).
func (c *Client) DoJSON(ctx context.Context, method, path string, q url.Values, in, out any) error {
	var body io.Reader
	ctype := ""
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body, ctype = bytes.NewReader(b), "application/json"
	}
	resp, err := c.Do(ctx, method, path, q, body, ctype)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("docker %s %s: decode answer: %w", method, path, err)
	}
	return nil
}

// Ping checks that the engine answers (and settles the API version).
func (c *Client) Ping(ctx context.Context) error {
	_, err := c.apiVersion(ctx)
	return err
}

// Container is the part of a container inspect answer deployctl reads.
type Container struct {
	ID    string `json:"Id"`
	Name  string `json:"Name"`
	State struct {
		Status     string `json:"Status"`
		Running    bool   `json:"Running"`
		Pid        int    `json:"Pid"`
		ExitCode   int    `json:"ExitCode"`
		StartedAt  string `json:"StartedAt"`
		FinishedAt string `json:"FinishedAt"`
	} `json:"State"`
	Config struct {
		Image  string            `json:"Image"`
		Labels map[string]string `json:"Labels"`
	} `json:"Config"`
	NetworkSettings struct {
		Networks map[string]struct {
			IPAddress string `json:"IPAddress"`
		} `json:"Networks"`
	} `json:"NetworkSettings"`
}

// IP returns the container's IPv4 address on network, or "".
func (c Container) IP(network string) string {
	if n, ok := c.NetworkSettings.Networks[network]; ok {
		return n.IPAddress
	}
	return ""
}

// Inspect returns the container's state; errors.Is(err, ErrNotFound) when
// it does not exist.
func (c *Client) Inspect(ctx context.Context, name string) (Container, error) {
	var out Container
	err := c.DoJSON(ctx, http.MethodGet, "/containers/"+url.PathEscape(name)+"/json", nil, nil, &out)
	return out, err
}

// Event is one message of the engine's event stream.
type Event struct {
	Type   string `json:"Type"`
	Action string `json:"Action"`
	Actor  struct {
		ID         string            `json:"ID"`
		Attributes map[string]string `json:"Attributes"`
	} `json:"Actor"`
	TimeNano int64 `json:"timeNano"`
}

// Events streams container events for the named containers (all when none
// are given) until ctx ends or the stream breaks. The returned channel is
// closed when the stream ends; the error (nil when ctx ended) is then
// available from the second channel, which receives exactly one value.
func (c *Client) Events(ctx context.Context, containers ...string) (<-chan Event, <-chan error) {
	out := make(chan Event, 16)
	errc := make(chan error, 1)
	f := map[string][]string{"type": {"container"}}
	if len(containers) > 0 {
		f["container"] = containers
	}
	fb, _ := json.Marshal(f)
	q := url.Values{"filters": {string(fb)}}
	resp, err := c.Do(ctx, http.MethodGet, "/events", q, nil, "")
	if err != nil {
		close(out)
		errc <- err
		return out, errc
	}
	go func() {
		defer close(out)
		defer resp.Body.Close()
		dec := json.NewDecoder(bufio.NewReader(resp.Body))
		for {
			var ev Event
			if err := dec.Decode(&ev); err != nil {
				if ctx.Err() != nil {
					errc <- nil
				} else {
					errc <- fmt.Errorf("docker event stream: %w", err)
				}
				return
			}
			select {
			case out <- ev:
			case <-ctx.Done():
				errc <- nil
				return
			}
		}
	}()
	return out, errc
}

// Kill sends signal (e.g. "HUP", "KILL") to the container's main process.
func (c *Client) Kill(ctx context.Context, name, signal string) error {
	return c.DoJSON(ctx, http.MethodPost, "/containers/"+url.PathEscape(name)+"/kill", url.Values{"signal": {signal}}, nil, nil)
}

// Exec runs cmd inside the running container and returns its exit code and
// combined output.
func (c *Client) Exec(ctx context.Context, name string, cmd []string) (int, []byte, error) {
	var created struct {
		ID string `json:"Id"`
	}
	body := map[string]any{"Cmd": cmd, "AttachStdout": true, "AttachStderr": true}
	if err := c.DoJSON(ctx, http.MethodPost, "/containers/"+url.PathEscape(name)+"/exec", nil, body, &created); err != nil {
		return -1, nil, err
	}
	b, _ := json.Marshal(map[string]any{"Detach": false, "Tty": false})
	resp, err := c.Do(ctx, http.MethodPost, "/exec/"+created.ID+"/start", nil, bytes.NewReader(b), "application/json")
	if err != nil {
		return -1, nil, err
	}
	output, err := demux(resp.Body)
	resp.Body.Close()
	if err != nil {
		return -1, output, fmt.Errorf("docker exec output: %w", err)
	}
	// The stream can end a moment before the engine records the exit: an
	// exec still Running reports ExitCode 0. Ask until it is done.
	for {
		var insp struct {
			ExitCode int  `json:"ExitCode"`
			Running  bool `json:"Running"`
		}
		if err := c.DoJSON(ctx, http.MethodGet, "/exec/"+created.ID+"/json", nil, nil, &insp); err != nil {
			return -1, output, err
		}
		if !insp.Running {
			return insp.ExitCode, output, nil
		}
		select {
		case <-ctx.Done():
			return -1, output, fmt.Errorf("docker exec %s: still running: %w", cmd[0], ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// demux reads the engine's multiplexed stdout/stderr stream (8-byte frame
// headers) and returns the payloads concatenated.
func demux(r io.Reader) ([]byte, error) {
	var out bytes.Buffer
	var hdr [8]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return out.Bytes(), nil
			}
			return out.Bytes(), err
		}
		n := binary.BigEndian.Uint32(hdr[4:])
		if _, err := io.CopyN(&out, r, int64(n)); err != nil {
			return out.Bytes(), err
		}
	}
}

// Logs returns the container's last tail lines of stdout and stderr.
func (c *Client) Logs(ctx context.Context, name string, tail int) ([]byte, error) {
	q := url.Values{"stdout": {"1"}, "stderr": {"1"}, "tail": {strconv.Itoa(tail)}}
	resp, err := c.Do(ctx, http.MethodGet, "/containers/"+url.PathEscape(name)+"/logs", q, nil, "")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/vnd.docker.multiplexed-stream") || resp.Header.Get("Content-Type") == "" {
		out, err := demux(resp.Body)
		if err != nil {
			return out, fmt.Errorf("docker logs %s: %w", name, err)
		}
		return out, nil
	}
	out, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return out, fmt.Errorf("docker logs %s: %w", name, err)
	}
	return out, nil
}
