// Command bench runs every benchmark of the project (`make bench`), prints
// one table of figure, target (design §8), measured value and pass/fail,
// and writes it to bench/results.json. Each benchmark is a `go test
// -bench` in the package it measures; loads are bounded in count and time
// and stay on loopback and the project's own containers.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// run is one `go test -bench` invocation.
type run struct {
	pkg       string
	bench     string
	benchtime string   // default 1x
	testArgs  []string // passed to the test binary after -args
}

// Row is one line of the table.
type Row struct {
	Figure   string  `json:"figure"`
	Target   string  `json:"target"`
	Measured string  `json:"measured"`
	Value    float64 `json:"value"`
	Unit     string  `json:"unit"`
	// Pass is "pass", "fail" or "info" (no target: a comparison).
	Pass string `json:"pass"`
}

// Results is bench/results.json.
type Results struct {
	Date    time.Time          `json:"date"`
	Machine string             `json:"machine"`
	Rows    []Row              `json:"rows"`
	Raw     map[string]float64 `json:"raw"`
	Errors  []string           `json:"errors,omitempty"`
}

var benchLine = regexp.MustCompile(`^(Benchmark\S+?)(-\d+)?\s+\d+\s+(.*)$`)

// parse reads "BenchmarkX-2  1  123 ns/op  4.5 p50-ms ..." lines into
// name/unit -> value.
func parse(out []byte, into map[string]float64) {
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		m := benchLine.FindStringSubmatch(strings.TrimSpace(sc.Text()))
		if m == nil {
			continue
		}
		f := strings.Fields(m[3])
		for i := 0; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err == nil {
				into[m[1]+"/"+f[i+1]] = v
			}
		}
	}
}

func main() {
	churn := flag.Duration("churn", 30*time.Second, "how long the churn benchmark changes instances under load")
	quick := flag.Bool("quick", false, "skip the long runs (churn, default-TTL expiry)")
	out := flag.String("out", filepath.Join("bench", "results.json"), "where to write the results")
	cluster := flag.Bool("cluster", os.Getenv("DEPLOYCTL_TOOLS") != "", "run the plain and TLS stories on local clusters (make bench sets DEPLOYCTL_BIN, DEPLOYCTL_TOOLS and the Pulumi CLI and plugins)")
	clusterReport := flag.String("cluster-report", "", "read the stories' figures from this report (DEPLOYCTL_E2E_REPORT's format, e.g. bench/out/cluster.json of an earlier run) instead of running them")
	readme := flag.Bool("readme", false, "only rewrite README.md's modes table from the results file (-out), run nothing")
	flag.Parse()
	if *readme {
		b, err := os.ReadFile(*out)
		var res Results
		if err == nil {
			err = json.Unmarshal(b, &res)
		}
		if err == nil {
			err = writeReadme("README.md", res)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}

	runs := []run{
		{"./registrar/cli/", "^(BenchmarkDockerStopToWithdraw|BenchmarkDockerKillToWithdraw|BenchmarkKillToExpire)$", "", nil},
		{"./registrar/nginx/", "^(BenchmarkEventToServing|BenchmarkRenderValidate10000|BenchmarkBurstReloads|BenchmarkSeedBurstReloads|BenchmarkSustainedChurn)$", "", nil},
		{"./registrar/nginx/", "^(BenchmarkDynamicVsReload|BenchmarkDynamicBurst|BenchmarkDynamicTenThousand)$", "", nil},
		{"./registrar/nginx/", "^BenchmarkDynamicBusy$", "", nil},
		{"./units/rollout/", "^BenchmarkSubmit100$", "5x", nil},
		{"./units/generate/", "^BenchmarkRender100Services$", "5x", nil},
		{"./units/rollout/", "^(BenchmarkRollingReplace|BenchmarkFirstSubmitStart)$", "", nil},
	}
	if !*quick {
		runs = append(runs,
			run{"./registrar/nginx/", "^BenchmarkChurn$", "", []string{"-churn.duration=" + churn.String()}},
			run{"./registrar/nginx/", "^BenchmarkChurnDynamic$", "", []string{"-churn.duration=" + churn.String()}},
			run{"./registrar/cli/", "^BenchmarkKillToExpireDefaults$", "", nil},
		)
	}
	res := Results{Date: time.Now().UTC(), Raw: map[string]float64{}}
	if b, err := exec.Command("uname", "-srm").Output(); err == nil {
		res.Machine = strings.TrimSpace(string(b))
	}
	// The benchmarks take about 10 minutes, the two stories on local
	// clusters about 35.
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Minute)
	defer cancel()
	for i, r := range runs {
		if i > 0 {
			// Let the previous run's containers and processes wind down so
			// they do not load the next measurement.
			time.Sleep(3 * time.Second)
		}
		bt := r.benchtime
		if bt == "" {
			bt = "1x"
		}
		args := []string{"test", "-run", "^$", "-bench", r.bench, "-benchtime=" + bt, "-count=1", "-timeout=8m", r.pkg}
		if len(r.testArgs) > 0 {
			args = append(append(args, "-args"), r.testArgs...)
		}
		fmt.Fprintf(os.Stderr, "bench: go %s\n", strings.Join(args, " "))
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Stderr = os.Stderr
		b, err := cmd.Output()
		os.Stderr.Write(b)
		if err != nil {
			res.Errors = append(res.Errors, fmt.Sprintf("%s %s: %v", r.pkg, r.bench, err))
		}
		parse(b, res.Raw)
	}
	switch {
	case *clusterReport != "":
		if err := readStories(*clusterReport, res.Raw); err != nil {
			res.Errors = append(res.Errors, err.Error())
		}
	case *cluster:
		if err := clusterStory(ctx, res.Raw); err != nil {
			res.Errors = append(res.Errors, err.Error())
		}
	}
	res.Rows = rows(res.Raw)
	print(res)
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err == nil {
		b, _ := json.MarshalIndent(res, "", "  ")
		if err := os.WriteFile(*out, append(b, '\n'), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
		}
	}
	if len(res.Errors) == 0 {
		if err := writeReadme("README.md", res); err != nil {
			fmt.Fprintln(os.Stderr, "bench: README.md:", err)
		}
	}
	if len(res.Errors) > 0 {
		os.Exit(1)
	}
}

