package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/deployctl/deployctl/internal/exitcode"
	"github.com/deployctl/deployctl/units"
	"github.com/deployctl/deployctl/units/deployspec"
	"github.com/deployctl/deployctl/units/fleet"
	"github.com/deployctl/deployctl/units/generate"
	"github.com/deployctl/deployctl/units/history"
	"github.com/deployctl/deployctl/units/rollout"
	"github.com/spf13/cobra"
)

// rollFlags are the plan and rollout settings submit and diff share.
type rollFlags struct {
	file  string
	start bool
	prune bool
	adopt bool
}

func (r *rollFlags) bind(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVarP(&r.file, "file", "f", "deploy.yaml", "deploy spec")
	fl.BoolVar(&r.start, "start", false, "launch every instance and load balancer (without it new units are submitted inactive and existing ones keep their state)")
	fl.BoolVar(&r.prune, "prune", false, "destroy units deployctl wrote for services that are no longer in the spec")
	fl.BoolVar(&r.adopt, "adopt", false, "take over units of the spec's names that deployctl did not write (no [X-Deployctl] section)")
}

func (r *rollFlags) options() rollout.Options {
	return rollout.Options{Start: r.start, Prune: r.prune, Adopt: r.adopt}
}

func printPlan(e *env, o *output, plan rollout.Plan, onlyWork bool) error {
	if o.json() {
		if plan == nil {
			plan = rollout.Plan{}
		}
		return writeJSON(e.stdout, plan)
	}
	var rows [][]string
	for _, s := range plan {
		if onlyWork && s.Action == rollout.Unchanged {
			continue
		}
		rows = append(rows, []string{s.Unit, string(s.Action), s.State, s.Reason})
	}
	if len(rows) == 0 {
		fmt.Fprintln(e.stdout, "nothing to change")
		return nil
	}
	return table(e.stdout, []string{"UNIT", "ACTION", "STATE", "WHY"}, rows)
}

func newUnitsDiffCmd(e *env) *cobra.Command {
	var rf rollFlags
	var ff fleetFlags
	var o output
	cmd := &cobra.Command{
		Use:   "diff -f deploy.yaml [--start] [--prune]",
		Short: "Show the plan submit would apply; exit 0 in sync, 2 with differences, 1 on error",
		Long: `diff reads fleet's units and computes the plan submit would apply: for every
unit the spec owns, create, replace, scale-up, scale-down, start, prune (with
--prune) or unchanged; units of removed services show as orphan without
--prune, and units of the spec's names that deployctl did not write as
conflict.

Exit status, as diff(1) and terraform plan -detailed-exitcode: 0 when fleet
already holds the spec, 2 when submit would change something (or a conflict
stops it), 1 on any error, bad flags included.`,
		Annotations: map[string]string{errorExit1: "true"},
		Args:        cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.check(); err != nil {
				return err
			}
			_, p, err := loadPlan(rf.file)
			if err != nil {
				return err
			}
			ctx, c, done, err := ff.connect(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			plan, err := rollout.Compute(ctx, c, p, rf.options())
			if err != nil {
				return err
			}
			if err := printPlan(e, &o, plan, false); err != nil {
				return err
			}
			if !plan.InSync() {
				return exitcode.With(2, nil)
			}
			return nil
		},
	}
	rf.bind(cmd)
	ff.bind(cmd)
	o.bind(cmd)
	return cmd
}

