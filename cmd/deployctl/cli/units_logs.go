package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/deployctl/deployctl/internal/exitcode"
	"github.com/deployctl/deployctl/units/generate"
	"github.com/deployctl/deployctl/units/machinessh"
	"github.com/spf13/cobra"
)

func newUnitsLogsCmd(e *env) *cobra.Command {
	var ff fleetFlags
	var lines int
	var follow bool
	cmd := &cobra.Command{
		Use:   "logs UNIT [-f] [-n N]",
		Short: "Print a unit's journal from the machine it runs on, like fleetctl journal",
		Long: `logs prints the last lines of UNIT's journal (a name with or without
".service": someapp@1, someapp-lb.service) from the machine fleet runs it
on: it finds the machine in fleet's unit states and its IP in fleet's
machine list, logs in there over SSH as core and runs
journalctl --no-pager -u UNIT -n N. An app instance's discovery sidekick
(someapp-discovery@1.service for someapp@1) runs beside it, and its lines
are merged in by time: it says why an instance is not registered, e.g. its
failing health check. -n counts the lines of both together.

With --tunnel, the machine is reached through the tunnel node's SSH
connection, by its IP, as fleetctl does; without, directly at its IP. The
same key (--ssh-key or the ssh-agent) logs in, and the machine's host key
must be pinned under its IP in --known-hosts: a key that does not match
is refused, naming the file and host.

Without -f, reading the journal is bounded by --request-timeout; with -f,
new lines are printed until Ctrl-C.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if lines < 0 {
				return exitcode.Usage(fmt.Errorf("--lines (-n) must be 0 or more"))
			}
			name, err := unitArg(args[0])
			if err != nil {
				return err
			}
			return runLogs(cmd.Context(), e, &ff, name, lines, follow)
		},
	}
	bindMachineFlags(cmd, &ff)
	cmd.Flags().IntVarP(&lines, "lines", "n", 10, "number of journal lines to print (of the unit and its sidekick together)")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new lines until Ctrl-C")
	return cmd
}

func runLogs(ctx context.Context, e *env, ff *fleetFlags, name string, lines int, follow bool) error {
	a, err := ff.machines(ctx, e.log)
	if err != nil {
		return err
	}
	defer a.close()
	// Each request to fleet is bounded by --request-timeout (the client's).
	u, m, err := machinessh.Locate(ctx, a.fleet, name)
	if err != nil {
		return locateError(err)
	}
	names := []string{name}
	if comp := generate.Companion(u.File()); comp != "" {
		// Only a sidekick fleet holds: journalctl -u of a unit the machine
		// never ran prints nothing, but says nothing either.
		if _, err := a.fleet.Unit(ctx, comp); err == nil {
			names = append(names, comp)
		} else {
			e.log.Debug("sidekick not shown", "unit", comp, "err", err)
		}
	}
	e.log.Debug("journal", "units", names, "machine", m.ID, "ip", m.PrimaryIP)
	c, err := a.connect(ctx, ff.timeout, m)
	if err != nil {
		return fmt.Errorf("logs of %s on machine %s: %w", name, shortID(m.ID), err)
	}
	defer c.Close()
	rctx := ctx
	if !follow {
		var cancel context.CancelFunc
		rctx, cancel = context.WithTimeout(ctx, ff.timeout)
		defer cancel()
	}
	// A follow has no deadline: it runs until the user's context ends
	// (Ctrl-C), which is how it is meant to end, not an error.
	err = c.Run(rctx, machinessh.Session{Command: machinessh.JournalCommand(names, lines, follow), Stdout: e.stdout, Stderr: e.stderr})
	var ee *machinessh.ExitError
	switch {
	case follow && errors.Is(err, context.Canceled) && ctx.Err() != nil:
		return nil
	case errors.As(err, &ee):
		return fmt.Errorf("journalctl on %s (%s): %w", shortID(m.ID), m.PrimaryIP, err)
	}
	return err
}
