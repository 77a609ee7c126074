package doapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/deployctl/deployctl/internal/atomicfile"
	"github.com/digitalocean/godo"
)

// state is everything the stand-in holds; it is saved whole after every
// change. Droplets keep their user data (it holds the node's SSH host key:
// the file is 0600).
type state struct {
	NextID    int                       `json:"nextId"`
	Keys      map[int]*godo.Key         `json:"keys"`
	Tags      map[string]bool           `json:"tags"`
	VPCs      map[string]*godo.VPC      `json:"vpcs"`
	Images    map[int]*godo.Image       `json:"images"`
	Droplets  map[int]*droplet          `json:"droplets"`
	Firewalls map[string]*godo.Firewall `json:"firewalls"`
	Projects  map[string]*project       `json:"projects"`
}

// droplet is a droplet and what its machine is booted from.
type droplet struct {
	Droplet  godo.Droplet `json:"droplet"`
	UserData string       `json:"userData"`
	// SSHKeys are the public keys the create named (by id or fingerprint).
	SSHKeys []string `json:"sshKeys"`
	// Failures counts boots that failed; after maxBootFailures the droplet
	// is "errored" (each failure's reason is in the stand-in's log).
	Failures int `json:"failures,omitempty"`
}

type project struct {
	Project   godo.Project `json:"project"`
	Resources []string     `json:"resources"` // URNs
}

func newState() *state {
	return &state{NextID: 1000, Keys: map[int]*godo.Key{}, Tags: map[string]bool{}, VPCs: map[string]*godo.VPC{},
		Images: map[int]*godo.Image{}, Droplets: map[int]*droplet{}, Firewalls: map[string]*godo.Firewall{}, Projects: map[string]*project{}}
}

// loadState reads path, or starts empty when there is no file yet.
func loadState(path string) (*state, error) {
	st := newState()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, fmt.Errorf("stand-in state: %w", err)
	}
	if err := json.Unmarshal(b, st); err != nil {
		return nil, fmt.Errorf("stand-in state %s: %w (move it away to start empty)", path, err)
	}
	return st, nil
}

func (st *state) save(path string) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("stand-in state: %w", err)
	}
	return atomicfile.WriteFile(path, append(b, '\n'), 0o600)
}

func (st *state) nextID() int {
	st.NextID++
	return st.NextID
}
