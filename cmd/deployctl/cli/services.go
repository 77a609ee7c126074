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

func newServicesLsCmd(e *env) *cobra.Command {
	var rf registryFlags
	ec, o := &rf.etcd, &rf.out
	cmd := &cobra.Command{
		Use:   "ls [SERVICE]",
		Short: "List registered instances with address, lease TTL left and age",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cli, service, err := rf.open(args)
			if err != nil {
				return err
			}
			prefix := rf.prefix
			defer cli.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), ec.DialTimeout+5*time.Second)
			defer cancel()
			ins, err := catalog.ListInstances(ctx, cli, prefix, service)
			if err != nil {
				return fmt.Errorf("%w (is etcd running at %s? `deployctl demo` starts one)", err, strings.Join(ec.Endpoints, ","))
			}
			return list(e, o, ins, []string{"SERVICE", "INSTANCE", "ADDRESS", "TTL LEFT", "AGE"}, func(in catalog.Instance) []string {
				ttl, age := "-", "-"
				if in.TTLLeft >= 0 {
					ttl = fmt.Sprintf("%ds", in.TTLLeft)
				}
				if in.Age > 0 {
					age = (time.Duration(in.Age) * time.Second).Round(time.Second).String()
				}
				return []string{in.Service, in.Instance, in.Address, ttl, age}
			})
		},
	}
	rf.bind(cmd)
	return cmd
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