// table collects the rows of the results table.
type table struct {
	raw map[string]float64
	rs  []Row
}

func (t *table) get(k string) (float64, bool) { v, ok := t.raw[k]; return v, ok }

// add appends a row; pass decides it, or nil for an informational row.
func (t *table) add(fig, target, unit string, v float64, ok bool, pass func(float64) bool) {
	r := Row{Figure: fig, Target: target, Unit: unit, Value: v, Pass: "info"}
	if !ok {
		r.Measured, r.Pass = "not measured", "fail"
	} else {
		r.Measured = fmt.Sprintf("%.4g %s", v, unit)
		if pass != nil {
			r.Pass = map[bool]string{true: "pass", false: "fail"}[pass(v)]
		}
	}
	t.rs = append(t.rs, r)
}

func rows(raw map[string]float64) []Row {
	t := &table{raw: raw}
	t.registrarRows()
	t.reloadRows()
	t.dynamicRows()
	t.unitsRows()
	t.clusterRows()
	return t.rs
}

// clusterStory runs the e2e plain and TLS stories (make e2e's) on local
// clusters, each provisioned by pulumi up of the project's program, and
// reads their figures into raw as "cluster/<figure>" and "tls/<figure>".
func clusterStory(ctx context.Context, raw map[string]float64) error {
	// Absolute: go test runs the story in the package's directory.
	report, err := filepath.Abs(filepath.Join("bench", "out", "cluster.json"))
	if err != nil {
		return err
	}
	os.Remove(report)
	cmd := exec.CommandContext(ctx, "go", "test", "-tags", "e2e", "-count=1", "-timeout=60m", "-run", "^TestE2E(Plain|TLS)$", "./localcluster/")
	cmd.Env = append(os.Environ(), "DEPLOYCTL_E2E_REPORT="+report)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	fmt.Fprintln(os.Stderr, "bench: the plain and TLS stories on local clusters (localcluster, -tags e2e)")
	runErr := cmd.Run()
	// A story that failed a case still measured the others: read them.
	if err := readStories(report, raw); err != nil {
		return errors.Join(runErr, err)
	}
	if runErr != nil {
		return fmt.Errorf("local cluster story: %w", runErr)
	}
	return nil
}

// readStories reads a stories' report into raw as "cluster/<figure>" (the
// plain story) and "tls/<figure>".
func readStories(report string, raw map[string]float64) error {
	b, err := os.ReadFile(report)
	if err != nil {
		return err
	}
	var all map[string]map[string]float64
	if err := json.Unmarshal(b, &all); err != nil {
		return fmt.Errorf("%s: %w", report, err)
	}
	for k, v := range all["e2e-plain"] {
		raw["cluster/"+k] = v
	}
	for k, v := range all["e2e-tls"] {
		raw["tls/"+k] = v
	}
	return nil
}