// submitHelp is units submit's --help.
const submitHelp = `submit is a reconciler: it reads fleet's units and states, prints the plan for
every unit the spec owns, then applies it and re-reads fleet until fleet
reports what the spec asks for. Running it twice changes nothing.

  create      templates and plain units fleet does not have
  replace     units whose options changed: one PUT with the new options, which
              fleet applies whole or refuses (the old unit stays then)
  scale-up    instances fleet does not have (launched with --start, else
              submitted inactive)
  scale-down  instances above the count, highest number first, sidekick first
  remove      units a service of the spec no longer generates (a load balancer
              pointed at another upstream, a dropped template and its instances)
  start       units with the right options that are not launched (--start)
  prune       units of services that left the spec (--prune)

Instances roll like a Kubernetes Deployment: at most --max-unavailable of a
service's instances are down at once, and an instance counts as updated only
when fleet reports its new unit hash active (after a replace fleet keeps
reporting the old hash for a few seconds). An instance that is not active
within --progress-deadline stops the roll: the rest stay on the old version
and submit exits 1 naming the instance and its state: with an etcd, the
reason its sidekick gives (its status key, e.g. its failing health check and
for how long) and the command that shows more (deployctl units logs).
New instances start in
parallel (--parallel at once). Only units deployctl wrote (they carry an
[X-Deployctl] section) are changed; others of the same name are a conflict
unless --adopt. Templates are always submitted inactive.

Every unit is checked with fleet's own rules before fleet is asked (a unit
line of 2048 bytes or more is refused by fleet); a spec value that breaks
one is reported as deploy.yaml:LINE: FIELD.

With an etcd (--etcd-endpoints, by default $ETCDCTL_ENDPOINTS), submit
keeps the spec in history once fleet reports the whole plan applied, or as
stopped when the roll stops: see deployctl units history and rollback.
Without one it says so and keeps none.`

func newUnitsSubmitCmd(e *env) *cobra.Command {
	var rf rollFlags
	var ff fleetFlags
	var hf historyFlags
	var o output
	var pace rollPace
	cmd := &cobra.Command{
		Use:   "submit -f deploy.yaml [--start] [--prune] [--dry-run]",
		Short: "Make fleet hold deploy.yaml: plan, then create, roll, scale and prune",
		Long:  submitHelp,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.check(); err != nil {
				return err
			}
			if err := pace.check(); err != nil {
				return err
			}
			data, spec, p, err := readPlan(rf.file)
			if err != nil {
				return err
			}
			ctx, c, done, err := ff.connect(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			job := rollJob{label: rf.file, plan: p, opts: rf.options(), dry: pace.dry, prefix: spec.Prefix}
			pace.set(&job.opts)
			if !pace.dry {
				entry := history.Entry{Name: history.NameOf(spec), File: rf.file, Spec: string(data), Start: rf.start, Prune: rf.prune}
				if job.rec, err = hf.recorder(ctx, e, ff.dial, entry); err != nil {
					return err
				}
				defer job.rec.close()
			}
			return roll(ctx, e, &o, c, job)
		},
	}
	rf.bind(cmd)
	pace.bind(cmd)
	ff.bind(cmd)
	hf.bind(cmd)
	o.bind(cmd)
	return cmd
}

// readPlan reads a spec file and its plan; data is the text as read.
func readPlan(file string) ([]byte, *deployspec.Spec, *generate.Plan, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		err = fmt.Errorf("read deploy spec: %w", err)
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil, nil, exitcode.Usage(err)
		}
		return nil, nil, nil, err
	}
	spec, p, err := parsePlan(file, data)
	return data, spec, p, err
}

// rollPace is how a roll goes: the flags submit and rollback share.
type rollPace struct {
	dry            bool
	maxUnavailable int
	parallel       int
	deadline       time.Duration
}

func (r *rollPace) bind(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.BoolVar(&r.dry, "dry-run", false, "print the plan and change nothing")
	fl.IntVar(&r.maxUnavailable, "max-unavailable", 1, "how many of a service's instances may be down at once during a roll")
	fl.DurationVar(&r.deadline, "progress-deadline", 5*time.Minute, "how long one instance may take to report its new version active before the roll stops")
	fl.IntVar(&r.parallel, "parallel", 8, "how many instances are created or started at once")
}

func (r *rollPace) check() error {
	if r.maxUnavailable < 1 {
		return exitcode.Usage(errors.New("--max-unavailable must be at least 1 (instances have fixed numbers; there is no surge)"))
	}
	if r.parallel < 1 {
		return exitcode.Usage(errors.New("--parallel must be at least 1"))
	}
	if r.deadline <= 0 {
		return exitcode.Usage(errors.New("--progress-deadline must be positive, e.g. 5m"))
	}
	return nil
}

func (r *rollPace) set(o *rollout.Options) {
	o.MaxUnavailable, o.Parallel, o.ProgressDeadline = r.maxUnavailable, r.parallel, r.deadline
}

// rollJob is one spec to make fleet hold.
type rollJob struct {
	// label names the spec in messages: its file, or its history entry.
	label string
	plan  *generate.Plan
	opts  rollout.Options
	dry   bool
	// rec records the outcome in history (nil: not recorded); its etcd
	// also tells why a roll stopped, from the sidekicks' status under prefix.
	rec    *recorder
	prefix string
}

