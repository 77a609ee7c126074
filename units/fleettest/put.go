package fleettest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"path"
	"strings"
	"time"

	sdunit "github.com/coreos/go-systemd/v22/unit"

	"github.com/deployctl/deployctl/units"
	"github.com/deployctl/deployctl/units/fleet"
)

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
		s.setState(existing, body.DesiredState)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	for _, o := range body.Options {
		if strings.ContainsAny(o.Value, "\n") {
			writeErr(w, http.StatusBadRequest, "option value contains a raw newline")
			return
		}
	}
	uf := &units.Unit{Name: name, Options: body.Options}
	// fleetd's sanity check: go-systemd's deserializer over the serialized
	// options ("line too long (max 2048 bytes)" for a line of 2048 or more).
	if _, err := sdunit.Deserialize(bytes.NewReader(uf.Serialize())); err != nil {
		writeErr(w, http.StatusBadRequest, err.Error())
		return
	}
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
			s.setState(existing, body.DesiredState)
			w.WriteHeader(http.StatusNoContent)
			return
		}
		// Different options replace the unit; the agent still runs the old
		// one until it unloads it.
		s.raceReplace(existing, body.DesiredState)
		s.unload(name)
	}
	state := body.DesiredState
	if state == "" {
		state = fleet.StateInactive
	}
	// fleetd defect: a new template created launched is accepted and scheduled.
	nu := &fleet.Unit{Name: name, Options: body.Options, DesiredState: state}
	if exists {
		nu.MachineID = existing.MachineID // the engine keeps the placement
	}
	s.units[name] = nu
	s.launching(name)
	if exists && state == fleet.StateLaunched {
		s.restartBound(name)
	}
	s.schedule(nu)
	w.WriteHeader(http.StatusCreated)
}

// restartBound models systemd's BindsTo= on the agent: when name is
// replaced (stopped, then started with its new options), every launched
// unit bound to it is stopped with it and started again by the agent, so
// it is "activating" again until it is ready (for a Type=notify sidekick:
// until it has registered the new instance).
func (s *Server) restartBound(name string) {
	for _, u := range s.boundTo(name) {
		// systemd restarts it with the unit it binds to, but its agent
		// reports that later: fleet still shows its earlier state (active,
		// its hash) until Stale after the replaced unit is active again
		// (seen on fleetd 1.0.0: an instance's new app active beside its
		// sidekick's old "active").
		s.unload(u.Name)
		if g, ok := s.ghosts[u.Name]; ok {
			g.until = s.activeAt[name].Add(s.timing.Stale)
			s.ghosts[u.Name] = g
		}
		s.launching(u.Name)
	}
}

// raceReplace records, under ReplaceRace, that replacing u (launched,
// active, with a launched unit bound to it) by a launched unit leaves its
// old process running.
func (s *Server) raceReplace(u *fleet.Unit, state string) {
	if !s.replaceRace || state != fleet.StateLaunched || u.DesiredState != fleet.StateLaunched {
		return
	}
	if active, _ := s.systemdState(u, time.Now()); active != "active" || len(s.boundTo(u.Name)) == 0 {
		return
	}
	if _, ok := s.oldProcess[u.Name]; !ok {
		s.oldProcess[u.Name] = u.File().Hash()
	}
}

// boundTo lists the launched units bound (BindsTo=) to name.
func (s *Server) boundTo(name string) []*fleet.Unit {
	var out []*fleet.Unit
	for _, u := range s.units {
		if u.Name != name && u.DesiredState == fleet.StateLaunched && bindsTo(u) == name {
			out = append(out, u)
		}
	}
	return out
}

// bindsTo is the name u's BindsTo= names, with %i substituted ("" for none).
func bindsTo(u *fleet.Unit) string {
	inst := ""
	if n, err := units.ParseName(u.Name); err == nil && n.IsInstance() {
		inst = n.Instance
	}
	for _, o := range u.Options {
		if o.Section == "Unit" && o.Name == "BindsTo" {
			return strings.ReplaceAll(o.Value, "%i", inst)
		}
	}
	return ""
}

// setState changes an existing unit's desired state; stopping leaves the
// old state reported until the agent has stopped it, and ends a process a
// raced replace left running.
func (s *Server) setState(u *fleet.Unit, state string) {
	if u.DesiredState == state {
		return
	}
	if u.DesiredState == fleet.StateLaunched {
		s.unload(u.Name)
		delete(s.oldProcess, u.Name)
	}
	if state == fleet.StateLaunched {
		s.launching(u.Name)
	}
	u.DesiredState = state
	s.schedule(u)
}

// launching sets when name becomes active: once the agent has unloaded
// its old unit, after Timing.Activate.
func (s *Server) launching(name string) {
	start := time.Now()
	if g, ok := s.ghosts[name]; ok && g.until.After(start) {
		start = g.until
	}
	s.activeAt[name] = start.Add(s.timing.Activate)
	if n, err := units.ParseName(name); err == nil && n.IsInstance() && s.unready[n.Template()] {
		s.activeAt[name] = start.Add(100 * 365 * 24 * time.Hour) // never READY=1
	}
}

// reschedule places launched or loaded units that could not be placed
// before (a MachineOf target not yet scheduled), as fleet's engine does on
// its next reconcile.
func (s *Server) reschedule() {
	for _, u := range s.units {
		if u.MachineID == "" && !s.isGlobal(u) && (u.DesiredState == fleet.StateLoaded || u.DesiredState == fleet.StateLaunched) {
			s.schedule(u)
		}
	}
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
	wantMeta := metadataOf(uf)
	// MachineID (after fleet's specifier substitution: a per-machine
	// template's instance names its machine) places the unit there or
	// nowhere; the machine must also match its metadata, as fleet's
	// agents check both.
	for _, id := range uf.Get(units.XFleet, "MachineID") {
		for _, m := range s.machines {
			if m.ID == sub.Replace(id) && hasMetadata(m.Metadata, wantMeta) {
				return m.ID
			}
		}
		return ""
	}
	for _, target := range uf.Get(units.XFleet, "MachineOf") {
		if t, ok := s.units[sub.Replace(target)]; ok {
			return t.MachineID
		}
		return ""
	}
	best, bestLoad := "", -1
	for _, m := range s.machines {
		ok := hasMetadata(m.Metadata, wantMeta)
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

// metadataOf reads a unit's MachineMetadata pairs.
func metadataOf(u *units.Unit) [][2]string {
	var want [][2]string
	for _, md := range u.Get(units.XFleet, "MachineMetadata") {
		for _, pair := range strings.Fields(md) {
			k, v, _ := strings.Cut(strings.Trim(pair, `"`), "=")
			want = append(want, [2]string{k, v})
		}
	}
	return want
}

// hasMetadata reports whether a machine's metadata has every pair.
func hasMetadata(have map[string]string, want [][2]string) bool {
	for _, kv := range want {
		if have[kv[0]] != kv[1] {
			return false
		}
	}
	return true
}
