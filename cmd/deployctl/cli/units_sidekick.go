package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/deployctl/deployctl/registrar/registry"
	"github.com/deployctl/deployctl/units"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// sidekickOf maps an instance unit, the app's or its sidekick's
// (someapp@1.service, someapp-discovery@1.service), to its service and the
// instance name its sidekick publishes under (someapp, someapp@1).
func sidekickOf(unit string) (service, instance string, ok bool) {
	n, err := units.ParseName(unit)
	if err != nil || !n.IsInstance() {
		return "", "", false
	}
	service = strings.TrimSuffix(n.Prefix, "-discovery")
	return service, service + "@" + n.Instance, true
}

// sidekickStatuses reads the status every sidekick of the services
// publishes under prefix, by instance name.
func sidekickStatuses(ctx context.Context, cli *clientv3.Client, prefix string, services []string) (map[string]registry.Status, error) {
	out := map[string]registry.Status{}
	seen := map[string]bool{}
	for _, svc := range services {
		if seen[svc] {
			continue
		}
		seen[svc] = true
		p := registry.StatusPrefix(prefix, svc)
		resp, err := cli.Get(ctx, p, clientv3.WithPrefix())
		if err != nil {
			return nil, fmt.Errorf("read sidekick status under %s: %w", p, err)
		}
		for _, kv := range resp.Kvs {
			var st registry.Status
			if json.Unmarshal(kv.Value, &st) != nil {
				continue // not a sidekick's record: nothing to say
			}
			out[strings.TrimPrefix(string(kv.Key), p)] = st
		}
	}
	return out, nil
}

// explainer is a roll's Options.Explain: the reason a stuck unit's
// sidekick gives in etcd, each read bounded by timeout.
func explainer(cli *clientv3.Client, prefix string, timeout time.Duration) func(ctx context.Context, unit string) (string, string) {
	return func(ctx context.Context, unit string) (string, string) {
		svc, inst, ok := sidekickOf(unit)
		if !ok {
			return "", ""
		}
		// The roll may have ended by its context: still say why, within
		// a deadline of its own.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
		defer cancel()
		key := registry.StatusKey(prefix, svc, inst)
		resp, err := cli.Get(rctx, key)
		switch {
		case err != nil:
			return inst, fmt.Sprintf("its sidekick's status could not be read from etcd (%v)", err)
		case len(resp.Kvs) == 0:
			return inst, "its sidekick publishes no status at " + key + " (not running, or an older registrar)"
		}
		var st registry.Status
		if err := json.Unmarshal(resp.Kvs[0].Value, &st); err != nil {
			return inst, fmt.Sprintf("its sidekick's status at %s is not readable (%v)", key, err)
		}
		return inst, fmt.Sprintf("%s (%s)", st.Reason(time.Now()), st.Where())
	}
}

// sidekickColumn is units status's SIDEKICK column: the state, and for a
// failing health check its last result and for how long.
func sidekickColumn(st *registry.Status, now time.Time) string {
	switch {
	case st == nil:
		return "-"
	case st.State == registry.StateHealthFailing, st.State == registry.StateOtherVersion:
		return st.State + ": " + st.Reason(now)
	}
	return st.State
}
