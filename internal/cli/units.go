package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/deployctl/deployctl/internal/atomicfile"
	"github.com/deployctl/deployctl/internal/exitcode"
	"github.com/deployctl/deployctl/units"
	"github.com/deployctl/deployctl/units/deployspec"
	"github.com/deployctl/deployctl/units/fleet"
	"github.com/deployctl/deployctl/units/generate"
	"github.com/spf13/cobra"
)

// fleetFlags are how a command reaches fleet.
type fleetFlags struct {
	endpoint   string
	tunnel     string
	sshKey     string
	knownHosts string
	insecure   bool
	timeout    time.Duration
}

func (f *fleetFlags) bind(cmd *cobra.Command) {
	def := os.Getenv("FLEETCTL_ENDPOINT")
	if def == "" {
		def = fleet.DefaultEndpoint
	}
	fl := cmd.Flags()
	fl.StringVar(&f.endpoint, "endpoint", def, "fleet API endpoint: unix:///var/run/fleet.sock or http://host:port (env FLEETCTL_ENDPOINT)")
	fl.StringVar(&f.tunnel, "tunnel", os.Getenv("FLEETCTL_TUNNEL"), "reach fleet through SSH to a cluster node, [user@]host[:port] (user core; env FLEETCTL_TUNNEL)")
	fl.StringVar(&f.sshKey, "ssh-key", "", "private key for --tunnel (default: the ssh-agent)")
	fl.StringVar(&f.knownHosts, "known-hosts", "", "known_hosts file for --tunnel (default ~/.ssh/known_hosts)")
	fl.BoolVar(&f.insecure, "insecure-skip-host-key-check", false, "accept any host key for --tunnel (throwaway clusters only)")
	fl.DurationVar(&f.timeout, "request-timeout", 10*time.Minute, "bound on the whole operation against fleet (a rolling submit waits for each instance)")
}

// connect bounds the operation by --request-timeout and connects to fleet;
// done releases the connection, the tunnel and the timeout.
func (f *fleetFlags) connect(parent context.Context) (context.Context, *fleet.Client, func(), error) {
	ctx, cancel := context.WithTimeout(parent, f.timeout)
	c, closer, err := f.client(ctx)
	if err != nil {
		cancel()
		return nil, nil, nil, err
	}
	return ctx, c, func() { closer(); cancel() }, nil
}

// client connects to fleet; close releases the tunnel.
func (f *fleetFlags) client(ctx context.Context) (*fleet.Client, func(), error) {
	var dial fleet.Dialer
	closer := func() {}
	if f.tunnel != "" {
		tun, err := fleet.OpenTunnel(ctx, fleet.TunnelConfig{Target: f.tunnel, KeyFile: f.sshKey, KnownHosts: f.knownHosts, InsecureSkipHostKeyCheck: f.insecure})
		if err != nil {
			return nil, nil, err
		}
		dial, closer = tun.Dial, func() { tun.Close() }
	}
	c, err := fleet.New(f.endpoint, dial)
	if err != nil {
		closer()
		return nil, nil, exitcode.Usage(fmt.Errorf("--endpoint: %w", err))
	}
	return c, func() { c.Close(); closer() }, nil
}

func loadPlan(file string) (*deployspec.Spec, *generate.Plan, error) {
	spec, err := deployspec.Load(file)
	if err != nil {
		if deployspec.IsErrors(err) || errors.Is(err, os.ErrNotExist) {
			return nil, nil, exitcode.Usage(err)
		}
		return nil, nil, err
	}
	p, err := generate.ForSpec(spec)
	return spec, p, err
}

// specFlags name the deploy spec and whether its units are started.
type specFlags struct {
	file  string
	start bool
}

func (s *specFlags) bind(cmd *cobra.Command, startHelp string) {
	cmd.Flags().StringVarP(&s.file, "file", "f", "deploy.yaml", "deploy spec")
	cmd.Flags().BoolVar(&s.start, "start", false, startHelp)
}

// desired is what fleet should hold for the spec.
func (s *specFlags) desired() (fleet.Desired, error) {
	_, p, err := loadPlan(s.file)
	if err != nil {
		return fleet.Desired{}, err
	}
	return fleet.Desired{Units: p.Units, Launch: p.Launch, Start: s.start}, nil
}

func newUnitsCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "units",
		Short: "Render deploy.yaml into fleet units and manage them through fleet's API",
		Long: `units turns deploy.yaml into the fleet units of the app (NAME@.service), its
discovery sidekick (NAME-discovery@.service, running registrar announce) and
each nginx load balancer (UPSTREAM-LB.service with UPSTREAM-LB-discovery.service
running registrar nginx), and submits them to fleet.`,
	}
	cmd.AddCommand(newUnitsRenderCmd(e), newUnitsDiffCmd(e), newUnitsSubmitCmd(e), newUnitsListCmd(e), newUnitsStatusCmd(e), newUnitsDestroyCmd(e))
	return cmd
}

