package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/deployctl/deployctl/internal/exitcode"
	"github.com/deployctl/deployctl/units/fleet"
	"github.com/deployctl/deployctl/units/history"
	"github.com/spf13/cobra"
)

// historyHelp is what units history and rollback say about history.
const historyHelp = `units submit keeps every spec it applies in etcd, under
/deployctl/history/NAME/, the newest 10: its text, SHA-256, time, deployctl
version and outcome. NAME is the spec's service names joined by '+' (e.g.
lb+someapp): a spec that adds or drops a service starts a new history. An
entry is "applied" once fleet reported the whole plan applied, "stopped"
when the roll stopped before (with the reason). etcd is the one of
--etcd-endpoints, by default $ETCDCTL_ENDPOINTS as ` + "`deployctl cluster local env`" + ` and
` + "`deployctl cluster endpoints`" + ` export it, reached through --tunnel when one is given.

Without NAME or -f, the only history etcd holds is shown.`

func newUnitsHistoryCmd(e *env) *cobra.Command {
	var hf historyFlags
	var ff fleetFlags
	var o output
	var file string
	cmd := &cobra.Command{
		Use:   "history [NAME | -f deploy.yaml]",
		Short: "List the specs submit applied (the newest 10), kept in etcd",
		Long:  historyHelp,
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.check(); err != nil {
				return err
			}
			ctx := cmd.Context()
			if ff.tunnel != "" {
				_, _, done, err := ff.connect(ctx)
				if err != nil {
					return err
				}
				defer done()
			}
			cli, err := hf.open(ff.dial)
			if err != nil {
				return err
			}
			defer cli.Close()
			hctx, cancel := context.WithTimeout(ctx, hf.timeout())
			defer cancel()
			name, err := historyName(hctx, cli, args, file)
			if err != nil {
				return err
			}
			entries, err := history.List(hctx, cli, name)
			if err != nil {
				return fmt.Errorf("%w (is etcd reachable at %s?)", err, hf.where())
			}
			return printHistory(e, &o, entries)
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "deploy spec whose history to show")
	hf.bind(cmd)
	ff.bind(cmd)
	o.bind(cmd)
	return cmd
}

// historyRow is an entry as history lists it: without the spec's text,
// whose env may hold secrets.
type historyRow struct {
	Seq        int       `json:"seq"`
	Name       string    `json:"name"`
	Time       time.Time `json:"time"`
	Outcome    string    `json:"outcome"`
	Hash       string    `json:"sha256"`
	Version    string    `json:"deployctlVersion"`
	File       string    `json:"file,omitempty"`
	Start      bool      `json:"start"`
	Prune      bool      `json:"prune"`
	RollbackOf int       `json:"rollbackOf,omitempty"`
	Reason     string    `json:"reason,omitempty"`
}

func printHistory(e *env, o *output, entries []history.Entry) error {
	rows := make([]historyRow, 0, len(entries))
	for _, h := range entries {
		rows = append(rows, historyRow{h.Seq, h.Name, h.Time, h.Outcome, h.Hash, h.Version, h.File, h.Start, h.Prune, h.RollbackOf, h.Reason})
	}
	return list(e, o, rows, []string{"#", "TIME", "OUTCOME", "SHA256", "VERSION", "FROM", "DETAIL"}, func(r historyRow) []string {
		from, detail := r.File, r.Reason
		if r.RollbackOf > 0 {
			from = fmt.Sprintf("rollback to #%d", r.RollbackOf)
		}
		if len(detail) > 100 {
			detail = detail[:100] + "... (-o json has all)"
		}
		if detail == "" {
			detail = "-"
		}
		return []string{fmt.Sprint(r.Seq), r.Time.Format(time.RFC3339), r.Outcome, r.Hash[:12], r.Version, from, detail}
	})
}

const rollbackHelp = `rollback applies a spec kept in history again, through the same
readiness-gated roll as submit (--max-unavailable, --progress-deadline),
with the --start and --prune it was applied with, and records it as a new
entry, as kubectl rollout undo does.

By default it goes back to the newest applied entry before the newest one:
after a roll that stopped, to the spec fleet last held whole; after one that
completed, to the one before it. --to N picks entry N (the # of units
history).

`

func newUnitsRollbackCmd(e *env) *cobra.Command {
	var hf historyFlags
	var ff fleetFlags
	var o output
	var pace rollPace
	var file string
	var to int
	cmd := &cobra.Command{
		Use:   "rollback [NAME | -f deploy.yaml] [--to N] [--dry-run]",
		Short: "Apply an earlier spec from history again (default: the one before the newest)",
		Long:  rollbackHelp + historyHelp,
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.check(); err != nil {
				return err
			}
			if err := pace.check(); err != nil {
				return err
			}
			if to < 0 || (to == 0 && cmd.Flags().Changed("to")) {
				return exitcode.Usage(fmt.Errorf("--to %d: give an entry number from `deployctl units history`, 1 or more", to))
			}
			ctx, c, done, err := ff.connect(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			job, err := rollbackJob(ctx, e, &hf, ff.dial, args, file, to)
			if err != nil {
				return err
			}
			defer job.rec.close()
			job.dry = pace.dry
			pace.set(&job.opts)
			return roll(ctx, e, &o, c, job)
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "deploy spec whose history to roll back (its services name the history)")
	cmd.Flags().IntVar(&to, "to", 0, "the history entry to apply (default: the newest applied one before the newest)")
	pace.bind(cmd)
	ff.bind(cmd)
	hf.bind(cmd)
	o.bind(cmd)
	return cmd
}

// rollbackJob picks the history entry to apply and makes the roll of it.
func rollbackJob(ctx context.Context, e *env, hf *historyFlags, dial fleet.Dialer, args []string, file string, to int) (rollJob, error) {
	cli, err := hf.open(dial)
	if err != nil {
		return rollJob{}, err
	}
	defer cli.Close()
	hctx, cancel := context.WithTimeout(ctx, hf.timeout())
	defer cancel()
	name, err := historyName(hctx, cli, args, file)
	if err != nil {
		return rollJob{}, err
	}
	entries, err := history.List(hctx, cli, name)
	if err != nil {
		return rollJob{}, fmt.Errorf("%w (is etcd reachable at %s?)", err, hf.where())
	}
	target, err := history.Target(name, entries, to)
	if err != nil {
		return rollJob{}, exitcode.Usage(err)
	}
	label := fmt.Sprintf("history %s #%d", name, target.Seq)
	spec, p, err := parsePlan(label, []byte(target.Spec))
	if err != nil {
		return rollJob{}, fmt.Errorf("%s no longer makes units: %w", label, err)
	}
	fmt.Fprintf(e.stderr, "rolling back to %s (%s, %s, sha256 %s)\n", label, target.Outcome, target.Time.Format(time.RFC3339), target.Hash[:12])
	entry := history.Entry{Name: name, File: target.File, Spec: target.Spec, Start: target.Start, Prune: target.Prune, RollbackOf: target.Seq}
	job := rollJob{label: label, plan: p, prefix: spec.Prefix}
	job.opts.Start, job.opts.Prune = target.Start, target.Prune
	if job.rec, err = hf.recorder(ctx, e, dial, entry); err != nil {
		return rollJob{}, err
	}
	if job.rec == nil {
		return rollJob{}, errors.New("history: no etcd") // open refused that already
	}
	return job, nil
}
