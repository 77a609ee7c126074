// Package fleettest is an in-process fleet v1 API server for tests: it
// answers as fleetd 1.0.0 does (status codes, error JSON, omitted empty
// fields, paging tokens, unit options replaced by a PUT with different
// options, instance-of-template semantics, go-systemd's line limit, and
// fleetd's known defects), and schedules units onto a fixed set of
// machines honouring MachineOf, Conflicts, MachineMetadata and Global.
//
// Its agents take time as fleetd's do (design §6): after a unit is
// replaced, destroyed or stopped, /state keeps reporting the old unit hash
// in its old state for Timing.Stale (2–5 s measured) until the agent
// unloads it; a launched unit is "activating" for Timing.Activate before it
// is active, or failed when Fail names it. The zero Timing makes every
// change visible at once.
//
// SSHNodes stands in for the machines' sshd, for the --tunnel and for
// units logs and units ssh.
package fleettest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/deployctl/deployctl/units"
	"github.com/deployctl/deployctl/units/fleet"
)

// Server is the fake fleetd.
type Server struct {
	// TokenLimit is the page size (fleetd's token_limit, default 100).
	TokenLimit int

	mu       sync.Mutex
	timing   Timing
	units    map[string]*fleet.Unit
	machines []fleet.Machine
	// activeAt is when each launched unit becomes active: its launch or
	// replace, after the old unit is unloaded, plus Timing.Activate.
	activeAt map[string]time.Time
	// ghosts are states of replaced, destroyed or stopped units that the
	// agents still report.
	ghosts  map[string]ghost
	failing map[string]bool
	// unready: templates whose instances launched from now on never report
	// READY=1 (a Type=notify sidekick whose instance never registers).
	unready map[string]bool
	// replaceRace models fleet 1.0.0's in-place replace race (see
	// ReplaceRace); oldProcess holds, per unit, the hash of the file whose
	// process still runs although fleet holds and reports another.
	replaceRace bool
	oldProcess  map[string]string
	// Requests counts requests by "METHOD path-kind", e.g. "PUT unit".
	Requests map[string]int
}

// New returns a server with n machines whose metadata is given per
// machine (may be shorter than n).
func New(n int, metadata ...map[string]string) *Server {
	s := &Server{TokenLimit: 100, units: map[string]*fleet.Unit{}, Requests: map[string]int{},
		activeAt: map[string]time.Time{}, ghosts: map[string]ghost{}, failing: map[string]bool{}, unready: map[string]bool{},
		oldProcess: map[string]string{}}
	for i := 0; i < n; i++ {
		m := fleet.Machine{ID: fmt.Sprintf("%032x", i+1), PrimaryIP: fmt.Sprintf("10.132.0.%d", i+11)}
		if i < len(metadata) {
			m.Metadata = metadata[i]
		}
		s.machines = append(s.machines, m)
	}
	return s
}

// Timing is how long the fake agents take; see the package doc.
type Timing struct {
	// Stale is how long an old unit's state is still reported after it was
	// replaced, destroyed or stopped (fleetd 1.0.0: about 2–5 s).
	Stale time.Duration
	// Activate is how long a launched unit is "activating" (after the old
	// unit is unloaded) before it is active/running.
	Activate time.Duration
}

// SetTiming sets the agents' timing for changes from now on.
func (s *Server) SetTiming(t Timing) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.timing = t
}

// Fail makes the named unit (or, for a template name, each of its
// instances) fail instead of becoming active, as a unit whose process
// exits does; Fail(name, false) heals it.
func (s *Server) Fail(name string, fail bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failing[name] = fail
}

// Unready makes the instances of template (e.g. someapp-discovery@.service)
// launched from now on stay "activating" for good, as a Type=notify unit
// does until it says READY=1: the registrar sidekick of an instance that
// never passes its health check. Unready(template, false) lets instances
// launched afterwards become active again.
func (s *Server) Unready(template string, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unready[template] = on
}

