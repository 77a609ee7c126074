// Package fleettest is an in-process fleet v1 API server for tests: it
// answers as fleetd 1.0.0 does (status codes, error JSON, omitted empty
// fields, paging tokens, immutable unit options, instance-of-template
// semantics, and fleetd's known defects), and schedules units onto a fixed
// set of machines honouring MachineOf, Conflicts, MachineMetadata and
// Global, marking launched units active at once.
package fleettest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/deployctl/deployctl/units"
	"github.com/deployctl/deployctl/units/fleet"
)

// Server is the fake fleetd.
type Server struct {
	// TokenLimit is the page size (fleetd's token_limit, default 100).
	TokenLimit int

	mu       sync.Mutex
	units    map[string]*fleet.Unit
	machines []fleet.Machine
	// Requests counts requests by "METHOD path-kind", e.g. "PUT unit".
	Requests map[string]int
}

// New returns a server with n machines whose metadata is given per
// machine (may be shorter than n).
func New(n int, metadata ...map[string]string) *Server {
	s := &Server{TokenLimit: 100, units: map[string]*fleet.Unit{}, Requests: map[string]int{}}
	for i := 0; i < n; i++ {
		m := fleet.Machine{ID: fmt.Sprintf("%032x", i+1), PrimaryIP: fmt.Sprintf("10.132.0.%d", i+11)}
		if i < len(metadata) {
			m.Metadata = metadata[i]
		}
		s.machines = append(s.machines, m)
	}
	return s
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
		name, err := url.PathUnescape(strings.TrimPrefix(p, "/units/"))
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
			delete(s.units, name)
			w.WriteHeader(http.StatusNoContent)
		default:
			allow(http.MethodGet, http.MethodPut, http.MethodDelete)
		}
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
		if o.Section == units.XFleet && o.Name == "Global" {
			switch strings.ToLower(o.Value) {
			case "true", "yes", "1", "on", "t", "y":
				return true
			}
		}
	}
	return false
}

func (s *Server) put(w http.ResponseWriter, r *http.Request, name string) {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		writeErr(w, http.StatusUnsupportedMediaType, "expected Content-Type application/json")
		return
	}
	var body fleet.Unit
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		writeErr(w, http.StatusBadRequest, "unable to decode body: "+err.Error())
		return
	}
	if body.Name != "" && body.Name != name {
		writeErr(w, http.StatusBadRequest, "name in body does not match name in URL")
		return
	}
	if err := units.ValidateName(name); err != nil {
		writeErr(w, http.StatusBadRequest, err.Error())
		return
	}
	existing, exists := s.units[name]
	if len(body.Options) == 0 {
		if !exists {
			writeErr(w, http.StatusConflict, "unit does not exist and options field empty")
			return
		}
		if body.DesiredState == "" {
			writeErr(w, http.StatusConflict, "must provide DesiredState to update existing unit")
			return
		}
		n, _ := units.ParseName(name)
		if n.IsTemplate() && body.DesiredState == fleet.StateLaunched {
			writeErr(w, http.StatusBadRequest, "cannot activate template")
			return
		}
		// fleetd defect: any desiredState string is stored, breaking the unit.
		existing.DesiredState = body.DesiredState
		s.schedule(existing)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	for _, o := range body.Options {
		if strings.ContainsAny(o.Value, "\n") {
			writeErr(w, http.StatusBadRequest, "option value contains a raw newline")
			return
		}
		if len(o.Name)+1+len(o.Value) > 2048 {
			writeErr(w, http.StatusBadRequest, "option line exceeds 2048 bytes")
			return
		}
	}
	uf := &units.Unit{Name: name, Options: body.Options}
	if err := uf.ValidateXFleet(); err != nil {
		writeErr(w, http.StatusBadRequest, err.Error())
		return
	}
	if exists {
		old := &units.Unit{Name: name, Options: existing.Options}
		if old.Hash() == uf.Hash() {
			// Same options: fleetd falls through to a state update, which
			// needs a desiredState.
			if body.DesiredState == "" {
				writeErr(w, http.StatusConflict, "must provide DesiredState to update existing unit")
				return
			}
			existing.DesiredState = body.DesiredState
			s.schedule(existing)
			w.WriteHeader(http.StatusNoContent)
			return
		}
	}
	state := body.DesiredState
	if state == "" {
		state = fleet.StateInactive
	}
	// fleetd defect: a new template created launched is accepted and scheduled.
	nu := &fleet.Unit{Name: name, Options: body.Options, DesiredState: state}
	s.units[name] = nu
	s.schedule(nu)
	w.WriteHeader(http.StatusCreated)
}