// clusterRows: the story on a local cluster (5 nodes, one edge; real
// systemd, fleetd, flannel, etcd 3.5), clocks started at the user's action.
func (t *table) clusterRows() {
	const upKey = "new stack: pulumi up to every member healthy, "
	if v, ok := t.get("cluster/" + upKey + "cold: node image built (s)"); ok {
		t.add("pulumi up of a new 5-node stack (plain) → every member healthy, fleet lists all; cold (debootstrap + images)", "info", "s", v, ok, nil)
	}
	if v, ok := t.get("cluster/" + upKey + "images cached (s)"); ok {
		t.add("pulumi up of a new 5-node stack (plain) → every member healthy, fleet lists all; images cached", "info", "s", v, ok, nil)
	}
	if _, ok := t.get("cluster/submit to all instances answering (s)"); !ok {
		if _, any := t.get("cluster/" + upKey + "images cached (s)"); !any {
			return // not run (-cluster=false)
		}
	}
	t.pulumiRows()
	v, ok := t.get("cluster/submit to all instances answering (s)")
	t.add("units submit --start → LB answering from all 4 instances", "info", "s", v, ok, nil)
	v, ok = t.get("cluster/instance death to out of etcd (ms)")
	t.add("instance container killed on its node → out of etcd (the LB follows)", "< 1 s", "ms", v, ok, func(x float64) bool { return x < 1000 })
	v, ok = t.get("cluster/instance death to back in the LB (s)")
	t.add("  … restarted by systemd and back in the LB", "info", "s", v, ok, nil)
	v, ok = t.get("cluster/rolls finished under load")
	t.add("rolls back and forth under steady load that finished (of 20)", "20", "rolls", v, ok, func(x float64) bool { return x == 20 })
	v, ok = t.get("cluster/roll of 4 instances under load (s)")
	t.add("  mean roll of 4 instances to a new version (2 s readiness)", "info", "s", v, ok, nil)
	v, ok = t.get("cluster/slowest roll of 4 instances under load (s)")
	t.add("  slowest roll", "info", "s", v, ok, nil)
	v, ok = t.get("cluster/failed requests during the roll")
	t.add("  failed requests through the LB during the rolls", "0", "requests", v, ok, func(x float64) bool { return x == 0 })
	v, ok = t.get("cluster/node death to full capacity (s)")
	t.add("worker node killed → all 4 instances answering again (fleet moves)", "info", "s", v, ok, nil)
	v, ok = t.get("cluster/nginx SIGKILL to serving all (s)")
	t.add("LB's nginx SIGKILLed → serving all 4 again", "info", "s", v, ok, nil)
	v, ok = t.get("cluster/global LB roll, mode switch on every machine (s)")
	t.add("global LB (one per machine): a mode switch rolled over every machine", "info", "s", v, ok, nil)
	v, ok = t.get("cluster/global LB roll: most machines down at once")
	t.add("  most machines' LBs down at once (probed every 100 ms)", "≤ 1", "machines", v, ok, func(x float64) bool { return x <= 1 })
}

// pulumiRows: the TLS story's cluster operations, each a pulumi up (or
// destroy) of the project's program against the DigitalOcean stand-in.
func (t *table) pulumiRows() {
	v, ok := t.get("tls/new stack: pulumi up to every member healthy, images cached (s)")
	t.add("pulumi up of a new 3-node TLS stack → every member healthy", "info", "s", v, ok, nil)
	v, ok = t.get("tls/grow 3 to 5 nodes: pulumi up to every member healthy (s)")
	t.add("  nodeCount 3 → 5 (members join one at a time)", "info", "s", v, ok, nil)
	v, ok = t.get("tls/shrink 5 to 3 nodes: pulumi up (s)")
	t.add("  nodeCount 5 → 3 (each member removed before its droplet)", "info", "s", v, ok, nil)
	v, ok = t.get("tls/CA rotation under load (s)")
	t.add("  pkiGeneration + 1 under steady load (3 passes, node by node)", "info", "s", v, ok, nil)
	v, ok = t.get("tls/CA rotation: failed requests")
	t.add("    failed requests through the LB during the rotation", "0", "requests", v, ok, func(x float64) bool { return x == 0 })
	v, ok = t.get("tls/cluster down: pulumi destroy, then the network and state (s)")
	t.add("  pulumi destroy of the 3-node stack, then the rest", "info", "s", v, ok, nil)
}

