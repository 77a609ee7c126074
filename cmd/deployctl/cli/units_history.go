package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/deployctl/deployctl/internal/etcdconn"
	"github.com/deployctl/deployctl/internal/exitcode"
	"github.com/deployctl/deployctl/units/fleet"
	"github.com/deployctl/deployctl/units/history"
	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// historyFlags say where history is kept: an etcd, optional for submit.
// The defaults are etcdctl's environment, which `deployctl cluster local
// env` and `deployctl cluster endpoints` export for the operator's user.
type historyFlags struct {
	etcd etcdconn.Config
}

// etcdHelp names the settings that configure history's etcd.
const etcdHelp = "--etcd-endpoints or $ETCDCTL_ENDPOINTS (with --etcd-cacert/--etcd-cert/--etcd-key or $ETCDCTL_CACERT/$ETCDCTL_CERT/$ETCDCTL_KEY for TLS; `eval \"$(deployctl cluster local env)\"` sets them)"

func (h *historyFlags) bind(cmd *cobra.Command) {
	var eps []string
	for _, env := range []string{"ETCDCTL_ENDPOINTS", "ETCD_ENDPOINTS"} {
		if v := os.Getenv(env); v != "" {
			eps = strings.Split(v, ",")
			break
		}
	}
	fl := cmd.Flags()
	fl.StringSliceVar(&h.etcd.Endpoints, "etcd-endpoints", eps, "the cluster's etcd, which keeps the history of applied specs and the sidekicks' status, comma-separated client URLs (env ETCDCTL_ENDPOINTS, else ETCD_ENDPOINTS; none: no history, and only fleet's state in a stopped roll's error and in units status)")
	fl.StringVar(&h.etcd.CACert, "etcd-cacert", os.Getenv("ETCDCTL_CACERT"), "CA bundle to verify etcd's server certificate (env ETCDCTL_CACERT)")
	fl.StringVar(&h.etcd.Cert, "etcd-cert", os.Getenv("ETCDCTL_CERT"), "client certificate for etcd, with --etcd-key (env ETCDCTL_CERT)")
	fl.StringVar(&h.etcd.Key, "etcd-key", os.Getenv("ETCDCTL_KEY"), "client key for etcd, with --etcd-cert (env ETCDCTL_KEY)")
	fl.StringVar(&h.etcd.Username, "etcd-user", "", "etcd user name (password from $ETCD_PASSWORD)")
	fl.StringVar(&h.etcd.Password, "etcd-password", "", "etcd password (prefer $ETCD_PASSWORD, which stays out of ps)")
	fl.DurationVar(&h.etcd.DialTimeout, "etcd-dial-timeout", 5*time.Second, "how long to wait for etcd")
}

// connect returns an etcd client, or nil when no endpoint is configured.
// With a fleet tunnel (dial set), etcd is reached through it, as from the
// node: a cluster's etcd listens on addresses only its nodes reach.
func (h *historyFlags) connect(dial fleet.Dialer) (*clientv3.Client, error) {
	if len(h.etcd.Endpoints) == 0 {
		return nil, nil
	}
	if err := h.etcd.Validate(); err != nil {
		return nil, exitcode.Usage(fmt.Errorf("history: %w", err))
	}
	if dial != nil {
		h.etcd.Dial = func(ctx context.Context, addr string) (net.Conn, error) { return dial(ctx, "tcp", addr) }
	}
	return h.etcd.Client()
}

// timeout bounds one request to etcd.
func (h *historyFlags) timeout() time.Duration { return h.etcd.DialTimeout + 5*time.Second }

// where names the etcd in errors.
func (h *historyFlags) where() string { return strings.Join(h.etcd.Endpoints, ",") }

// open connects for history and rollback, which need an etcd.
func (h *historyFlags) open(dial fleet.Dialer) (*clientv3.Client, error) {
	cli, err := h.connect(dial)
	if err == nil && cli == nil {
		err = exitcode.Usage(fmt.Errorf("history is kept in etcd and no etcd is configured: set %s", etcdHelp))
	}
	return cli, err
}

