package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/deployctl/deployctl/internal/exitcode"
	"github.com/deployctl/deployctl/units"
	"github.com/deployctl/deployctl/units/fleet"
	"github.com/deployctl/deployctl/units/machinessh"
	"github.com/spf13/cobra"
)

// machineAccess is fleet and the way to its machines, for units logs and
// units ssh: through the --tunnel node's SSH connection when there is one
// (the machines' IPs are often private), else directly.
type machineAccess struct {
	fleet *fleet.Client
	ssh   machinessh.Config
	close func()
}

// machines connects to fleet as connect does and keeps the tunnel to
// reach the machines through.
func (f *fleetFlags) machines(ctx context.Context, log *slog.Logger) (*machineAccess, error) {
	if f.timeout <= 0 {
		return nil, exitcode.Usage(fmt.Errorf("--request-timeout must be positive, e.g. 30s"))
	}
	auth := fleet.TunnelConfig{Target: f.tunnel, KeyFile: f.sshKey, KnownHosts: f.knownHosts, InsecureSkipHostKeyCheck: f.insecure, Timeout: f.timeout}
	a := &machineAccess{ssh: machinessh.Config{Auth: auth, Log: log}, close: func() {}}
	if f.tunnel != "" {
		dctx, cancel := context.WithTimeout(ctx, f.timeout)
		defer cancel()
		tun, err := fleet.OpenTunnel(dctx, auth)
		if err != nil {
			return nil, err
		}
		a.ssh.Dial, a.close = tun.Dial, func() { tun.Close() }
	}
	c, err := fleet.New(f.endpoint, a.ssh.Dial)
	if err != nil {
		a.close()
		return nil, exitcode.Usage(fmt.Errorf("--endpoint: %w", err))
	}
	c.SetRequestTimeout(f.timeout)
	closeTunnel := a.close
	a.fleet, a.close = c, func() { c.Close(); closeTunnel() }
	return a, nil
}

// connect logs in to the machine, bounded by --request-timeout.
func (a *machineAccess) connect(ctx context.Context, timeout time.Duration, m fleet.Machine) (*machinessh.Client, error) {
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return machinessh.Connect(cctx, a.ssh, m.PrimaryIP)
}

// bindMachineFlags binds fleet's flags and says that the SSH ones are for
// the machines too.
func bindMachineFlags(cmd *cobra.Command, ff *fleetFlags) {
	ff.bind(cmd)
	fl := cmd.Flags()
	fl.Lookup("ssh-key").Usage = "private key for SSH as core to the machine (and --tunnel) (default: the ssh-agent; env FLEETCTL_SSH_KEY)"
	fl.Lookup("known-hosts").Usage = "known_hosts file pinning the machines' (and --tunnel's) host keys, machines by IP (default ~/.ssh/known_hosts; env FLEETCTL_KNOWN_HOSTS_FILE)"
	fl.Lookup("insecure-skip-host-key-check").Usage = "accept any host key, the machine's and --tunnel's (throwaway clusters only)"
	fl.Lookup("request-timeout").Usage = "bound on each request to fleet and on logging in to the machine"
}

// unitArg is a unit name as given (someapp@1, someapp-lb.service), with
// ".service" added when it has no suffix.
func unitArg(arg string) (string, error) {
	name := arg
	if _, err := units.ParseName(name); err != nil {
		name += ".service"
	}
	if err := units.ValidateName(name); err != nil {
		return "", exitcode.Usage(fmt.Errorf("UNIT: %w", err))
	}
	return name, nil
}

// locateError says what to do about a unit whose machine was not found.
func locateError(err error) error {
	switch {
	case errors.Is(err, machinessh.ErrUnknownUnit):
		return exitcode.Usage(fmt.Errorf("%w (deployctl units status lists the units fleet holds)", err))
	case errors.Is(err, machinessh.ErrNotScheduled):
		return fmt.Errorf("%w: no machine has its journal yet (deployctl units status shows its state; units submit --start starts it)", err)
	case errors.Is(err, machinessh.ErrManyMachines):
		return fmt.Errorf("%w: give one machine instead (deployctl units ssh MACHINE -- journalctl -u UNIT)", err)
	}
	return err
}