// registrarRows: the sidekick's figures: Docker events, lease expiry, memory.
func (t *table) registrarRows() {
	v, ok := t.get("BenchmarkDockerStopToWithdraw/p50-ms")
	t.add("docker stop → key gone (p50, 20 runs)", "< 1 s", "ms", v, ok, func(x float64) bool { return x < 1000 })
	v, ok = t.get("BenchmarkDockerStopToWithdraw/p99-ms")
	t.add("docker stop → key gone (p99)", "< 1 s", "ms", v, ok, func(x float64) bool { return x < 1000 })
	v, ok = t.get("BenchmarkDockerKillToWithdraw/p50-ms")
	t.add("docker kill → key gone (p50, 20 runs)", "< 1 s", "ms", v, ok, func(x float64) bool { return x < 1000 })
	v, ok = t.get("BenchmarkDockerKillToWithdraw/p99-ms")
	t.add("docker kill → key gone (p99)", "< 1 s", "ms", v, ok, func(x float64) bool { return x < 1000 })
	v, ok = t.get("BenchmarkKillToExpire/max-ms")
	t.add("registrar SIGKILL → key gone (TTL 2s, max of 3)", "≤ TTL (+1s expiry tick)", "ms", v, ok, func(x float64) bool { return x <= 3000 })
	if v, ok := t.get("BenchmarkKillToExpireDefaults/registrar-s"); ok {
		t.add("registrar SIGKILL → key gone (default TTL 15s)", "≤ 15 s (+1s)", "s", v, ok, func(x float64) bool { return x <= 16 })
		s, sok := t.get("BenchmarkKillToExpireDefaults/seed-s")
		t.add("  seed loop killed → key gone (TTL 60s/45s refresh, worst case)", "comparison", "s", s, sok, nil)
	}
	v, ok = t.get("BenchmarkDockerStopToWithdraw/rss-MiB")
	t.add("registrar RSS while announcing (container mode)", "< 20 MiB", "MiB", v, ok, func(x float64) bool { return x < 20 })
}

// reloadRows: registrar nginx in reload mode.
func (t *table) reloadRows() {
	floor, fok := t.get("BenchmarkEventToServing/floor-p50-ms")
	t.add("nginx floor: write+fsync+rename, nginx -t, reload, first new response (p50)", "reference", "ms", floor, fok, nil)
	v, ok := t.get("BenchmarkEventToServing/p50-ms")
	t.add("put issued → nginx serving it, isolated changes (p50)", "info", "ms", v, ok, nil)
	v, ok = t.get("BenchmarkEventToServing/x-floor")
	t.add("  … as a multiple of the floor", "≤ 1.2×", "×", v, ok, func(x float64) bool { return x <= 1.2 })
	v, ok = t.get("BenchmarkEventToServing/p99-ms")
	t.add("put issued → nginx serving it (p99)", "< 100 ms", "ms", v, ok, func(x float64) bool { return x < 100 })
	v, ok = t.get("BenchmarkEventToServing/p50-from-commit-ms")
	t.add("  from etcd's commit instead, p50", "info", "ms", v, ok, nil)
	v, ok = t.get("BenchmarkSustainedChurn/p50-ms")
	t.add("reload mode, a change every 250 ms: put → serving (p50)", "info (the reload interval's trade-off)", "ms", v, ok, nil)
	v, ok = t.get("BenchmarkSustainedChurn/p99-ms")
	t.add("  same, p99", "info", "ms", v, ok, nil)
	v, ok = t.get("BenchmarkBurstReloads/reloads")
	t.add("100 changes of the rendered upstream in 1 s → reloads (final set exact)", "≤ 3", "reloads", v, ok, func(x float64) bool { return x <= 3 })
	v, ok = t.get("BenchmarkSeedBurstReloads/reloads")
	t.add("  seed: a reload on every change, same burst", "comparison", "reloads", v, ok, nil)
	v, ok = t.get("BenchmarkRenderValidate10000/ns/op")
	t.add("render 10,000 instances (parse, sort, render)", "< 50 ms", "ms", v/1e6, ok, func(x float64) bool { return x < 50 })
	v, ok = t.get("BenchmarkRenderValidate10000/nginx-t-ms")
	t.add("  one nginx -t of the 10,000-server upstream", "one run", "ms", v, ok, nil)
	t.churnRows("BenchmarkChurn", "failed requests during churn", "  answers from instances not in nginx's upstream then")
}

