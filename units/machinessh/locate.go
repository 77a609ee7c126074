package machinessh

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"

	"github.com/deployctl/deployctl/units/fleet"
)

// Errors Locate and FindMachine wrap, for the caller to say what to do.
var (
	ErrUnknownUnit    = errors.New("fleet holds no such unit")
	ErrNotScheduled   = errors.New("unit is not scheduled on any machine")
	ErrManyMachines   = errors.New("unit runs on more than one machine")
	ErrUnknownMachine = errors.New("no such machine")
	ErrNoIP           = errors.New("machine has no IP")
)

// Locate finds the machine that runs the unit fleet holds as name: the one
// its agent reports the unit on (GET /state), else the one fleet scheduled
// it to, and that machine's IP from fleet's machine list.
func Locate(ctx context.Context, c *fleet.Client, name string) (*fleet.Unit, fleet.Machine, error) {
	u, err := c.Unit(ctx, name)
	if errors.Is(err, fleet.ErrNotFound) {
		return nil, fleet.Machine{}, fmt.Errorf("%s: %w", name, ErrUnknownUnit)
	}
	if err != nil {
		return nil, fleet.Machine{}, err
	}
	states, err := c.States(ctx, "", name)
	if err != nil {
		return nil, fleet.Machine{}, err
	}
	seen := map[string]bool{}
	var ids []string
	for _, s := range states {
		if s.MachineID != "" && !seen[s.MachineID] {
			seen[s.MachineID] = true
			ids = append(ids, s.MachineID)
		}
	}
	if len(ids) == 0 && u.MachineID != "" {
		ids = []string{u.MachineID}
	}
	switch {
	case len(ids) == 0:
		return nil, fleet.Machine{}, fmt.Errorf("%s (fleet has it %s): %w", name, u.CurrentState, ErrNotScheduled)
	case len(ids) > 1:
		sort.Strings(ids)
		return nil, fleet.Machine{}, fmt.Errorf("%s runs on %s: %w", name, strings.Join(ids, ", "), ErrManyMachines)
	}
	ms, err := c.Machines(ctx)
	if err != nil {
		return nil, fleet.Machine{}, err
	}
	for _, m := range ms {
		if m.ID == ids[0] {
			if m.PrimaryIP == "" {
				return nil, fleet.Machine{}, fmt.Errorf("machine %s, which runs %s: %w in fleet's machine list", m.ID, name, ErrNoIP)
			}
			return u, m, nil
		}
	}
	return nil, fleet.Machine{}, fmt.Errorf("machine %s, which fleet reports for %s, is not in fleet's machine list (did it leave the cluster?): %w", ids[0], name, ErrUnknownMachine)
}

// FindMachine finds a machine by its IP or by its ID or a prefix of it, as
// fleetctl ssh does. An IP fleet does not list is taken as it is (its host
// key is still checked); an ID prefix must match exactly one machine.
func FindMachine(ctx context.Context, c *fleet.Client, arg string) (fleet.Machine, error) {
	ms, err := c.Machines(ctx)
	if err != nil {
		return fleet.Machine{}, err
	}
	if ip := net.ParseIP(arg); ip != nil {
		for _, m := range ms {
			if net.ParseIP(m.PrimaryIP).Equal(ip) {
				return m, nil
			}
		}
		return fleet.Machine{PrimaryIP: arg}, nil
	}
	var found []fleet.Machine
	for _, m := range ms {
		if arg != "" && strings.HasPrefix(m.ID, arg) {
			found = append(found, m)
		}
	}
	switch {
	case len(found) == 0:
		return fleet.Machine{}, fmt.Errorf("%s: %w", arg, ErrUnknownMachine)
	case len(found) > 1:
		var ids []string
		for _, m := range found {
			ids = append(ids, m.ID)
		}
		return fleet.Machine{}, fmt.Errorf("machine ID prefix %s matches %d machines (%s); give more of it", arg, len(found), strings.Join(ids, ", "))
	case found[0].PrimaryIP == "":
		return fleet.Machine{}, fmt.Errorf("machine %s: %w in fleet's machine list", found[0].ID, ErrNoIP)
	}
	return found[0], nil
}
