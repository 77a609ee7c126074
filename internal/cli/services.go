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
	"github.com/deployctl/deployctl/registrar"
	"github.com/deployctl/deployctl/registrar/announce"
	"github.com/deployctl/deployctl/registrar/catalog"
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

// Instance is one registration as services ls shows it.
type Instance struct {
	Service  string  `json:"service"`
	Instance string  `json:"instance"`
	Address  string  `json:"address"`
	TTLLeft  int64   `json:"ttlLeftSeconds"`
	Age      float64 `json:"ageSeconds,omitempty"`
	Lease    string  `json:"lease,omitempty"`
}

// split turns "someapp/upstream/someapp@1" into service and instance.
func split(rel string) (string, string, bool) {
	svc, rest, ok := strings.Cut(rel, "/upstream/")
	if !ok || svc == "" || rest == "" || strings.Contains(svc, "/") {
		return "", "", false
	}
	return svc, rest, true
}

func servicePrefix(prefix, service string) string {
	if service != "" {
		return registrar.UpstreamPrefix(prefix, service)
	}
	return strings.TrimSuffix(prefix, "/") + "/"
}

// ListInstances reads every registration under prefix (one service or all).
func ListInstances(ctx context.Context, cli *clientv3.Client, prefix, service string) ([]Instance, error) {
	base := strings.TrimSuffix(prefix, "/") + "/"
	resp, err := cli.Get(ctx, servicePrefix(prefix, service), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", servicePrefix(prefix, service), err)
	}
	metas := map[string]announce.Meta{}
	if mresp, err := cli.Get(ctx, base, clientv3.WithPrefix()); err == nil {
		for _, kv := range mresp.Kvs {
			rel := strings.TrimPrefix(string(kv.Key), base)
			if svc, inst, ok := strings.Cut(rel, "/meta/"); ok {
				var m announce.Meta
				if json.Unmarshal(kv.Value, &m) == nil {
					metas[svc+"/"+inst] = m
				}
			}
		}
	}
	var out []Instance
	leases := map[clientv3.LeaseID]int64{}
	for _, kv := range resp.Kvs {
		svc, inst, ok := split(strings.TrimPrefix(string(kv.Key), base))
		if !ok {
			continue
		}
		in := Instance{Service: svc, Instance: inst, Address: string(kv.Value), TTLLeft: -1}
		if kv.Lease != 0 {
			id := clientv3.LeaseID(kv.Lease)
			in.Lease = fmt.Sprintf("%x", kv.Lease)
			ttl, ok := leases[id]
			if !ok {
				if r, err := cli.TimeToLive(ctx, id); err == nil {
					ttl = r.TTL
				}
				leases[id] = ttl
			}
			in.TTLLeft = ttl
		}
		if m, ok := metas[svc+"/"+inst]; ok && !m.Since.IsZero() {
			in.Age = time.Since(m.Since).Seconds()
		}
		out = append(out, in)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Service != out[j].Service {
			return out[i].Service < out[j].Service
		}
		return out[i].Instance < out[j].Instance
	})
	return out, nil
}

func etcdClient(c *etcdconn.Config) (*clientv3.Client, error) {
	if err := c.Validate(); err != nil {
		return nil, exitcode.Usage(err)
	}
	return c.Client()
}

func newServicesLsCmd(e *env) *cobra.Command {
	var ec etcdconn.Config
	var prefix string
	var o output
	cmd := &cobra.Command{
		Use:   "ls [SERVICE]",
		Short: "List registered instances with address, lease TTL left and age",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.check(); err != nil {
				return err
			}
			service := ""
			if len(args) == 1 {
				service = args[0]
			}
			cli, err := etcdClient(&ec)
			if err != nil {
				return err
			}
			defer cli.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), ec.DialTimeout+5*time.Second)
			defer cancel()
			ins, err := ListInstances(ctx, cli, prefix, service)
			if err != nil {
				return fmt.Errorf("%w (is etcd running at %s? `deployctl demo` starts one)", err, strings.Join(ec.Endpoints, ","))
			}
			if o.json() {
				if ins == nil {
					ins = []Instance{}
				}
				return writeJSON(e.stdout, ins)
			}
			var rows [][]string
			for _, in := range ins {
				ttl, age := "-", "-"
				if in.TTLLeft >= 0 {
					ttl = fmt.Sprintf("%ds", in.TTLLeft)
				}
				if in.Age > 0 {
					age = (time.Duration(in.Age) * time.Second).Round(time.Second).String()
				}
				rows = append(rows, []string{in.Service, in.Instance, in.Address, ttl, age})
			}
			return table(e.stdout, []string{"SERVICE", "INSTANCE", "ADDRESS", "TTL LEFT", "AGE"}, rows)
		},
	}
	ec.BindFlags(cmd.Flags(), etcdconn.DefaultEndpoint)
	cmd.Flags().StringVar(&prefix, "prefix", registrar.DefaultPrefix, "etcd key prefix")
	o.bind(cmd)
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
		svc, inst, ok := split(k)
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
			if svc, inst, ok := split(k); ok {
				out = append(out, Change{at, "removed", svc, inst, ""})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Service+out[i].Instance < out[j].Service+out[j].Instance })
	return out
}

func newServicesWatchCmd(e *env) *cobra.Command {
	var ec etcdconn.Config
	var prefix string
	var o output
	cmd := &cobra.Command{
		Use:   "watch [SERVICE]",
		Short: "Stream instances as they register and leave (Ctrl-C stops)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.check(); err != nil {
				return err
			}
			service := ""
			if len(args) == 1 {
				service = args[0]
			}
			cli, err := etcdClient(&ec)
			if err != nil {
				return err
			}
			defer cli.Close()
			ctx := cmd.Context()
			base := strings.TrimSuffix(prefix, "/") + "/"
			watchPrefix := servicePrefix(prefix, service)
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
	ec.BindFlags(cmd.Flags(), etcdconn.DefaultEndpoint)
	cmd.Flags().StringVar(&prefix, "prefix", registrar.DefaultPrefix, "etcd key prefix")
	o.bind(cmd)
	return cmd
}
