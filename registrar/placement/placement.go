// Package placement tells a sidekick where fleet schedules the instance
// it announces: on this machine, on another, or nowhere. A copy that fleet
// has moved elsewhere (its node partitioned off, or its agent cut off from
// etcd, while fleet scheduled the instance again) keeps running until its
// agent hears of the move; asked before it registers, its sidekick leaves
// the registration to the copy fleet schedules (issue 32 item 3).
package placement

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// Fleet asks fleet's API (on the node, its unix socket) for a unit's
// machine.
type Fleet struct {
	// Unit is the fleet unit, e.g. someapp@1.service.
	Unit string
	// Machine is this machine's ID (/etc/machine-id, which is fleet's).
	Machine string
	client  *http.Client
	base    string
}

// NewFleet reaches fleet at endpoint: unix:///var/run/fleet.sock (the
// node's socket) or http://host:port.
func NewFleet(endpoint, unit, machine string) (*Fleet, error) {
	if unit == "" || machine == "" {
		return nil, errors.New("placement: a unit and this machine's ID are needed")
	}
	f := &Fleet{Unit: unit, Machine: machine}
	switch {
	case strings.HasPrefix(endpoint, "unix://"):
		sock := strings.TrimPrefix(endpoint, "unix://")
		if sock == "" {
			return nil, fmt.Errorf("fleet endpoint %q names no socket, e.g. unix:///var/run/fleet.sock", endpoint)
		}
		f.client = &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}}}
		f.base = "http://fleet"
	case strings.HasPrefix(endpoint, "http://"):
		f.client, f.base = &http.Client{}, strings.TrimSuffix(endpoint, "/")
	default:
		return nil, fmt.Errorf("fleet endpoint %q: use unix:///var/run/fleet.sock or http://host:port", endpoint)
	}
	return f, nil
}

// Here reports whether fleet schedules the unit on this machine, and on
// which machine it does ("" when on none: not scheduled, or no such
// unit). ctx bounds the request.
func (f *Fleet) Here(ctx context.Context) (here bool, where string, err error) {
	// fleetctl escapes "@" in unit paths (design §6).
	u := f.base + "/fleet/v1/units/" + strings.ReplaceAll(url.PathEscape(f.Unit), "@", "%40") + "?alt=json"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return false, "", fmt.Errorf("fleet unit %s: %w", f.Unit, err)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return false, "", fmt.Errorf("fleet unit %s: %w", f.Unit, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return false, "", fmt.Errorf("fleet unit %s: %w", f.Unit, err)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return false, "", nil
	case resp.StatusCode != http.StatusOK:
		return false, "", fmt.Errorf("fleet unit %s: %s: %s", f.Unit, resp.Status, strings.TrimSpace(string(body)))
	}
	var unit struct {
		MachineID string `json:"machineID"`
	}
	if err := json.Unmarshal(body, &unit); err != nil {
		return false, "", fmt.Errorf("fleet unit %s: %w", f.Unit, err)
	}
	return unit.MachineID == f.Machine, unit.MachineID, nil
}
