package doapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// Machines boot and remove the machines behind droplets, and enforce
// their firewalls.
type Machines interface {
	// Boot starts m's machine from its user data and returns its address
	// once it is up. Called again for a droplet whose boot did not finish
	// (a failure, a restart of the server): it must converge from there.
	Boot(ctx context.Context, m Machine) (Address, error)
	// Remove removes m's machine; a machine that is gone is no error.
	Remove(ctx context.Context, m Machine) error
	// Firewall makes m accept inbound traffic only as allow says; nil
	// allows everything (no firewall applies to m).
	Firewall(ctx context.Context, m Machine, allow []Allow) error
}

// Machine is what a droplet is booted from.
type Machine struct {
	ID       int
	Name     string
	Region   string
	UserData string
	// SSHKeys are the public keys the droplet was created with.
	SSHKeys []string
}

// Address is a machine's address on the cluster's network: DigitalOcean's
// public and private address of the droplet alike.
type Address struct {
	IP      netip.Prefix // the address and its network's length
	Gateway netip.Addr
}

// Allow is one inbound rule resolved to addresses. Ports is "" (every
// port) or "N" or "N-M"; ICMP has none.
type Allow struct {
	Protocol string
	Ports    string
	Sources  []netip.Prefix
}

// Config configures a Server.
type Config struct {
	// StatePath is the JSON file the state lives in.
	StatePath string
	// Token is the API token every request must carry.
	Token    string
	Machines Machines
	// VPCRange is the range every VPC reports: the network the machines'
	// addresses come from.
	VPCRange netip.Prefix
	Log      *slog.Logger
	// Resync is how often the loop re-checks every droplet (default 10 s).
	Resync time.Duration
	// BootBackoff is the wait after a droplet's first failed boot, doubled
	// after each next one up to a minute (default 2 s).
	BootBackoff time.Duration
}

// Server is the stand-in. Serve it with Handler; Run drives its machines.
type Server struct {
	cfg  Config
	mu   sync.Mutex // guards st and boots
	st   *state
	kick chan struct{}
	// boots are the boots under way, by droplet id (Run owns them).
	boots map[int]*boot
}

// New loads the state at cfg.StatePath (or starts empty).
func New(cfg Config) (*Server, error) {
	if cfg.Token == "" || cfg.Machines == nil || cfg.StatePath == "" {
		return nil, errors.New("doapi: a token, a state path and machines are required")
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Resync <= 0 {
		cfg.Resync = 10 * time.Second
	}
	if cfg.BootBackoff <= 0 {
		cfg.BootBackoff = 2 * time.Second
	}
	st, err := loadState(cfg.StatePath)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, st: st, kick: make(chan struct{}, 1), boots: map[int]*boot{}}
	s.defaultProject()
	return s, nil
}

// NewToken makes a random API token in DigitalOcean's format.
func NewToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	return "dop_v1_" + hex.EncodeToString(b), nil
}

// apiError is DigitalOcean's error body.
type apiError struct {
	status  int
	ID      string `json:"id"`
	Message string `json:"message"`
}

func (e *apiError) Error() string { return e.Message }

func unprocessable(format string, a ...any) error {
	return &apiError{status: http.StatusUnprocessableEntity, ID: "unprocessable_entity", Message: fmt.Sprintf(format, a...)}
}

func notFound() error {
	return &apiError{status: http.StatusNotFound, ID: "not_found", Message: "The resource you requested could not be found."}
}

// handler is an endpoint, called with mu held: it returns the status and
// body to answer with, or an error (an *apiError, or anything else as a
// 500).
type handler func(r *http.Request) (int, any, error)

// Handler serves the API.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	for pattern, h := range s.routes() {
		mux.Handle(pattern, s.serve(h))
	}
	mux.Handle("/", s.serve(func(r *http.Request) (int, any, error) {
		return 0, nil, &apiError{status: http.StatusNotFound, ID: "not_found",
			Message: fmt.Sprintf("%s %s is not served by deployctl's DigitalOcean stand-in (only what infra's program uses)", r.Method, r.URL.Path)}
	}))
	return mux
}

func (s *Server) serve(h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rid := newRequestID()
		w.Header().Set("X-Request-Id", rid)
		w.Header().Set("Content-Type", "application/json")
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(s.cfg.Token)) != 1 {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"id": "Unauthorized", "message": "Unable to authenticate you", "request_id": rid})
			return
		}
		// The request is read whole before the state is locked; the answer
		// is encoded while it is locked (it points into the state).
		b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"id": "bad_request", "message": "reading the request: " + err.Error(), "request_id": rid})
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(b))
		s.mu.Lock()
		status, body, err := h(r)
		var out []byte
		if err == nil && status != http.StatusNoContent {
			out, err = json.Marshal(body)
		}
		s.mu.Unlock()
		if err != nil {
			var ae *apiError
			if !errors.As(err, &ae) {
				s.cfg.Log.Error("stand-in request failed", "method", r.Method, "path", r.URL.Path, "err", err)
				ae = &apiError{status: http.StatusInternalServerError, ID: "server_error", Message: err.Error()}
			}
			writeJSON(w, ae.status, map[string]string{"id": ae.ID, "message": ae.Message, "request_id": rid})
			return
		}
		s.cfg.Log.Debug("stand-in request", "method", r.Method, "path", r.URL.Path, "status", status)
		w.WriteHeader(status)
		w.Write(out)
	})
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(body)
}

func newRequestID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// decode reads a JSON request body into v; a body that is not JSON, or
// has fields of the wrong type, is a 422 naming the error.
func decode(r *http.Request, v any) error {
	b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("reading the request: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return unprocessable("the request body is not the JSON this endpoint takes: %v", err)
	}
	return nil
}

// changed saves the state (the caller holds mu) and wakes the loop.
func (s *Server) changed() error {
	if err := s.st.save(s.cfg.StatePath); err != nil {
		return err
	}
	select {
	case s.kick <- struct{}{}:
	default:
	}
	return nil
}

// page answers a list: everything on one page, as DigitalOcean's
// pagination ends (no next link).
func page(key string, items any, n int) map[string]any {
	return map[string]any{key: items, "links": map[string]any{}, "meta": map[string]int{"total": n}}
}

func now() string { return time.Now().UTC().Format(time.RFC3339) }
