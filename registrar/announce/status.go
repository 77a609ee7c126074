package announce

import (
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/deployctl/deployctl/registrar/registry"
)

// Status publishes the sidekick's state at Key (registry.StatusKey) as a
// registry.Status, for `deployctl units status` and for a roll that
// stops: it is written at once on each change of state, other changes
// (a new error text, a new address) at most every Every, and nothing when
// nothing changed. It is kept under a lease of its own, granted with the
// announcer's TTL and kept alive like the upstream key's: that lease is
// revoked whenever the instance is withdrawn, and the status must outlive
// a withdrawal, but not the sidekick (a killed sidekick's status expires
// with the TTL; a stopped one's is revoked).
type Status struct {
	// Key is the full etcd key, e.g. /services/someapp/status/someapp@1.
	Key string
	// Machine (fleet's machine ID) and Host say where the sidekick runs.
	Machine, Host string
	// Want is the version label the sidekick registers (Container.Version).
	Want string
	// Every is the least time between two writes that change no state
	// (default 5s).
	Every time.Duration

	once sync.Once
	kick chan struct{} // a change to publish
	mu   sync.Mutex
	seen *Seen // the source's last inspection; nil for a Static source
	ann  annView
}

// Seen is what a Container source found at its last inspection.
type Seen struct {
	Running bool
	// Version is the container's io.deployctl.version label.
	Version string
	// Addr is its address on the network, "" without one.
	Addr string
}

// annView is the announcer's part of the status.
type annView struct {
	addr, check  string
	registered   bool
	health       bool // a health check gates registration
	passed       bool // the current address passed a check
	result       string
	code         int
	failingSince time.Time
	stopping     bool
	elsewhere    bool // fleet schedules the instance on another machine
}

func (s *Status) init() {
	s.once.Do(func() { s.kick = make(chan struct{}, 1) })
}

func (s *Status) changed() {
	s.init()
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Container takes a Container source's inspection (set it as the
// source's Report); safe from any goroutine, it never blocks.
func (s *Status) Container(v Seen) {
	s.mu.Lock()
	s.seen = &v
	s.mu.Unlock()
	s.changed()
}

// noteStatus takes the announcer's state after each of its events.
func (a *announcer) noteStatus() {
	s := a.Status
	if s == nil {
		return
	}
	s.mu.Lock()
	v := &s.ann
	if v.addr != a.addr {
		v.passed, v.result, v.code, v.failingSince = false, "", 0, time.Time{}
	}
	v.addr, v.registered, v.health = a.addr, a.registered(), a.Health != nil
	v.elsewhere = a.place == placeElsewhere
	if a.Health != nil {
		v.check = "GET " + a.Health.Path
	}
	s.mu.Unlock()
	s.changed()
}

// noteHealth takes a health check's result for the current address.
func (a *announcer) noteHealth(r healthResult) {
	s := a.Status
	if s == nil || r.addr != a.addr {
		return
	}
	s.mu.Lock()
	v := &s.ann
	v.code = 0
	var se *httpStatusError
	switch {
	case r.err == nil:
		v.passed, v.result, v.failingSince = true, "ok", time.Time{}
	case errors.As(r.err, &se):
		v.result, v.code = strconv.Itoa(se.code), se.code
	default:
		v.result = registry.Clip(r.err.Error())
	}
	if r.err != nil && v.failingSince.IsZero() {
		v.failingSince = time.Now().UTC()
	}
	s.mu.Unlock()
}

// httpStatusError is a health check's answer that fails: its HTTP status.
type httpStatusError struct {
	path string
	code int
}

func (e *httpStatusError) Error() string {
	return "health check " + e.path + " answered " + strconv.Itoa(e.code)
}

// record is the status as of now, Updated left zero.
func (s *Status) record() registry.Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.ann
	r := registry.Status{WantVersion: s.Want, Addr: a.addr, Check: a.check, LastResult: a.result, HTTPStatus: a.code, Machine: s.Machine, Host: s.Host}
	if !a.failingSince.IsZero() {
		t := a.failingSince
		r.FailingSince = &t
	}
	if s.seen != nil && s.seen.Running {
		r.RunVersion = s.seen.Version
	}
	r.State = s.state()
	return r
}

// state is the sidekick's state; s.mu is held.
func (s *Status) state() string {
	a, c := s.ann, s.seen
	switch {
	case a.stopping:
		return registry.StateStopping
	case a.registered:
		return registry.StateServing
	case a.elsewhere:
		return registry.StatePlacedElsewhere
	case c != nil && !c.Running:
		return registry.StateWaitingForContainer
	case c != nil && s.Want != "" && c.Version != s.Want:
		return registry.StateOtherVersion
	case c != nil && c.Addr == "":
		return registry.StateNoAddress
	case c == nil && a.addr == "":
		return registry.StateWaitingForContainer
	case a.health && a.result != "" && a.result != "ok":
		return registry.StateHealthFailing
	case a.health && !a.passed:
		return registry.StateStarting
	}
	return registry.StateRegistering
}