// dynamicRows: registrar nginx in dynamic mode, beside the reload floor
// measured in the same run on an nginx alike but for what it serves.
func (t *table) dynamicRows() {
	dfloor, dfok := t.get("BenchmarkDynamicVsReload/floor-p50-ms")
	t.add("dynamic mode vs reload: reload floor (p50)", "reference", "ms", dfloor, dfok, nil)
	v, ok := t.get("BenchmarkDynamicVsReload/reload-p50-ms")
	t.add("  reload mode, put → serving, changes 1.3 s apart (p50)", "info", "ms", v, ok, nil)
	v, ok = t.get("BenchmarkDynamicVsReload/dyn-p50-ms")
	t.add("  dynamic mode, put → serving, changes 1.3 s apart (p50)", "info", "ms", v, ok, nil)
	v, ok = t.get("BenchmarkDynamicVsReload/dyn-x-floor")
	t.add("  … as a multiple of the reload floor", "≤ 0.2×", "×", v, ok, func(x float64) bool { return x <= 0.2 })
	v, ok = t.get("BenchmarkDynamicVsReload/dyn-p99-ms")
	t.add("  dynamic mode, changes 1.3 s apart (p99)", "< 20 ms", "ms", v, ok, func(x float64) bool { return x < 20 })
	v, ok = t.get("BenchmarkDynamicVsReload/dyn-250-p50-ms")
	t.add("  dynamic mode, a change every 250 ms (p50)", "≤ 0.2× floor", "ms", v, ok, func(x float64) bool { return dfok && x <= 0.2*dfloor })
	v, ok = t.get("BenchmarkDynamicVsReload/dyn-250-p99-ms")
	t.add("  dynamic mode, a change every 250 ms (p99)", "< 20 ms", "ms", v, ok, func(x float64) bool { return x < 20 })
	t.afterReloadRow("BenchmarkDynamicVsReload")
	v, ok = t.get("BenchmarkDynamicVsReload/dyn-reloads")
	t.add("  reloads in dynamic mode during those changes", "0", "reloads", v, ok, func(x float64) bool { return x == 0 })
	v, ok = t.get("BenchmarkDynamicBurst/reloads")
	t.add("dynamic mode: 100 changes in 1 s → reloads (final set served exactly)", "0", "reloads", v, ok, func(x float64) bool { return x == 0 })
	v, ok = t.get("BenchmarkDynamicTenThousand/push-10000-served-ms")
	t.add("dynamic mode: 10,000 instances pushed → served", "< 50 ms", "ms", v, ok, func(x float64) bool { return x < 50 })
	v, ok = t.get("BenchmarkDynamicTenThousand/list-10000-ms")
	t.add("  listing those 10,000 keys from etcd (apart)", "info", "ms", v, ok, nil)
	p0, _ := t.get("BenchmarkDynamicTenThousand/procs-before")
	v, ok = t.get("BenchmarkDynamicTenThousand/procs-after")
	t.add(fmt.Sprintf("dynamic mode: nginx workers after 1,000 changes (before: %.0f)", p0), "unchanged", "processes", v, ok, func(x float64) bool { return x == p0 })
	r0, _ := t.get("BenchmarkDynamicTenThousand/worker-rss-before-MiB")
	v, ok = t.get("BenchmarkDynamicTenThousand/worker-rss-after-MiB")
	t.add(fmt.Sprintf("  workers' RSS after 1,000 changes of a 10,000 list (before: %.1f MiB)", r0), "unchanged (±10%)", "MiB", v, ok, func(x float64) bool { return x <= r0*1.1 })
	v, ok = t.get("BenchmarkDynamicTenThousand/reloads-1000-changes")
	t.add("  reloads during those 1,000 changes", "0", "reloads", v, ok, func(x float64) bool { return x == 0 })
	t.churnRows("BenchmarkChurnDynamic", "dynamic mode: failed requests during churn", "  answers from an address not in the set then")
	bfloor, bfok := t.get("BenchmarkDynamicBusy/floor-p50-ms")
	t.add("dynamic mode beside two busy CPU loops: reload floor (p50)", "reference", "ms", bfloor, bfok, nil)
	v, ok = t.get("BenchmarkDynamicBusy/dyn-x-floor")
	t.add("  put → serving, changes 1.3 s apart, p50 as a multiple of it", "≤ 0.2×", "×", v, ok, func(x float64) bool { return x <= 0.2 })
	v, ok = t.get("BenchmarkDynamicBusy/dyn-p99-ms")
	t.add("  same, p99", "< 20 ms", "ms", v, ok, func(x float64) bool { return x < 20 })
	// Where the time goes.
	for _, part := range []struct{ key, what string }{
		{"etcd", "etcd: put → the follower's watch event"},
		{"registrar", "registrar: event → nginx confirmed the push"},
		{"serve", "nginx and the client: confirmed → answered by the new instance"},
	} {
		p50, ok50 := t.get("BenchmarkDynamicBusy/dyn-" + part.key + "-p50-ms")
		p99, ok99 := t.get("BenchmarkDynamicBusy/dyn-" + part.key + "-p99-ms")
		t.add(fmt.Sprintf("    of which %s (p50; p99 %.1f ms)", part.what, p99), "info", "ms", p50, ok50 && ok99, nil)
	}
	v, ok = t.get("BenchmarkDynamicBusy/dyn-250-p50-ms")
	t.add("  a change every 250 ms (p50)", "≤ 0.2× floor", "ms", v, ok, func(x float64) bool { return bfok && x <= 0.2*bfloor })
	v, ok = t.get("BenchmarkDynamicBusy/dyn-250-p99-ms")
	t.add("  a change every 250 ms (p99)", "< 20 ms", "ms", v, ok, func(x float64) bool { return x < 20 })
	p99, ok99 := t.get("BenchmarkDynamicBusy/dyn-250-registrar-p99-ms")
	v, ok = t.get("BenchmarkDynamicBusy/dyn-250-registrar-p50-ms")
	t.add(fmt.Sprintf("    of which the registrar: event → nginx confirmed (p50; p99 %.1f ms)", p99), "info", "ms", v, ok && ok99, nil)
	t.afterReloadRow("BenchmarkDynamicBusy")
}

