package announce_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deployctl/deployctl/internal/docker"
	"github.com/deployctl/deployctl/registrar/announce"
)

// engine is a scripted Docker Engine API on a unix socket, for what the real
// engine cannot be made to do inside a test: restart under a running
// registrar (its event stream breaks and it is unreachable for a while). The
// container paths and answers are those of the real API, as used against the
// real engine in container_test.go.
type engine struct {
	mu      sync.Mutex
	running bool
	ip      string
	labels  map[string]string // the container's labels
	down    bool              // answer 503 to everything, as a restarting engine does
	breakCh chan struct{}     // closed to break the current event stream
	events  chan docker.Event // sent on the current event stream
	streams int               // event subscriptions so far
}

func newEngine(t *testing.T) (*engine, *docker.Client) {
	t.Helper()
	e := &engine{breakCh: make(chan struct{}), events: make(chan docker.Event)}
	sock := filepath.Join(t.TempDir(), "docker.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(e.serve))
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	dc, err := docker.New("unix://" + sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dc.Close)
	return e, dc
}

func (e *engine) serve(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	down := e.down
	e.mu.Unlock()
	if down {
		http.Error(w, `{"message":"engine restarting"}`, http.StatusServiceUnavailable)
		return
	}
	if r.URL.Path == "/_ping" {
		w.Header().Set("Api-Version", "1.41") // as Docker 20.10
		return
	}
	path, ok := strings.CutPrefix(r.URL.Path, "/v1.41")
	if !ok {
		http.Error(w, `{"message":"not the negotiated API version"}`, http.StatusBadRequest)
		return
	}
	switch path {
	case "/containers/app-1/json":
		e.mu.Lock()
		var c docker.Container
		c.State.Running = e.running
		c.Config.Labels = e.labels
		c.NetworkSettings.Networks = map[string]struct {
			IPAddress string `json:"IPAddress"`
		}{"appnet": {IPAddress: e.ip}}
		e.mu.Unlock()
		_ = json.NewEncoder(w).Encode(c)
	case "/events":
		e.mu.Lock()
		e.streams++
		brk := e.breakCh
		e.mu.Unlock()
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		enc := json.NewEncoder(w)
		for {
			select {
			case <-brk:
				return
			case <-r.Context().Done():
				return
			case ev := <-e.events:
				_ = enc.Encode(ev)
				w.(http.Flusher).Flush()
			}
		}
	default:
		http.Error(w, `{"message":"no such container"}`, http.StatusNotFound)
	}
}

// set changes the engine's state under its lock.
func (e *engine) set(f func(e *engine)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	f(e)
}

// breakStream ends the current event stream without an event, as an engine
// restart does.
func (e *engine) breakStream() {
	e.set(func(e *engine) {
		close(e.breakCh)
		e.breakCh = make(chan struct{})
	})
}

func (e *engine) subscriptions() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.streams
}

func next(t *testing.T, updates <-chan string, want string) {
	t.Helper()
	select {
	case got := <-updates:
		if got != want {
			t.Fatalf("update %q, want %q", got, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no update within 10s, want %q", want)
	}
}

func TestContainerSourceSurvivesEngineRestart(t *testing.T) {
	e, dc := newEngine(t)
	e.set(func(e *engine) { e.running, e.ip = true, "10.1.0.2" })
	src := &announce.Container{Docker: dc, Name: "app-1", Network: "appnet", Port: 3000, Logger: quiet()}
	ctx, cancel := context.WithCancel(context.Background())
	updates := make(chan string)
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, updates) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run returned %v, want nil on cancel", err)
		}
	}()

	next(t, updates, "10.1.0.2:3000")

	// The container dies while the stream is broken: no event ever reports it,
	// the inspect after re-subscribing does.
	e.set(func(e *engine) { e.running = false })
	e.breakStream()
	next(t, updates, "")

	// The engine is unreachable for a while: the source keeps its last state
	// (no update) rather than failing, and resyncs when the engine answers.
	e.set(func(e *engine) { e.down, e.running, e.ip = true, true, "10.1.0.7" })
	e.breakStream()
	select {
	case got := <-updates:
		t.Fatalf("update %q while the engine was unreachable", got)
	case <-time.After(700 * time.Millisecond):
	}
	subs := e.subscriptions()
	e.set(func(e *engine) { e.down = false })
	next(t, updates, "10.1.0.7:3000")
	if e.subscriptions() <= subs {
		t.Fatal("the source did not subscribe to events again after the engine came back")
	}

	// Events on the new stream are followed as before.
	select {
	case e.events <- docker.Event{Type: "container", Action: "die"}:
	case <-time.After(10 * time.Second):
		t.Fatal("the source is not reading the new event stream")
	}
	next(t, updates, "")
}