func newUnitsRenderCmd(e *env) *cobra.Command {
	var file, dir string
	cmd := &cobra.Command{
		Use:   "render -f deploy.yaml -o DIR",
		Short: "Write the unit files for deploy.yaml into a directory",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				return exitcode.Usage(errors.New("--out (-o) is required: the directory to write the unit files to"))
			}
			_, p, err := loadPlan(file)
			if err != nil {
				return err
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return fmt.Errorf("--out: %w", err)
			}
			for _, u := range p.Units {
				path := filepath.Join(dir, u.Name)
				if err := atomicfile.WriteFile(path, u.Render(), 0o644); err != nil {
					return err
				}
				fmt.Fprintln(e.stdout, path)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "deploy.yaml", "deploy spec")
	cmd.Flags().StringVarP(&dir, "out", "o", "", "directory to write the units to (created)")
	return cmd
}

func printChanges(e *env, o *output, chs []fleet.Change, onlyWork bool) error {
	if o.json() {
		if chs == nil {
			chs = []fleet.Change{}
		}
		return writeJSON(e.stdout, chs)
	}
	var rows [][]string
	for _, c := range chs {
		if onlyWork && c.Action == fleet.Unchanged {
			continue
		}
		rows = append(rows, []string{c.Unit, string(c.Action), c.State, c.Reason})
	}
	if len(rows) == 0 {
		fmt.Fprintln(e.stdout, "nothing to change")
		return nil
	}
	return table(e.stdout, []string{"UNIT", "ACTION", "STATE", "WHY"}, rows)
}

func newUnitsDiffCmd(e *env) *cobra.Command {
	var sf specFlags
	var ff fleetFlags
	var o output
	cmd := &cobra.Command{
		Use:   "diff -f deploy.yaml [--start]",
		Short: "Show what submit would change in fleet",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.check(); err != nil {
				return err
			}
			d, err := sf.desired()
			if err != nil {
				return err
			}
			ctx, c, done, err := ff.connect(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			chs, err := fleet.Diff(ctx, c, d)
			if err != nil {
				return err
			}
			return printChanges(e, &o, chs, false)
		},
	}
	sf.bind(cmd, "compare as if submitting with --start")
	ff.bind(cmd)
	o.bind(cmd)
	return cmd
}

