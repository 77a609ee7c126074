package catalog

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/deployctl/deployctl/registrar/registry"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Instance is one registration as services ls shows it.
type Instance struct {
	Service  string  `json:"service"`
	Instance string  `json:"instance"`
	Address  string  `json:"address"`
	TTLLeft  int64   `json:"ttlLeftSeconds"`
	Age      float64 `json:"ageSeconds,omitempty"`
	Lease    string  `json:"lease,omitempty"`
}

// SplitUpstream turns "someapp/upstream/someapp@1" into service and instance.
func SplitUpstream(rel string) (string, string, bool) {
	svc, rest, ok := strings.Cut(rel, "/upstream/")
	if !ok || svc == "" || rest == "" || strings.Contains(svc, "/") {
		return "", "", false
	}
	return svc, rest, true
}

func ServicePrefix(prefix, service string) string {
	if service != "" {
		return registry.UpstreamPrefix(prefix, service)
	}
	return strings.TrimSuffix(prefix, "/") + "/"
}

// ListInstances reads every registration under prefix (one service or all).
func ListInstances(ctx context.Context, cli *clientv3.Client, prefix, service string) ([]Instance, error) {
	base := strings.TrimSuffix(prefix, "/") + "/"
	resp, err := cli.Get(ctx, ServicePrefix(prefix, service), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", ServicePrefix(prefix, service), err)
	}
	metas := map[string]registry.Meta{}
	if mresp, err := cli.Get(ctx, base, clientv3.WithPrefix()); err == nil {
		for _, kv := range mresp.Kvs {
			rel := strings.TrimPrefix(string(kv.Key), base)
			if svc, inst, ok := strings.Cut(rel, "/meta/"); ok {
				var m registry.Meta
				if json.Unmarshal(kv.Value, &m) == nil {
					metas[svc+"/"+inst] = m
				}
			}
		}
	}
	var out []Instance
	leases := map[clientv3.LeaseID]int64{}
	for _, kv := range resp.Kvs {
		svc, inst, ok := SplitUpstream(strings.TrimPrefix(string(kv.Key), base))
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
