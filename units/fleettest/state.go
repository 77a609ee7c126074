package fleettest

import (
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/deployctl/deployctl/units"
	"github.com/deployctl/deployctl/units/fleet"
)

// ghost is the state an agent still reports for a unit it has not yet
// unloaded: the old hash, in the systemd state it had.
type ghost struct {
	hash     string
	active   bool
	machines []string
	until    time.Time
}

// machinesOf lists where a scheduled unit runs: its machine, or every
// machine matching its metadata for a global unit.
func (s *Server) machinesOf(u *fleet.Unit) []string {
	if s.isGlobal(u) {
		want := metadataOf(&units.Unit{Name: u.Name, Options: u.Options})
		var ids []string
		for _, m := range s.machines {
			if hasMetadata(m.Metadata, want) {
				ids = append(ids, m.ID)
			}
		}
		return ids
	}
	if u.MachineID == "" {
		return nil
	}
	return []string{u.MachineID}
}

// unload records what the agents report for name while they unload it
// (after a replace, a destroy or a stop).
func (s *Server) unload(name string) {
	u, ok := s.units[name]
	if !ok || (u.CurrentState != fleet.StateLoaded && u.CurrentState != fleet.StateLaunched) {
		return
	}
	now := time.Now()
	active, _ := s.systemdState(u, now)
	if s.timing.Stale <= 0 {
		delete(s.ghosts, name)
		return
	}
	s.ghosts[name] = ghost{hash: u.File().Hash(), active: active == "active", machines: s.machinesOf(u), until: now.Add(s.timing.Stale)}
}

// systemdState is what the agent reports for a scheduled unit at now.
func (s *Server) systemdState(u *fleet.Unit, now time.Time) (active, sub string) {
	if u.CurrentState != fleet.StateLaunched {
		return "inactive", "dead"
	}
	if now.Before(s.activeAt[u.Name]) {
		return "activating", "start-pre"
	}
	if s.failing[u.Name] {
		return "failed", "failed"
	}
	if n, err := units.ParseName(u.Name); err == nil && n.IsInstance() && s.failing[n.Template()] {
		return "failed", "failed"
	}
	if _, stale := s.oldProcess[bindsTo(u)]; stale {
		// A sidekick whose unit runs the old version waits for the new
		// one's container and never says READY=1.
		return "activating", "start"
	}
	return "active", "running"
}

func (s *Server) listStates(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	now := time.Now()
	var states []fleet.UnitState
	names := map[string]bool{}
	for n := range s.units {
		names[n] = true
	}
	for n, g := range s.ghosts {
		if g.until.After(now) {
			names[n] = true
		}
	}
	for _, name := range sortedKeys(names) {
		if q.Get("unitName") != "" && q.Get("unitName") != name {
			continue
		}
		for _, st := range s.statesOf(name, now) {
			if q.Get("machineID") != "" && q.Get("machineID") != st.MachineID {
				continue
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

// statesOf is what the agents report for one unit name: per machine, the
// old unit while it is being unloaded, else the current one.
func (s *Server) statesOf(name string, now time.Time) []fleet.UnitState {
	var out []fleet.UnitState
	g, haveGhost := s.ghosts[name]
	haveGhost = haveGhost && g.until.After(now)
	seen := map[string]bool{}
	if haveGhost {
		for _, mid := range g.machines {
			st := fleet.UnitState{Name: name, Hash: g.hash, MachineID: mid, SystemdLoadState: "loaded", SystemdActiveState: "inactive", SystemdSubState: "dead"}
			if g.active {
				st.SystemdActiveState, st.SystemdSubState = "active", "running"
			}
			out = append(out, st)
			seen[mid] = true
		}
	}
	u, ok := s.units[name]
	if !ok || (u.CurrentState != fleet.StateLoaded && u.CurrentState != fleet.StateLaunched) {
		return out
	}
	active, sub := s.systemdState(u, now)
	for _, mid := range s.machinesOf(u) {
		if seen[mid] {
			continue
		}
		out = append(out, fleet.UnitState{Name: name, Hash: u.File().Hash(), MachineID: mid, SystemdLoadState: "loaded",
			SystemdActiveState: active, SystemdSubState: sub})
	}
	return out
}

func sortedKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// isTrue is systemd/fleet's boolean parsing.
func isTrue(v string) bool {
	switch strings.ToLower(v) {
	case "true", "yes", "1", "on", "t", "y":
		return true
	}
	return false
}
