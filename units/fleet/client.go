// Package fleet is a client for fleet's v1 HTTP API (fleet 1.0.0), as
// fleetctl speaks it: unix:///var/run/fleet.sock by default, http(s)://
// endpoints, and an SSH tunnel to a cluster node. It follows the API's
// exact shapes (omitted empty fields, paging tokens, error JSON) and guards
// against fleetd's known defects: desired states are validated locally, new
// templates are never created launched, and unit state is read through
// /state?unitName= rather than /state/{name}.
package fleet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/deployctl/deployctl/internal/apitransport"
	"github.com/deployctl/deployctl/units"
)

// Desired states fleet accepts.
const (
	StateInactive = "inactive"
	StateLoaded   = "loaded"
	StateLaunched = "launched"
)

// ValidState reports whether s is a desired state fleet understands.
func ValidState(s string) bool {
	return s == StateInactive || s == StateLoaded || s == StateLaunched
}

// DefaultEndpoint is fleetd's socket.
const DefaultEndpoint = "unix:///var/run/fleet.sock"

// Unit is a unit as fleet's API returns it.
type Unit struct {
	Name         string         `json:"name,omitempty"`
	Options      []units.Option `json:"options,omitempty"`
	DesiredState string         `json:"desiredState,omitempty"`
	CurrentState string         `json:"currentState,omitempty"`
	MachineID    string         `json:"machineID,omitempty"`
}

// File returns the unit as the typed model.
func (u *Unit) File() *units.Unit { return &units.Unit{Name: u.Name, Options: u.Options} }

// UnitState is one entry of GET /state.
type UnitState struct {
	Name               string `json:"name"`
	Hash               string `json:"hash,omitempty"`
	MachineID          string `json:"machineID,omitempty"`
	SystemdLoadState   string `json:"systemdLoadState,omitempty"`
	SystemdActiveState string `json:"systemdActiveState,omitempty"`
	SystemdSubState    string `json:"systemdSubState,omitempty"`
}

// Machine is one entry of GET /machines.
type Machine struct {
	ID        string            `json:"id"`
	PrimaryIP string            `json:"primaryIP,omitempty"`
	Metadata  map[string]string `json:"metadata,omitempty"`
}

// Error is fleet's error answer.
type Error struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return fmt.Sprintf("fleet API: %d %s", e.Code, e.Message) }

// ErrNotFound is returned for 404 answers.
var ErrNotFound = errors.New("unit does not exist")

// Is matches ErrNotFound for 404s.
func (e *Error) Is(target error) bool { return target == ErrNotFound && e.Code == http.StatusNotFound }

// Client talks to one fleet API endpoint.
type Client struct {
	http     *http.Client
	base     string // e.g. http://fleet/fleet/v1
	endpoint string
}

// Dialer opens connections to the API endpoint; the SSH tunnel provides one.
type Dialer func(ctx context.Context, network, addr string) (net.Conn, error)

// New returns a client for endpoint: unix:///path or http(s)://host:port.
// SetRequestTimeout bounds each request to fleet (default 30s); a long
// operation is made of many requests and is bounded by its own deadlines.
func (c *Client) SetRequestTimeout(d time.Duration) {
	if d > 0 {
		c.http.Timeout = d
	}
}

// dial, when non-nil, replaces the network dialer (for tunnels).
func New(endpoint string, dial Dialer) (*Client, error) {
	u, endpoint, err := apitransport.Parse("fleet endpoint", endpoint, DefaultEndpoint)
	if err != nil {
		return nil, err
	}
	tr := apitransport.New(u, apitransport.Dialer(dial), 8)
	c := &Client{http: &http.Client{Transport: tr, Timeout: 30 * time.Second}, endpoint: endpoint}
	switch u.Scheme {
	case "unix":
		if u.Path == "" {
			return nil, fmt.Errorf("fleet endpoint %q: a unix endpoint needs a path, e.g. unix:///var/run/fleet.sock", endpoint)
		}
		c.base = "http://fleet/fleet/v1"
	case "http", "https":
		if u.Host == "" {
			return nil, fmt.Errorf("fleet endpoint %q has no host", endpoint)
		}
		c.base = u.Scheme + "://" + u.Host + strings.TrimSuffix(u.Path, "/") + "/fleet/v1"
	default:
		return nil, fmt.Errorf("fleet endpoint %q: use unix:///var/run/fleet.sock or http://host:port", endpoint)
	}
	return c, nil
}

// Endpoint is what the client was created for.
func (c *Client) Endpoint() string { return c.endpoint }

// Close releases idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// unitPath escapes a unit name as fleetctl does ("@" as %40).
func unitPath(name string) string {
	return "/units/" + strings.ReplaceAll(url.PathEscape(name), "@", "%40")
}

func (c *Client) do(ctx context.Context, method, path string, q url.Values, body any, out any) (int, error) {
	if q == nil {
		q = url.Values{}
	}
	q.Set("alt", "json")
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path+"?"+q.Encode(), rd)
	if err != nil {
		return 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("fleet %s %s: %w (is fleetd reachable at %s?)", method, path, err, c.endpoint)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return resp.StatusCode, fmt.Errorf("fleet %s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error *Error `json:"error"`
		}
		if json.Unmarshal(data, &e) == nil && e.Error != nil {
			return resp.StatusCode, fmt.Errorf("fleet %s %s: %w", method, path, e.Error)
		}
		return resp.StatusCode, fmt.Errorf("fleet %s %s: %w", method, path, &Error{Code: resp.StatusCode, Message: strings.TrimSpace(string(data))})
	}
	if out != nil && len(bytes.TrimSpace(data)) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("fleet %s %s: answer is not the expected JSON: %w", method, path, err)
		}
	}
	return resp.StatusCode, nil
}