// schedule places a loaded/launched unit and sets its current state.
func (s *Server) schedule(u *fleet.Unit) {
	if u.DesiredState != fleet.StateLoaded && u.DesiredState != fleet.StateLaunched {
		u.CurrentState = fleet.StateInactive
		u.MachineID = ""
		return
	}
	if s.isGlobal(u) {
		u.CurrentState = u.DesiredState
		return
	}
	if u.MachineID == "" {
		u.MachineID = s.pickMachine(u)
	}
	if u.MachineID != "" {
		u.CurrentState = u.DesiredState
	}
}

func (s *Server) pickMachine(u *fleet.Unit) string {
	uf := &units.Unit{Name: u.Name, Options: u.Options}
	n, _ := units.ParseName(u.Name)
	sub := strings.NewReplacer("%n", u.Name, "%p", n.Prefix, "%i", n.Instance)
	var conflicts []string
	for _, v := range uf.Get(units.XFleet, "Conflicts") {
		conflicts = append(conflicts, strings.Fields(sub.Replace(v))...)
	}
	for _, target := range uf.Get(units.XFleet, "MachineOf") {
		if t, ok := s.units[sub.Replace(target)]; ok {
			return t.MachineID
		}
		return ""
	}
	var wantMeta [][2]string
	for _, md := range uf.Get(units.XFleet, "MachineMetadata") {
		for _, pair := range strings.Fields(md) {
			k, v, _ := strings.Cut(strings.Trim(pair, `"`), "=")
			wantMeta = append(wantMeta, [2]string{k, v})
		}
	}
	best, bestLoad := "", -1
	for _, m := range s.machines {
		ok := true
		for _, kv := range wantMeta {
			if m.Metadata[kv[0]] != kv[1] {
				ok = false
			}
		}
		load := 0
		for _, other := range s.units {
			if other.MachineID != m.ID || other.Name == u.Name {
				continue
			}
			load++
			for _, g := range conflicts {
				if match, _ := path.Match(g, other.Name); match {
					ok = false
				}
			}
		}
		if ok && (bestLoad < 0 || load < bestLoad) {
			best, bestLoad = m.ID, load
		}
	}
	return best
}

func (s *Server) listStates(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var states []fleet.UnitState
	for _, name := range s.sortedNames() {
		u := s.units[name]
		if q.Get("unitName") != "" && q.Get("unitName") != name {
			continue
		}
		if u.CurrentState != fleet.StateLoaded && u.CurrentState != fleet.StateLaunched {
			continue
		}
		machines := []string{u.MachineID}
		if s.isGlobal(u) {
			machines = nil
			for _, m := range s.machines {
				machines = append(machines, m.ID)
			}
		}
		for _, mid := range machines {
			if q.Get("machineID") != "" && q.Get("machineID") != mid {
				continue
			}
			st := fleet.UnitState{Name: name, Hash: (&units.Unit{Name: name, Options: u.Options}).Hash(), MachineID: mid, SystemdLoadState: "loaded"}
			if u.CurrentState == fleet.StateLaunched {
				st.SystemdActiveState, st.SystemdSubState = "active", "running"
			} else {
				st.SystemdActiveState, st.SystemdSubState = "inactive", "dead"
			}
			states = append(states, st)
		}
	}
	page, next := paginate(r, len(states), s.TokenLimit)
	if page == nil {
		writeErr(w, http.StatusBadRequest, "invalid nextPageToken")
		return
	}
	out := map[string]any{}
	if page[1] > page[0] {
		out["states"] = states[page[0]:page[1]]
	}
	if next != "" {
		out["nextPageToken"] = next
	}
	writeJSON(w, out)
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
