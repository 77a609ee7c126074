package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/deployctl/deployctl/internal/atomicfile"
	"github.com/deployctl/deployctl/internal/exitcode"
	"github.com/deployctl/deployctl/registrar/registry"
	"github.com/deployctl/deployctl/units"
	"github.com/deployctl/deployctl/units/deployspec"
	"github.com/deployctl/deployctl/units/fleet"
	"github.com/deployctl/deployctl/units/generate"
	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// fleetFlags are how a command reaches fleet.
type fleetFlags struct {
	endpoint   string
	tunnel     string
	sshKey     string
	knownHosts string
	insecure   bool
	timeout    time.Duration
	// dial is the tunnel's dialer once connected through --tunnel (nil
	// without one): etcd is reached through it too.
	dial fleet.Dialer
}

func (f *fleetFlags) bind(cmd *cobra.Command) {
	def := os.Getenv("FLEETCTL_ENDPOINT")
	if def == "" {
		def = fleet.DefaultEndpoint
	}
	fl := cmd.Flags()
	fl.StringVar(&f.endpoint, "endpoint", def, "fleet API endpoint: unix:///var/run/fleet.sock or http://host:port (env FLEETCTL_ENDPOINT)")
	fl.StringVar(&f.tunnel, "tunnel", os.Getenv("FLEETCTL_TUNNEL"), "reach fleet through SSH to a cluster node, [user@]host[:port] (user core; env FLEETCTL_TUNNEL)")
	fl.StringVar(&f.sshKey, "ssh-key", os.Getenv("FLEETCTL_SSH_KEY"), "private key for --tunnel (default: the ssh-agent; env FLEETCTL_SSH_KEY)")
	fl.StringVar(&f.knownHosts, "known-hosts", os.Getenv("FLEETCTL_KNOWN_HOSTS_FILE"), "known_hosts file for --tunnel (default ~/.ssh/known_hosts; env FLEETCTL_KNOWN_HOSTS_FILE, as fleetctl's)")
	fl.BoolVar(&f.insecure, "insecure-skip-host-key-check", false, "accept any host key for --tunnel (throwaway clusters only)")
	fl.DurationVar(&f.timeout, "request-timeout", 30*time.Second, "bound on each request to fleet (a roll is bounded by --progress-deadline per instance, not by this)")
}

// connect connects to fleet, each request bounded by --request-timeout
// (opening a tunnel too); done releases the connection and the tunnel.
func (f *fleetFlags) connect(parent context.Context) (context.Context, *fleet.Client, func(), error) {
	if f.timeout <= 0 {
		return nil, nil, nil, exitcode.Usage(fmt.Errorf("--request-timeout must be positive, e.g. 30s"))
	}
	dctx, cancel := context.WithTimeout(parent, f.timeout)
	defer cancel()
	c, closer, err := f.client(dctx)
	if err != nil {
		return nil, nil, nil, err
	}
	c.SetRequestTimeout(f.timeout)
	return parent, c, closer, nil
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
	f.dial = dial
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
	return planOf(spec)
}

// parsePlan is loadPlan for a spec's text (one kept in history), file
// naming it in errors.
func parsePlan(file string, data []byte) (*deployspec.Spec, *generate.Plan, error) {
	spec, err := deployspec.Parse(file, data)
	if deployspec.IsErrors(err) {
		return nil, nil, exitcode.Usage(err)
	}
	if err != nil {
		return nil, nil, err
	}
	return planOf(spec)
}

func planOf(spec *deployspec.Spec) (*deployspec.Spec, *generate.Plan, error) {
	p, err := generate.ForSpec(spec)
	if deployspec.IsErrors(err) {
		return nil, nil, exitcode.Usage(err)
	}
	return spec, p, err
}

func newUnitsCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "units",
		Short: "Render deploy.yaml into fleet units and manage them through fleet's API",
		Long: `units turns deploy.yaml into the fleet units of the app (NAME@.service), its
discovery sidekick (NAME-discovery@.service, running registrar announce) and
each nginx load balancer (UPSTREAM-LB.service with UPSTREAM-LB-discovery.service
running registrar nginx), and submits them to fleet. A global service
(machine: {global: true}) runs one instance per matching machine, named by its
machine ID (NAME@MACHINEID.service), so a change rolls machine by machine;
a machine that joins later gets its instance from the next submit.`,
	}
	cmd.AddCommand(newUnitsRenderCmd(e), newUnitsDiffCmd(e), newUnitsSubmitCmd(e), newUnitsListCmd(e), newUnitsStatusCmd(e), newUnitsMachinesCmd(e), newUnitsCatCmd(e), newUnitsLogsCmd(e), newUnitsSSHCmd(e), newUnitsDestroyCmd(e), newUnitsHistoryCmd(e), newUnitsRollbackCmd(e))
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
			ip, err := machineIPs(ctx, c)
			if err != nil {
				return err
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
			return list(e, &o, rows, []string{"UNIT", "MACHINE", "ACTIVE", "SUB"}, func(r row) []string {
				return []string{r.Unit, machineColumn(r.Machine, r.IP), r.Active, r.Sub}
			})
		},
	}
	ff.bind(cmd)
	o.bind(cmd)
	return cmd
}