func newUnitsSubmitCmd(e *env) *cobra.Command {
	var sf specFlags
	var wait time.Duration
	var ff fleetFlags
	var o output
	cmd := &cobra.Command{
		Use:   "submit -f deploy.yaml [--start]",
		Short: "Submit the units to fleet (idempotent), optionally starting every instance",
		Long: `submit makes fleet hold exactly the units deploy.yaml describes. New units are
created; a changed unit is replaced (stopped, destroyed, created again), and
instances of a changed template are rolled one at a time, each waited for until
systemd reports it active. Units that are already right are left alone, so
running submit twice changes nothing. With --start every instance and load
balancer is launched. Templates are always submitted inactive.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.check(); err != nil {
				return err
			}
			d, err := sf.desired()
			if err != nil {
				return err
			}
			ctx, c, done, err := ff.connect(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			chs, err := fleet.Submit(ctx, c, d, fleet.SubmitOptions{
				WaitActive: wait,
				Progress: func(i, n int, ch fleet.Change) {
					fmt.Fprintf(e.stderr, "[%d/%d] %s %s\n", i, n, ch.Action, ch.Unit)
				},
			})
			if err != nil {
				return err
			}
			return printChanges(e, &o, chs, true)
		},
	}
	sf.bind(cmd, "launch every instance and load balancer")
	cmd.Flags().DurationVar(&wait, "wait", 2*time.Minute, "how long a rolled instance may take to become active")
	ff.bind(cmd)
	o.bind(cmd)
	return cmd
}

func shortID(id string) string {
	if len(id) > 8 {
		return id[:8] + "..."
	}
	return id
}

func newUnitsListCmd(e *env) *cobra.Command {
	var ff fleetFlags
	var o output
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List units and where they run, like fleetctl list-units",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.check(); err != nil {
				return err
			}
			ctx, c, done, err := ff.connect(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			states, err := c.States(ctx, "", "")
			if err != nil {
				return err
			}
			ms, err := c.Machines(ctx)
			if err != nil {
				return err
			}
			ip := map[string]string{}
			for _, m := range ms {
				ip[m.ID] = m.PrimaryIP
			}
			type row struct {
				Unit    string `json:"unit"`
				Machine string `json:"machine"`
				IP      string `json:"ip,omitempty"`
				Active  string `json:"active"`
				Sub     string `json:"sub"`
			}
			var rows []row
			for _, s := range states {
				rows = append(rows, row{s.Name, s.MachineID, ip[s.MachineID], s.SystemdActiveState, s.SystemdSubState})
			}
			sort.SliceStable(rows, func(i, j int) bool { return rows[i].Unit < rows[j].Unit })
			if o.json() {
				if rows == nil {
					rows = []row{}
				}
				return writeJSON(e.stdout, rows)
			}
			var t [][]string
			for _, r := range rows {
				t = append(t, []string{r.Unit, shortID(r.Machine) + "/" + r.IP, r.Active, r.Sub})
			}
			return table(e.stdout, []string{"UNIT", "MACHINE", "ACTIVE", "SUB"}, t)
		},
	}
	ff.bind(cmd)
	o.bind(cmd)
	return cmd
}

func newUnitsStatusCmd(e *env) *cobra.Command {
	var ff fleetFlags
	var o output
	cmd := &cobra.Command{
		Use:   "status [UNIT...]",
		Short: "Show units' desired and current state in fleet (all units without arguments)",
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.check(); err != nil {
				return err
			}
			for _, a := range args {
				if err := units.ValidateName(a); err != nil {
					return exitcode.Usage(err)
				}
			}
			ctx, c, done, err := ff.connect(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			var us []fleet.Unit
			if len(args) == 0 {
				if us, err = c.Units(ctx); err != nil {
					return err
				}
			}
			for _, a := range args {
				u, err := c.Unit(ctx, a)
				if err != nil {
					return err
				}
				us = append(us, *u)
			}
			type row struct {
				Unit    string `json:"unit"`
				Desired string `json:"desiredState"`
				Current string `json:"currentState"`
				Machine string `json:"machineID,omitempty"`
				Hash    string `json:"hash"`
			}
			var rows []row
			for _, u := range us {
				rows = append(rows, row{u.Name, u.DesiredState, u.CurrentState, u.MachineID, u.File().Hash()[:10]})
			}
			if o.json() {
				if rows == nil {
					rows = []row{}
				}
				return writeJSON(e.stdout, rows)
			}
			var t [][]string
			for _, r := range rows {
				t = append(t, []string{r.Unit, r.Desired, r.Current, shortID(r.Machine), r.Hash})
			}
			return table(e.stdout, []string{"UNIT", "DESIRED", "CURRENT", "MACHINE", "HASH"}, t)
		},
	}
	ff.bind(cmd)
	o.bind(cmd)
	return cmd
}

func newUnitsDestroyCmd(e *env) *cobra.Command {
	var file string
	var ff fleetFlags
	cmd := &cobra.Command{
		Use:   "destroy (-f deploy.yaml | UNIT...)",
		Short: "Destroy the units of deploy.yaml (instances first) or the named units",
		RunE: func(cmd *cobra.Command, args []string) error {
			if (file == "") == (len(args) == 0) {
				return exitcode.Usage(errors.New("give either -f deploy.yaml or unit names, not both"))
			}
			var names []string
			if file != "" {
				_, p, err := loadPlan(file)
				if err != nil {
					return err
				}
				for _, u := range p.Units {
					names = append(names, u.Name)
				}
				names = append(names, p.Launch...)
			}
			for _, a := range args {
				if err := units.ValidateName(a); err != nil {
					return exitcode.Usage(err)
				}
				names = append(names, a)
			}
			ctx, c, done, err := ff.connect(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			// Instances that exist but are not in the launch list (scaled
			// down) go too when destroying a whole spec.
			if file != "" {
				current, err := c.Units(ctx)
				if err != nil {
					return err
				}
				tpls := map[string]bool{}
				for _, n := range names {
					if pn, _ := units.ParseName(n); pn.IsTemplate() {
						tpls[n] = true
					}
				}
				have := map[string]bool{}
				for _, n := range names {
					have[n] = true
				}
				for _, u := range current {
					if pn, err := units.ParseName(u.Name); err == nil && pn.IsInstance() && tpls[pn.Template()] && !have[u.Name] {
						names = append(names, u.Name)
					}
				}
			}
			return fleet.DestroyAll(ctx, c, names, func(i, n int, name string) {
				fmt.Fprintf(e.stderr, "[%d/%d] destroy %s\n", i, n, name)
			})
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "deploy spec whose units to destroy")
	ff.bind(cmd)
	return cmd
}
