package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/deployctl/deployctl/internal/exitcode"
	"github.com/deployctl/deployctl/units/fleet"
	"github.com/deployctl/deployctl/units/machinessh"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

func newUnitsSSHCmd(e *env) *cobra.Command {
	var ff fleetFlags
	cmd := &cobra.Command{
		Use:   "ssh UNIT|MACHINE [-- CMD...]",
		Short: "Open a shell, or run CMD, on the machine that runs a unit, like fleetctl ssh",
		Long: `ssh logs in as core to a machine of fleet's and opens a shell there, or runs
CMD and exits with its exit status. The machine is given as a machine ID
(a prefix that matches one machine is enough, as in deployctl units
machines), as an IP, or as a unit (someapp@1, someapp-lb.service): the
machine fleet runs it on.

CMD is given to the remote shell as ssh does: its words are joined with
spaces, so quote what the remote shell must not expand. Put -- before CMD
when it has flags of its own, after deployctl's flags:
deployctl units ssh someapp@1 --tunnel core@NODE -- docker ps -a.
A shell gets a pseudo-terminal when stdin is a terminal.

With --tunnel, the machine is reached through the tunnel node's SSH
connection, by its IP, as fleetctl does; without, directly at its IP. The
machine's host key must be pinned under its IP in --known-hosts.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSSH(cmd, e, &ff, args[0], strings.Join(args[1:], " "))
		},
	}
	bindMachineFlags(cmd, &ff)
	return cmd
}

func runSSH(cmd *cobra.Command, e *env, ff *fleetFlags, target, command string) error {
	ctx := cmd.Context()
	a, err := ff.machines(ctx, e.log)
	if err != nil {
		return err
	}
	defer a.close()
	m, err := findTarget(ctx, a.fleet, target)
	if err != nil {
		return err
	}
	c, err := a.connect(ctx, ff.timeout, m)
	if err != nil {
		return fmt.Errorf("ssh to %s: %w", target, err)
	}
	defer c.Close()
	s := machinessh.Session{Command: command, Stdin: cmd.InOrStdin(), Stdout: e.stdout, Stderr: e.stderr}
	if command == "" {
		restore, t, err := rawTerminal(s.Stdin, s.Stdout)
		if err != nil {
			return err
		}
		defer restore()
		s.Term = t
	}
	// A shell or CMD has no deadline: it runs until it ends or the
	// user's context does.
	err = c.Run(ctx, s)
	var ee *machinessh.ExitError
	if errors.As(err, &ee) && ee.Signal == "" {
		return exitcode.With(ee.Status, nil)
	}
	return err
}

// findTarget is the machine given as an IP, a machine ID or a prefix of
// one, or as a unit it runs.
func findTarget(ctx context.Context, c *fleet.Client, target string) (fleet.Machine, error) {
	if strings.Trim(target, "0123456789abcdef.:") == "" {
		m, err := machinessh.FindMachine(ctx, c, target)
		if !errors.Is(err, machinessh.ErrUnknownMachine) {
			return m, err
		}
	}
	name, err := unitArg(target)
	if err != nil {
		return fleet.Machine{}, exitcode.Usage(fmt.Errorf("%s is neither a machine of fleet's nor a unit name", target))
	}
	_, m, err := machinessh.Locate(ctx, c, name)
	if errors.Is(err, machinessh.ErrUnknownUnit) {
		return m, exitcode.Usage(fmt.Errorf("%s is neither a machine (deployctl units machines lists them) nor a unit fleet holds (deployctl units status lists them)", target))
	}
	return m, locateError(err)
}

// rawTerminal puts stdin, when it is a terminal, in raw mode for a remote
// shell and returns the pseudo-terminal to ask for; restore undoes it. A
// stdin that is no terminal gets a shell without one, as ssh -T.
func rawTerminal(stdin io.Reader, stdout io.Writer) (restore func(), t *machinessh.Term, err error) {
	in, ok := stdin.(*os.File)
	if !ok || !term.IsTerminal(int(in.Fd())) {
		return func() {}, nil, nil
	}
	w, h := 80, 24
	if out, ok := stdout.(*os.File); ok {
		if cw, ch, err := term.GetSize(int(out.Fd())); err == nil {
			w, h = cw, ch
		}
	}
	old, err := term.MakeRaw(int(in.Fd()))
	if err != nil {
		return nil, nil, fmt.Errorf("terminal: %w", err)
	}
	return func() { term.Restore(int(in.Fd()), old) }, &machinessh.Term{Name: os.Getenv("TERM"), Width: w, Height: h}, nil
}