// recorder writes the outcome of one roll into history.
type recorder struct {
	e       *env
	cli     *clientv3.Client
	timeout time.Duration
	entry   history.Entry
	// newest is the newest entry before this roll (nil: none).
	newest *history.Entry
}

// recorder reads the history entry will join, which checks etcd answers
// before anything is applied. Without an etcd configured it says once that
// history is not recorded and returns nil (a nil recorder records nothing).
func (h *historyFlags) recorder(ctx context.Context, e *env, dial fleet.Dialer, entry history.Entry) (*recorder, error) {
	cli, err := h.connect(dial)
	if err != nil {
		return nil, err
	}
	if cli == nil {
		fmt.Fprintf(e.stderr, "history is not recorded: no etcd configured (set %s)\n", etcdHelp)
		return nil, nil
	}
	r := &recorder{e: e, cli: cli, timeout: h.timeout(), entry: entry}
	r.entry.Hash, r.entry.Version = history.Hash([]byte(entry.Spec)), Version
	hctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	entries, err := history.List(hctx, cli, entry.Name)
	if err != nil {
		cli.Close()
		return nil, fmt.Errorf("history in etcd at %s: %w (fix %s, or give --etcd-endpoints= to submit without history)", h.where(), err, etcdHelp)
	}
	if len(entries) > 0 {
		r.newest = &entries[len(entries)-1]
	}
	return r, nil
}

func (r *recorder) close() {
	if r != nil {
		r.cli.Close()
	}
}

// finish records the roll's outcome: applied when err is nil, stopped
// otherwise. A spec the newest entry already records as applied, with the
// same options, is not recorded again. A failure to record is logged: the
// roll's own outcome stands.
func (r *recorder) finish(ctx context.Context, err error) {
	if r == nil {
		return
	}
	e := r.entry
	e.Time, e.Outcome = time.Now().UTC(), history.Applied
	if err != nil {
		e.Outcome, e.Reason = history.Stopped, err.Error()
	}
	if n := r.newest; n != nil && err == nil && n.Outcome == history.Applied && n.Hash == e.Hash && n.Start == e.Start && n.Prune == e.Prune {
		fmt.Fprintf(r.e.stderr, "history: %s #%d already records this spec\n", e.Name, n.Seq)
		return
	}
	// An interrupted roll is recorded too: not bounded by the cancelled
	// context, by a deadline of its own.
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.timeout)
	defer cancel()
	seq, rerr := history.Record(hctx, r.cli, e)
	if rerr != nil {
		r.e.log.Warn("history not recorded", "history", e.Name, "outcome", e.Outcome, "err", rerr)
		return
	}
	fmt.Fprintf(r.e.stderr, "history: recorded %s #%d (%s)\n", e.Name, seq, e.Outcome)
}

// historyName is the history a command is about: NAME when given, else
// the one of the spec -f names, else the only one etcd holds.
func historyName(ctx context.Context, cli *clientv3.Client, args []string, file string) (string, error) {
	switch {
	case len(args) == 1 && file != "":
		return "", exitcode.Usage(errors.New("give a history NAME or -f deploy.yaml, not both"))
	case len(args) == 1:
		if err := history.CheckName(args[0]); err != nil {
			return "", exitcode.Usage(err)
		}
		return args[0], nil
	case file != "":
		spec, _, err := loadPlan(file)
		if err != nil {
			return "", err
		}
		return history.NameOf(spec), nil
	}
	names, err := history.Names(ctx, cli)
	if err != nil {
		return "", err
	}
	switch len(names) {
	case 0:
		return "", fmt.Errorf("etcd holds no history under %s: `deployctl units submit` records one when it has an etcd (%s)", history.Prefix, etcdHelp)
	case 1:
		return names[0], nil
	}
	return "", exitcode.Usage(fmt.Errorf("etcd holds %d histories (%s): name one, e.g. `deployctl units history %s`, or give -f deploy.yaml", len(names), strings.Join(names, ", "), names[0]))
}