// maxPages bounds paging so a server that always returns a token cannot
// loop forever.
const maxPages = 10000

// list GETs path page after page, echoing nextPageToken, until a page has
// no token (fleetd sends an empty last page, {}, when the count is an exact
// multiple of its page size). key names the page's list ("units", ...).
func list[T any](ctx context.Context, c *Client, path, key string, q url.Values) ([]T, error) {
	if q == nil {
		q = url.Values{}
	}
	var all []T
	for n := 0; n < maxPages; n++ {
		var p map[string]json.RawMessage
		if _, err := c.do(ctx, http.MethodGet, path, q, nil, &p); err != nil {
			return nil, err
		}
		if raw, ok := p[key]; ok {
			var items []T
			if err := json.Unmarshal(raw, &items); err != nil {
				return nil, fmt.Errorf("fleet GET %s: %q is not a list of %T: %w", path, key, *new(T), err)
			}
			all = append(all, items...)
		}
		var next string
		if raw, ok := p["nextPageToken"]; ok {
			if err := json.Unmarshal(raw, &next); err != nil {
				return nil, fmt.Errorf("fleet GET %s: nextPageToken is not a string: %w", path, err)
			}
		}
		if next == "" {
			return all, nil
		}
		q.Set("nextPageToken", next)
	}
	return nil, fmt.Errorf("fleet GET %s: more than %d pages", path, maxPages)
}

// Units lists every unit.
func (c *Client) Units(ctx context.Context) ([]Unit, error) {
	return list[Unit](ctx, c, "/units", "units", nil)
}

// Unit returns one unit; errors.Is(err, ErrNotFound) when it does not exist.
func (c *Client) Unit(ctx context.Context, name string) (*Unit, error) {
	var u Unit
	if _, err := c.do(ctx, http.MethodGet, unitPath(name), nil, nil, &u); err != nil {
		return nil, err
	}
	return &u, nil
}

// Create submits a new unit (or replaces one with different options) in
// desired state. A template is always created inactive: fleetd would
// schedule a launched template.
func (c *Client) Create(ctx context.Context, u *units.Unit, state string) error {
	if err := u.Validate(); err != nil {
		return err
	}
	if state == "" {
		state = StateInactive
	}
	if !ValidState(state) {
		return fmt.Errorf("desired state %q is not inactive, loaded or launched", state)
	}
	if n, _ := units.ParseName(u.Name); n.IsTemplate() && state != StateInactive {
		return fmt.Errorf("unit %s is a template; templates are submitted inactive and started through instances", u.Name)
	}
	body := Unit{Name: u.Name, Options: u.Options, DesiredState: state}
	_, err := c.do(ctx, http.MethodPut, unitPath(u.Name), nil, body, nil)
	return err
}

// SetState changes an existing unit's desired state. Invalid states are
// refused here: fleetd accepts them and breaks the unit for good.
func (c *Client) SetState(ctx context.Context, name, state string) error {
	if !ValidState(state) {
		return fmt.Errorf("desired state %q is not inactive, loaded or launched", state)
	}
	if n, err := units.ParseName(name); err != nil {
		return err
	} else if n.IsTemplate() && state != StateInactive {
		return fmt.Errorf("unit %s is a template; start an instance such as %s", name, strings.Replace(name, "@.", "@1.", 1))
	}
	_, err := c.do(ctx, http.MethodPut, unitPath(name), nil, Unit{DesiredState: state}, nil)
	return err
}

// StartInstance launches name@N.service from its template's options, as
// `fleetctl start` does (the server never expands templates). If the
// instance exists already it is only set to launched.
func (c *Client) StartInstance(ctx context.Context, name string) error {
	n, err := units.ParseName(name)
	if err != nil {
		return err
	}
	if !n.IsInstance() {
		return c.SetState(ctx, name, StateLaunched)
	}
	if _, err := c.Unit(ctx, name); err == nil {
		return c.SetState(ctx, name, StateLaunched)
	} else if !errors.Is(err, ErrNotFound) {
		return err
	}
	tpl, err := c.Unit(ctx, n.Template())
	if err != nil {
		return fmt.Errorf("start %s: template %s: %w", name, n.Template(), err)
	}
	_, err = c.do(ctx, http.MethodPut, unitPath(name), nil, Unit{Name: name, Options: tpl.Options, DesiredState: StateLaunched}, nil)
	return err
}

// Destroy deletes a unit; a missing unit is not an error.
func (c *Client) Destroy(ctx context.Context, name string) error {
	_, err := c.do(ctx, http.MethodDelete, unitPath(name), nil, nil, nil)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

// States lists unit states, optionally for one machine or one unit.
func (c *Client) States(ctx context.Context, machineID, unitName string) ([]UnitState, error) {
	q := url.Values{}
	if machineID != "" {
		q.Set("machineID", machineID)
	}
	if unitName != "" {
		q.Set("unitName", unitName)
	}
	return list[UnitState](ctx, c, "/state", "states", q)
}

// Machines lists the cluster's machines.
func (c *Client) Machines(ctx context.Context) ([]Machine, error) {
	return list[Machine](ctx, c, "/machines", "machines", nil)
}