// ReplaceRace models what fleetd 1.0.0's agent does now and then (issue
// 37, about 1 roll in 18 on real fleet): a PUT with new options over a
// unit that is active and has a launched unit bound to it (BindsTo, a
// sidekick) queues systemd's stop behind the sidekick's, writes the new
// file and asks for a start with mode "replace", which takes the place of
// the waiting stop. The unit is never stopped: fleet reports the new hash
// active while the process runs the old version, and the sidekick, which
// registers only the version its unit names, stays "activating" for good.
// Only a stop of the unit (desired state loaded or inactive) ends the old
// process. With on, every such replace races.
func (s *Server) ReplaceRace(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.replaceRace = on
}

// RunsOldProcess reports whether fleet holds name with options other than
// those its running process was started from (ReplaceRace).
func (s *Server) RunsOldProcess(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.oldProcess[name]
	return ok
}

// Start serves on a loopback httptest server, closed at cleanup by the
// caller's Close.
func (s *Server) Start() *httptest.Server { return httptest.NewServer(s) }

// Unit returns a copy of a stored unit (nil when absent).
func (s *Server) Unit(name string) *fleet.Unit {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.units[name]
	if !ok {
		return nil
	}
	c := *u
	return &c
}

// Count returns the number of requests of a kind ("PUT unit", ...).
func (s *Server) Count(kind string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.Requests[kind]
}

func writeErr(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": code, "message": msg}})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	json.NewEncoder(w).Encode(v)
}

// ServeHTTP routes /fleet/v1/... and /v1-alpha/....
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.EscapedPath()
	switch {
	case strings.HasPrefix(p, "/fleet/v1/"):
		p = strings.TrimPrefix(p, "/fleet/v1")
	case strings.HasPrefix(p, "/v1-alpha/"):
		p = strings.TrimPrefix(p, "/v1-alpha")
	default:
		writeErr(w, http.StatusNotFound, "not found")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reschedule()
	allow := func(methods ...string) bool {
		for _, m := range methods {
			if r.Method == m {
				return true
			}
		}
		w.Header().Set("Allow", strings.Join(methods, ", "))
		writeErr(w, http.StatusMethodNotAllowed, fmt.Sprintf("only %s allowed", strings.Join(methods, ", ")))
		return false
	}
	switch {
	case p == "/units":
		s.Requests[r.Method+" units"]++
		if allow(http.MethodGet) {
			s.listUnits(w, r)
		}
	case strings.HasPrefix(p, "/units/"):
		s.Requests[r.Method+" unit"]++
		s.unit(w, r, strings.TrimPrefix(p, "/units/"), allow)
	case p == "/state":
		s.Requests[r.Method+" state"]++
		if allow(http.MethodGet) {
			s.listStates(w, r)
		}
	case strings.HasPrefix(p, "/state/"):
		// fleetd drops the connection here for a unit with no state.
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				c.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	case p == "/machines":
		s.Requests[r.Method+" machines"]++
		switch r.Method {
		case http.MethodGet:
			s.listMachines(w, r)
		case http.MethodPatch:
			s.patchMachines(w, r)
		default:
			allow(http.MethodGet, http.MethodPatch)
		}
	case p == "/discovery":
		if allow(http.MethodGet) {
			writeJSON(w, map[string]any{"kind": "discovery#restDescription", "name": "fleet", "version": "v1"})
		}
	default:
		writeErr(w, http.StatusNotFound, "not found")
	}
}

// unit answers /units/{name}: GET, PUT (see put) and DELETE.
func (s *Server) unit(w http.ResponseWriter, r *http.Request, escaped string, allow func(...string) bool) {
	name, err := url.PathUnescape(escaped)
	if err != nil || name == "" {
		writeErr(w, http.StatusBadRequest, "bad unit name in path")
		return
	}
	switch r.Method {
	case http.MethodGet:
		u, ok := s.units[name]
		if !ok {
			writeErr(w, http.StatusNotFound, "unit does not exist")
			return
		}
		writeJSON(w, s.view(u))
	case http.MethodPut:
		s.put(w, r, name)
	case http.MethodDelete:
		if _, ok := s.units[name]; !ok {
			writeErr(w, http.StatusNotFound, "unit does not exist")
			return
		}
		s.unload(name) // the agent still reports it for a while
		delete(s.units, name)
		delete(s.oldProcess, name)
		w.WriteHeader(http.StatusNoContent)
	default:
		allow(http.MethodGet, http.MethodPut, http.MethodDelete)
	}
}