// afterReloadRow: dynamic mode's first change after its nginx reloaded
// (new workers), which the rows above do not include.
func (t *table) afterReloadRow(bench string) {
	p99, ok99 := t.get(bench + "/dyn-after-reload-p99-ms")
	reg, okr := t.get(bench + "/dyn-after-reload-registrar-p50-ms")
	v, ok := t.get(bench + "/dyn-after-reload-p50-ms")
	t.add(fmt.Sprintf("  the first change after a reload of its nginx (p50; p99 %.1f ms; registrar's share p50 %.1f ms)", p99, reg), "info", "ms", v, ok && ok99 && okr, nil)
}

// churnRows: a churn run's failed requests and wrong answers (both 0),
// when the long runs ran.
func (t *table) churnRows(bench, failed, wrong string) {
	r, ok := t.get(bench + "/requests")
	if !ok {
		return
	}
	f, _ := t.get(bench + "/failed")
	w, _ := t.get(bench + "/wrong-instance")
	c, _ := t.get(bench + "/changes")
	zero := func(x float64) bool { return x == 0 }
	t.add(fmt.Sprintf("%s (%.0f requests, %.0f changes)", failed, r, c), "0", "failed", f, true, zero)
	t.add(wrong, "0", "answers", w, true, zero)
}

// unitsRows: units submit and rendering.
func (t *table) unitsRows() {
	v, ok := t.get("BenchmarkSubmit100/ns/op")
	t.add("units submit of 100 units to the fleet API (loopback)", "< 2 s", "ms", v/1e6, ok, func(x float64) bool { return x < 2000 })
	v, ok = t.get("BenchmarkRender100Services/ns/op")
	t.add("render the units of 100 services", "info", "ms", v/1e6, ok, nil)
	v, ok = t.get("BenchmarkRollingReplace/min-active")
	t.add("rolling replace of 4 (3 s stale, 500 ms activation): fewest active at any poll", "≥ 3 (4 − max-unavailable)", "instances", v, ok, func(x float64) bool { return x >= 3 })
	v, ok = t.get("BenchmarkRollingReplace/converge-s")
	t.add("  time to converge (every instance on the new hash, active)", "converges", "s", v, ok, nil)
	v, ok = t.get("BenchmarkFirstSubmitStart/submit-s")
	t.add("first submit --start of the example, 1 s activation per unit", "< 5 s", "s", v, ok, func(x float64) bool { return x < 5 })
}

func print(res Results) {
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FIGURE\tTARGET\tMEASURED\tRESULT")
	for _, r := range res.Rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Figure, r.Target, r.Measured, r.Pass)
	}
	tw.Flush()
	for _, e := range res.Errors {
		fmt.Println("error:", e)
	}
}