func newUnitsMachinesCmd(e *env) *cobra.Command {
	var ff fleetFlags
	var o output
	cmd := &cobra.Command{
		Use:   "machines",
		Short: "List fleet's machines with their IP and metadata, like fleetctl list-machines",
		Long: `machines lists the machines fleet knows, with their full IDs (a global
service's instances are named by them), IPs and metadata.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.check(); err != nil {
				return err
			}
			ctx, c, done, err := ff.connect(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			ms, err := c.Machines(ctx)
			if err != nil {
				return err
			}
			type row struct {
				Machine  string            `json:"machineID"`
				IP       string            `json:"ip,omitempty"`
				Metadata map[string]string `json:"metadata,omitempty"`
			}
			var rows []row
			for _, m := range ms {
				rows = append(rows, row{m.ID, m.PrimaryIP, m.Metadata})
			}
			sort.Slice(rows, func(i, j int) bool { return rows[i].Machine < rows[j].Machine })
			return list(e, &o, rows, []string{"MACHINE", "IP", "METADATA"}, func(r row) []string {
				keys := make([]string, 0, len(r.Metadata))
				for k := range r.Metadata {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				var md []string
				for _, k := range keys {
					md = append(md, k+"="+r.Metadata[k])
				}
				if len(md) == 0 {
					md = []string{"-"}
				}
				return []string{r.Machine, r.IP, strings.Join(md, ",")}
			})
		},
	}
	ff.bind(cmd)
	o.bind(cmd)
	return cmd
}

// unitsStatusHelp is units status's --help.
const unitsStatusHelp = `status lists units with their desired and current state in fleet, the
machine each runs on and its unit hash, then a summary per service.

With an etcd (--etcd-endpoints, by default $ETCDCTL_ENDPOINTS) it adds a
SIDEKICK column: for each app instance (and its sidekick's row) the state
its discovery sidekick publishes at <prefix>/<service>/status/<instance>:
waiting-for-container, container-runs-another-version, waiting-for-address,
starting, health-failing, registering, serving or stopping; for a failing
health check, its last result and for how long; for a container of another
version, both versions. "-" when the sidekick publishes nothing (it is not
running). -o json adds the whole record as "sidekick". If etcd cannot be
read, status says so on stderr and lists fleet's part.
` + glanceHelp

func newUnitsStatusCmd(e *env) *cobra.Command {
	var ff fleetFlags
	var hf historyFlags
	var o output
	var prefix string
	var summaryOnly bool
	cmd := &cobra.Command{
		Use:   "status [UNIT...]",
		Short: "Show units' desired and current state in fleet (all units without arguments), their sidekicks' state, and a summary per service",
		Long:  unitsStatusHelp,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.check(); err != nil {
				return err
			}
			if err := checkUnitNames(args); err != nil {
				return err
			}
			if err := registry.CheckPrefix(prefix); err != nil {
				return exitcode.Usage(fmt.Errorf("--prefix: %w", err))
			}
			ctx, c, done, err := ff.connect(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			rows, err := statusRows(ctx, c, args)
			if err != nil {
				return err
			}
			etcd, err := hf.connect(ff.dial)
			if err != nil {
				fmt.Fprintf(e.stderr, "sidekick status and registrations not shown: %v\n", err)
			}
			if etcd != nil {
				defer etcd.Close()
			}
			sidekicks := addSidekicks(ctx, e, &hf, etcd, prefix, rows)
			gs, err := statusGlances(ctx, e, &hf, c, etcd, prefix, rows)
			if err != nil {
				return err
			}
			if summaryOnly {
				return printGlances(e, &o, gs)
			}
			return printStatus(e, &o, rows, sidekicks, gs)
		},
	}
	ff.bind(cmd)
	hf.bind(cmd)
	cmd.Flags().StringVar(&prefix, "prefix", registry.DefaultPrefix, "etcd key prefix the sidekicks publish under (the spec's registry prefix)")
	cmd.Flags().BoolVar(&summaryOnly, "summary", false, "print only the summary per service")
	o.bind(cmd)
	return cmd
}

// printStatus prints units status's rows, then (as a table) the summary.
func printStatus(e *env, o *output, rows []statusRow, sidekicks bool, gs []Glance) error {
	header := []string{"UNIT", "DESIRED", "CURRENT", "MACHINE", "HASH"}
	if sidekicks {
		header = append(header, "SIDEKICK")
	}
	now := time.Now()
	err := list(e, o, rows, header, func(r statusRow) []string {
		cols := []string{r.Unit, r.Desired, r.Current, machineColumn(r.Machine, r.IP), r.Hash}
		if sidekicks {
			cols = append(cols, sidekickColumn(r.Sidekick, now))
		}
		return cols
	})
	if err != nil || o.json() || len(gs) == 0 {
		return err
	}
	fmt.Fprintln(e.stdout)
	return table(e.stdout, glanceHeader, glanceRows(gs))
}

// printGlances prints only the summaries (--summary).
func printGlances(e *env, o *output, gs []Glance) error {
	if o.json() {
		if gs == nil {
			gs = []Glance{}
		}
		return writeJSON(e.stdout, gs)
	}
	return table(e.stdout, glanceHeader, glanceRows(gs))
}

// statusGlances summarizes the services of the instance rows (every
// service fleet holds instances of when the rows are all units) and gives
// each row its service's counts and its instance's line. etcd is nil
// without one; a failed read of it is said on stderr and leaves its
// columns unknown.
func statusGlances(ctx context.Context, e *env, hf *historyFlags, c *fleet.Client, etcd *clientv3.Client, prefix string, rows []statusRow) ([]Glance, error) {
	fl, err := fleetApps(ctx, c)
	if err != nil {
		return nil, err
	}
	var reg map[string]map[string]*regInstance
	if etcd != nil {
		rctx, cancel := context.WithTimeout(ctx, hf.timeout())
		reg, err = readRegistry(rctx, etcd, prefix)
		cancel()
		if err != nil {
			fmt.Fprintf(e.stderr, "registrations not shown: %v (is etcd reachable at %s?)\n", err, hf.where())
			reg = nil
		}
	}
	var services []string
	for _, r := range rows {
		if svc, _, ok := sidekickOf(r.Unit); ok && fl[svc] != nil {
			services = append(services, svc)
		}
	}
	if len(services) == 0 {
		return nil, nil
	}
	gs := glances(services, fl, reg, time.Now())
	for i := range rows {
		if svc, inst, ok := sidekickOf(rows[i].Unit); ok {
			rows[i].Summary, rows[i].Glance = rowGlance(gs, svc, inst)
		}
	}
	return gs, nil
}

// statusRow is one unit as units status lists it.
type statusRow struct {
	Unit     string           `json:"unit"`
	Desired  string           `json:"desiredState"`
	Current  string           `json:"currentState"`
	Machine  string           `json:"machineID,omitempty"`
	IP       string           `json:"ip,omitempty"`
	Hash     string           `json:"hash"`
	Sidekick *registry.Status `json:"sidekick,omitempty"`
	// Summary is the row's service at a glance (counts and versions),
	// Glance its instance's line.
	Summary *Glance         `json:"summary,omitempty"`
	Glance  *InstanceGlance `json:"glance,omitempty"`
}

// statusRows reads the named units (all without names) from fleet.
func statusRows(ctx context.Context, c *fleet.Client, names []string) ([]statusRow, error) {
	var us []fleet.Unit
	var err error
	if len(names) == 0 {
		if us, err = c.Units(ctx); err != nil {
			return nil, err
		}
	}
	for _, a := range names {
		u, err := c.Unit(ctx, a)
		if err != nil {
			return nil, err
		}
		us = append(us, *u)
	}
	ip, err := machineIPs(ctx, c)
	if err != nil {
		return nil, err
	}
	var rows []statusRow
	for _, u := range us {
		rows = append(rows, statusRow{Unit: u.Name, Desired: u.DesiredState, Current: u.CurrentState, Machine: u.MachineID, IP: ip[u.MachineID], Hash: u.File().Hash()[:10]})
	}
	return rows, nil
}

// addSidekicks fills each instance row's sidekick status from etcd (nil:
// none configured); false when there is none or it could not be read
// (said on stderr).
func addSidekicks(ctx context.Context, e *env, hf *historyFlags, cli *clientv3.Client, prefix string, rows []statusRow) bool {
	if cli == nil {
		return false
	}
	var services []string
	for _, r := range rows {
		if svc, _, ok := sidekickOf(r.Unit); ok {
			services = append(services, svc)
		}
	}
	rctx, cancel := context.WithTimeout(ctx, hf.timeout())
	defer cancel()
	sts, err := sidekickStatuses(rctx, cli, prefix, services)
	if err != nil {
		fmt.Fprintf(e.stderr, "sidekick status not shown: %v (is etcd reachable at %s?)\n", err, hf.where())
		return false
	}
	for i := range rows {
		if _, inst, ok := sidekickOf(rows[i].Unit); ok {
			if st, ok := sts[inst]; ok {
				rows[i].Sidekick = &st
			}
		}
	}
	return true
}

// checkUnitNames refuses a unit name fleet would refuse (exit 2).
func checkUnitNames(names []string) error {
	for _, n := range names {
		if err := units.ValidateName(n); err != nil {
			return exitcode.Usage(err)
		}
	}
	return nil
}

// machineColumn is fleetctl's MACHINE column: the ID's first 8 characters
// and the machine's IP ("2e7d5d54.../10.0.0.2"), "-" when unscheduled or
// global.
func machineColumn(id, ip string) string {
	if id == "" {
		return "-"
	}
	if ip == "" {
		return shortID(id)
	}
	return shortID(id) + "/" + ip
}

// machineIPs maps each fleet machine's ID to its IP.
func machineIPs(ctx context.Context, c *fleet.Client) (map[string]string, error) {
	ms, err := c.Machines(ctx)
	if err != nil {
		return nil, err
	}
	ip := map[string]string{}
	for _, m := range ms {
		ip[m.ID] = m.PrimaryIP
	}
	return ip, nil
}
