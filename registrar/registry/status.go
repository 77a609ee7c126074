package registry

import (
	"fmt"
	"path"
	"strings"
	"time"
)

// StatusKey is the etcd key where an instance's sidekick publishes its
// state (<prefix>/<service>/status/<instance>, JSON: Status), under a lease
// of its own so that a dead sidekick's status goes away with it. It lies
// under the prefix the registrar's etcd role may write.
func StatusKey(prefix, service, instance string) string {
	return path.Join("/", prefix, service, "status", instance)
}

// StatusPrefix is where a service's instances publish their state:
// "<prefix>/<service>/status/".
func StatusPrefix(prefix, service string) string {
	return path.Join("/", prefix, service, "status") + "/"
}

// A sidekick's states, as Status.State says them.
const (
	// StateWaitingForContainer: no container of the name runs.
	StateWaitingForContainer = "waiting-for-container"
	// StateOtherVersion: the container runs, with another version label
	// than the unit wants (the old version's, during a replace).
	StateOtherVersion = "container-runs-another-version"
	// StateNoAddress: the container runs but has no IP on the network.
	StateNoAddress = "waiting-for-address"
	// StateStarting: it runs, and no health check has answered yet.
	StateStarting = "starting"
	// StateHealthFailing: the health check fails; the instance is not
	// registered.
	StateHealthFailing = "health-failing"
	// StateRegistering: healthy, the upstream key not (yet) in etcd.
	StateRegistering = "registering"
	// StateServing: registered under the upstream key.
	StateServing = "serving"
	// StateStopping: the sidekick is stopping.
	StateStopping = "stopping"
	// StatePlacedElsewhere: fleet schedules the instance on another
	// machine; this copy is not registered (registrar/placement).
	StatePlacedElsewhere = "placed-elsewhere"
)

// MaxResultLen bounds Status.LastResult (an error's text).
const MaxResultLen = 200

// Status is the record at StatusKey.
type Status struct {
	State string `json:"state"`
	// WantVersion is the version label the sidekick registers; RunVersion
	// the one its container carries ("" when none runs or the source is
	// not a container).
	WantVersion string `json:"wantVersion,omitempty"`
	RunVersion  string `json:"runVersion,omitempty"`
	// Addr is the instance's address, when it has one.
	Addr string `json:"addr,omitempty"`
	// Check names the health check ("GET /healthz"); LastResult is its
	// last result: "ok", the HTTP status for an answer that fails, or the
	// error's text (at most MaxResultLen bytes).
	Check      string `json:"check,omitempty"`
	LastResult string `json:"lastResult,omitempty"`
	HTTPStatus int    `json:"httpStatus,omitempty"`
	// FailingSince is the first failed check since the last pass.
	FailingSince *time.Time `json:"failingSince,omitempty"`
	// Machine is fleet's machine ID (/etc/machine-id), Host the host name.
	Machine string `json:"machine,omitempty"`
	Host    string `json:"host,omitempty"`
	// Updated is when the sidekick wrote this.
	Updated time.Time `json:"updated"`
}

// Clip bounds s to MaxResultLen bytes, on a rune boundary.
func Clip(s string) string {
	if len(s) <= MaxResultLen {
		return s
	}
	cut := MaxResultLen - len("...")
	for cut > 0 && !isRuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// Reason says in words why the instance is or is not serving, as of now:
// "health check GET /healthz -> 503 for 58s".
func (s *Status) Reason(now time.Time) string {
	switch s.State {
	case StateHealthFailing:
		r := "health check " + s.Check
		if s.HTTPStatus != 0 {
			r += fmt.Sprintf(" -> %d", s.HTTPStatus)
		} else if s.LastResult != "" {
			r += " fails: " + s.LastResult
		}
		if s.FailingSince != nil {
			r += " for " + now.Sub(*s.FailingSince).Round(time.Second).String()
		}
		return r
	case StateOtherVersion:
		return fmt.Sprintf("its container runs version %s, the unit wants %s", orNone(s.RunVersion), orNone(s.WantVersion))
	case StateWaitingForContainer:
		return "no container of it runs yet"
	case StateNoAddress:
		return "its container runs but has no address on the network"
	case StateStarting:
		return "its container runs; health check " + s.Check + " has not answered yet"
	case StateRegistering:
		return "healthy, not yet registered in etcd"
	case StateServing:
		return "serving at " + s.Addr
	case StateStopping:
		return "its sidekick is stopping"
	}
	return s.State
}

// Where says where the sidekick runs: "sidekick on machine 0aabb6d2
// (host core-1)".
func (s *Status) Where() string {
	var parts []string
	if s.Machine != "" {
		parts = append(parts, "machine "+short(s.Machine))
	}
	if s.Host != "" {
		parts = append(parts, "host "+s.Host)
	}
	if len(parts) == 0 {
		return "sidekick"
	}
	return "sidekick on " + strings.Join(parts, ", ")
}

func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

func orNone(v string) string {
	if v == "" {
		return "(none)"
	}
	return v
}
