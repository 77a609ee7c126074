package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/deployctl/deployctl/internal/etcdconn"
	"github.com/deployctl/deployctl/internal/exitcode"
	"github.com/deployctl/deployctl/registrar/catalog"
	"github.com/deployctl/deployctl/registrar/registry"
	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func newServicesCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "services",
		Short: "The instances registered in etcd: list them or watch them change",
		Long: `services reads what the discovery sidekicks registered under
<prefix>/<service>/upstream/<instance> (the v3 equivalent of the talk's
etcdctl ls --recursive /services). By default it speaks to
http://127.0.0.1:2379, where the demo's etcd listens.`,
	}
	cmd.AddCommand(newServicesLsCmd(e), newServicesWatchCmd(e))
	return cmd
}

// registryFlags say where the registrations are: the registrar's etcd
// flags and key prefix.
type registryFlags struct {
	etcd   etcdconn.Config
	prefix string
	out    output
}

func (r *registryFlags) bind(cmd *cobra.Command) {
	r.etcd.BindFlags(cmd.Flags(), etcdconn.DefaultEndpoint)
	cmd.Flags().StringVar(&r.prefix, "prefix", registry.DefaultPrefix, "etcd key prefix")
	r.out.bind(cmd)
}

// open checks the flags and connects; service is the optional argument.
func (r *registryFlags) open(args []string) (cli *clientv3.Client, service string, err error) {
	if err := r.out.check(); err != nil {
		return nil, "", err
	}
	if len(args) == 1 {
		service = args[0]
	}
	if err := r.etcd.Validate(); err != nil {
		return nil, "", exitcode.Usage(err)
	}
	cli, err = r.etcd.Client()
	return cli, service, err
}

// servicesLsHelp is services ls's --help.
const servicesLsHelp = `ls lists the registered instances: each one's address, the TTL its lease
has left and how long it has been registered (from the registration record
its sidekick writes beside the key), then a summary per service.

WANTED and RUNNING need fleet: with --fleet, ls asks fleet (the --endpoint
and --tunnel flags, as units commands take them) for the app units it holds;
without, they are "-" and VERSION is the version label the sidekicks report.
` + glanceHelp

// lsRow is one registration as services ls lists it.
type lsRow struct {
	catalog.Instance
	// Summary is the row's service at a glance, Glance its instance's line.
	Summary *Glance         `json:"summary,omitempty"`
	Glance  *InstanceGlance `json:"glance,omitempty"`
}

func newServicesLsCmd(e *env) *cobra.Command {
	var rf registryFlags
	var ff fleetFlags
	var withFleet, summaryOnly bool
	ec, o := &rf.etcd, &rf.out
	cmd := &cobra.Command{
		Use:   "ls [SERVICE]",
		Short: "List registered instances with address, lease TTL left and age, and a summary per service",
		Long:  servicesLsHelp,
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cli, service, err := rf.open(args)
			if err != nil {
				return err
			}
			defer cli.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), ec.DialTimeout+5*time.Second)
			defer cancel()
			ins, err := catalog.ListInstances(ctx, cli, rf.prefix, service)
			if err != nil {
				return fmt.Errorf("%w (is etcd running at %s? `deployctl demo` starts one)", err, strings.Join(ec.Endpoints, ","))
			}
			gs, err := lsGlances(ctx, cmd.Context(), cli, rf.prefix, service, withFleet, &ff)
			if err != nil {
				return err
			}
			if summaryOnly {
				return printGlances(e, o, gs)
			}
			return printLs(e, o, ins, gs)
		},
	}
	rf.bind(cmd)
	ff.bind(cmd)
	cmd.Flags().BoolVar(&withFleet, "fleet", false, "ask fleet for the WANTED and RUNNING columns of the summary")
	cmd.Flags().BoolVar(&summaryOnly, "summary", false, "print only the summary per service")
	return cmd
}

// lsGlances summarizes service (every service when ""), from etcd (ctx
// bounds its read) and, withFleet, fleet (each request bounded by
// --request-timeout).
func lsGlances(ctx, parent context.Context, cli *clientv3.Client, prefix, service string, withFleet bool, ff *fleetFlags) ([]Glance, error) {
	reg, err := readRegistry(ctx, cli, prefix)
	if err != nil {
		return nil, err
	}
	var fl map[string]map[string]fleetInstance
	if withFleet {
		fctx, c, done, err := ff.connect(parent)
		if err != nil {
			return nil, fmt.Errorf("--fleet: %w", err)
		}
		defer done()
		if fl, err = fleetApps(fctx, c); err != nil {
			return nil, fmt.Errorf("--fleet: %w", err)
		}
	}
	var services []string
	if service != "" {
		services = []string{service}
	}
	return glances(services, fl, reg, time.Now()), nil
}