func (s *Server) listMachines(w http.ResponseWriter, r *http.Request) {
	page, next := paginate(r, len(s.machines), s.TokenLimit)
	if page == nil {
		writeErr(w, http.StatusBadRequest, "invalid nextPageToken")
		return
	}
	out := map[string]any{}
	if page[1] > page[0] {
		out["machines"] = s.machines[page[0]:page[1]]
	}
	if next != "" {
		out["nextPageToken"] = next
	}
	writeJSON(w, out)
}

// paginate returns [start,end) and the next token for total items, or nil
// for a bad token. Tokens are opaque offsets; like fleetd, a page that ends
// exactly at the last item still carries a token, whose page is empty.
func paginate(r *http.Request, total, limit int) ([]int, string) {
	start := 0
	if tok := r.URL.Query().Get("nextPageToken"); tok != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(tok, "page-"))
		if err != nil || !strings.HasPrefix(tok, "page-") || n < 0 {
			return nil, ""
		}
		start = n
	}
	if start > total {
		start = total
	}
	end := start + limit
	next := ""
	if end <= total && limit > 0 && start < total {
		next = fmt.Sprintf("page-%d", end)
	}
	if end > total {
		end = total
	}
	return []int{start, end}, next
}

func (s *Server) sortedNames() []string {
	names := make([]string, 0, len(s.units))
	for n := range s.units {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (s *Server) listUnits(w http.ResponseWriter, r *http.Request) {
	names := s.sortedNames()
	page, next := paginate(r, len(names), s.TokenLimit)
	if page == nil {
		writeErr(w, http.StatusBadRequest, "invalid nextPageToken")
		return
	}
	out := map[string]any{}
	var us []*fleet.Unit
	for _, n := range names[page[0]:page[1]] {
		us = append(us, s.view(s.units[n]))
	}
	if len(us) > 0 {
		out["units"] = us
	}
	if next != "" {
		out["nextPageToken"] = next
	}
	writeJSON(w, out)
}

func (s *Server) view(u *fleet.Unit) *fleet.Unit {
	c := *u
	if s.isGlobal(u) {
		c.MachineID = ""
	}
	return &c
}

func (s *Server) isGlobal(u *fleet.Unit) bool {
	for _, o := range u.Options {
		if o.Section == units.XFleet && o.Name == "Global" && isTrue(o.Value) {
			return true
		}
	}
	return false
}

// patchMachines applies JSON-patch style metadata ops; fleetd takes
// "value":{"value":"x"}.
func (s *Server) patchMachines(w http.ResponseWriter, r *http.Request) {
	var ops []struct {
		Op    string `json:"op"`
		Path  string `json:"path"`
		Value struct {
			Value string `json:"value"`
		} `json:"value"`
	}
	if err := json.NewDecoder(r.Body).Decode(&ops); err != nil {
		writeErr(w, http.StatusBadRequest, "unable to decode body: "+err.Error())
		return
	}
	for _, op := range ops {
		parts := strings.Split(strings.Trim(op.Path, "/"), "/")
		if len(parts) != 3 || parts[1] != "metadata" {
			writeErr(w, http.StatusBadRequest, "path must be /<machineID>/metadata/<key>")
			return
		}
		found := false
		for i := range s.machines {
			if s.machines[i].ID != parts[0] {
				continue
			}
			found = true
			if s.machines[i].Metadata == nil {
				s.machines[i].Metadata = map[string]string{}
			}
			switch op.Op {
			case "add", "replace":
				s.machines[i].Metadata[parts[2]] = op.Value.Value
			case "remove":
				delete(s.machines[i].Metadata, parts[2])
			default:
				writeErr(w, http.StatusBadRequest, "op must be add, replace or remove")
				return
			}
		}
		if !found {
			writeErr(w, http.StatusNotFound, "machine does not exist")
			return
		}
	}
	w.WriteHeader(http.StatusNoContent)
}