// roll computes the plan, prints it, and (unless dry) applies it through
// the readiness-gated roll, recording the outcome in history.
func roll(ctx context.Context, e *env, o *output, c *fleet.Client, j rollJob) error {
	plan, err := rollout.Compute(ctx, c, j.plan, j.opts)
	var unsched *rollout.UnschedulableError
	if errors.As(err, &unsched) {
		return exitcode.With(2, fmt.Errorf("%s: %w", j.label, err))
	}
	if err != nil {
		return err
	}
	if j.dry || !o.json() {
		// The plan goes out before anything is applied.
		if err := printPlan(e, o, plan, true); err != nil {
			return err
		}
	}
	if j.dry {
		return nil
	}
	if cs := plan.Conflicts(); len(cs) > 0 {
		return &rollout.ConflictError{Steps: cs}
	}
	// Even with nothing to change Apply runs: it waits for instances
	// still on their way up (a submit interrupted earlier).
	begin := time.Now()
	if j.rec != nil {
		j.opts.Explain = explainer(j.rec.cli, j.prefix, j.rec.timeout)
	}
	j.opts.Progress = func(line string) {
		fmt.Fprintf(e.stderr, "[%5.1fs] %s\n", time.Since(begin).Seconds(), line)
	}
	applied, err := rollout.Execute(ctx, c, j.plan, plan, j.opts)
	if err != nil {
		j.rec.finish(ctx, err)
		return err
	}
	if o.json() {
		err = printPlan(e, o, applied, true)
	} else {
		fmt.Fprintf(e.stderr, "[%5.1fs] fleet holds %s\n", time.Since(begin).Seconds(), j.label)
	}
	j.rec.finish(ctx, nil)
	return err
}

func newUnitsDestroyCmd(e *env) *cobra.Command {
	var file string
	var ff fleetFlags
	cmd := &cobra.Command{
		Use:   "destroy (-f deploy.yaml | UNIT...)",
		Short: "Destroy the units of deploy.yaml (instances first) or the named units",
		Long: `destroy with -f removes every unit deployctl wrote for the spec's services:
their instances (whatever their number), then templates and plain units. Units
of those names that deployctl did not write are left alone. With unit names it
destroys exactly those.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if (file == "") == (len(args) == 0) {
				return exitcode.Usage(errors.New("give either -f deploy.yaml or unit names, not both"))
			}
			var p *generate.Plan
			if file != "" {
				var err error
				if _, p, err = loadPlan(file); err != nil {
					return err
				}
			}
			if err := checkUnitNames(args); err != nil {
				return err
			}
			ctx, c, done, err := ff.connect(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			names := args
			if p != nil {
				if names, err = ownedUnits(ctx, c, p); err != nil {
					return err
				}
			}
			names = instancesFirst(names)
			for i, n := range names {
				fmt.Fprintf(e.stderr, "[%d/%d] destroy %s\n", i+1, len(names), n)
				if err := c.Destroy(ctx, n); err != nil {
					return fmt.Errorf("destroy %s: %w", n, err)
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "deploy spec whose units to destroy")
	ff.bind(cmd)
	return cmd
}

// ownedUnits lists, once each, the units in fleet that deployctl wrote for
// p's services.
func ownedUnits(ctx context.Context, c *fleet.Client, p *generate.Plan) ([]string, error) {
	services := map[string]bool{}
	for _, g := range p.Groups {
		services[g.Service] = true
	}
	current, err := c.Units(ctx)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, u := range current {
		if services[generate.OwnerOf(u.File())] {
			names = append(names, u.Name)
		}
	}
	return names, nil
}

// instancesFirst orders names so instances go before templates and plain
// units, each kind sorted, duplicates dropped.
func instancesFirst(names []string) []string {
	seen := map[string]bool{}
	var inst, rest []string
	for _, n := range names {
		if seen[n] {
			continue
		}
		seen[n] = true
		if pn, err := units.ParseName(n); err == nil && pn.IsInstance() {
			inst = append(inst, n)
		} else {
			rest = append(rest, n)
		}
	}
	sort.Strings(inst)
	sort.Strings(rest)
	return append(inst, rest...)
}