// printLs prints the registrations, each with its service's summary in
// JSON; as a table, the summary after them.
func printLs(e *env, o *output, ins []catalog.Instance, gs []Glance) error {
	rows := make([]lsRow, 0, len(ins))
	for _, in := range ins {
		r := lsRow{Instance: in}
		r.Summary, r.Glance = rowGlance(gs, in.Service, in.Instance)
		rows = append(rows, r)
	}
	err := list(e, o, rows, []string{"SERVICE", "INSTANCE", "ADDRESS", "TTL LEFT", "AGE"}, func(r lsRow) []string {
		ttl, age := "-", "-"
		if r.TTLLeft >= 0 {
			ttl = fmt.Sprintf("%ds", r.TTLLeft)
		}
		if r.Age > 0 {
			age = (time.Duration(r.Age) * time.Second).Round(time.Second).String()
		}
		return []string{r.Service, r.Instance.Instance, r.Address, ttl, age}
	})
	if err != nil || o.json() || len(gs) == 0 {
		return err
	}
	fmt.Fprintln(e.stdout)
	return table(e.stdout, glanceHeader, glanceRows(gs))
}

// Change is one event of services watch.
type Change struct {
	Time     time.Time `json:"time"`
	Op       string    `json:"op"` // added, changed, removed
	Service  string    `json:"service"`
	Instance string    `json:"instance"`
	Address  string    `json:"address,omitempty"`
}

// diff lists what changed between two snapshots of upstream keys.
func diff(old, cur map[string]string, at time.Time) []Change {
	var out []Change
	for k, v := range cur {
		svc, inst, ok := catalog.SplitUpstream(k)
		if !ok {
			continue
		}
		if ov, had := old[k]; !had {
			out = append(out, Change{at, "added", svc, inst, v})
		} else if ov != v {
			out = append(out, Change{at, "changed", svc, inst, v})
		}
	}
	for k := range old {
		if _, still := cur[k]; !still {
			if svc, inst, ok := catalog.SplitUpstream(k); ok {
				out = append(out, Change{at, "removed", svc, inst, ""})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Service+out[i].Instance < out[j].Service+out[j].Instance })
	return out
}

func newServicesWatchCmd(e *env) *cobra.Command {
	var rf registryFlags
	o := &rf.out
	cmd := &cobra.Command{
		Use:   "watch [SERVICE]",
		Short: "Stream instances as they register and leave (Ctrl-C stops)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cli, service, err := rf.open(args)
			if err != nil {
				return err
			}
			prefix := rf.prefix
			defer cli.Close()
			ctx := cmd.Context()
			base := strings.TrimSuffix(prefix, "/") + "/"
			watchPrefix := catalog.ServicePrefix(prefix, service)
			snaps := make(chan catalog.Snapshot, 1)
			done := make(chan error, 1)
			wctx, cancel := context.WithCancel(ctx)
			defer cancel()
			go func() { done <- catalog.Watch(wctx, cli, watchPrefix, snaps, e.log) }()
			var old map[string]string
			for {
				select {
				case <-ctx.Done():
					cancel()
					<-done
					return nil
				case err := <-done:
					return err
				case s := <-snaps:
					cur := map[string]string{}
					for k, v := range s.Entries {
						rel := strings.TrimPrefix(watchPrefix+k, base)
						cur[rel] = v
					}
					if old == nil {
						old = map[string]string{}
					}
					for _, c := range diff(old, cur, s.At) {
						if o.json() {
							b, _ := json.Marshal(c)
							fmt.Fprintln(e.stdout, string(b))
						} else {
							sign := map[string]string{"added": "+", "changed": "~", "removed": "-"}[c.Op]
							fmt.Fprintf(e.stdout, "%s %s %s/%s %s\n", c.Time.Format("15:04:05.000"), sign, c.Service, c.Instance, c.Address)
						}
					}
					old = cur
				}
			}
		},
	}
	rf.bind(cmd)
	return cmd
}
