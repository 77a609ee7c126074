package main

import (
	"bytes"
	"fmt"
	"os"
	"strings"
)

// README's table of the two nginx modes sits between these markers and is
// written from a run's raw figures (bench -readme), never by hand.
const (
	readmeBegin = "<!-- make bench: modes table (bench -readme writes it from bench/results.json) -->"
	readmeEnd   = "<!-- end of the modes table -->"
)

// modesTable renders the README's comparison of the floor, reload mode and
// dynamic mode from raw figures.
func modesTable(raw map[string]float64) string {
	g := func(k string) float64 { return raw[k] }
	ms := func(v float64) string {
		if v >= 100 {
			return fmt.Sprintf("%.0f ms", v)
		}
		return fmt.Sprintf("%.1f ms", v)
	}
	var b strings.Builder
	b.WriteString("| | reload floor | reload mode | dynamic mode |\n|---|---|---|---|\n")
	fmt.Fprintf(&b, "| put → serving, changes 1.3 s apart, p50 | %s | %s | %s (%.2f× the floor), p99 %s |\n",
		ms(g("BenchmarkDynamicVsReload/floor-p50-ms")), ms(g("BenchmarkDynamicVsReload/reload-p50-ms")),
		ms(g("BenchmarkDynamicVsReload/dyn-p50-ms")), g("BenchmarkDynamicVsReload/dyn-x-floor"), ms(g("BenchmarkDynamicVsReload/dyn-p99-ms")))
	fmt.Fprintf(&b, "| a change every 250 ms, p50 / p99 | – | %s / %s | %s / %s |\n",
		ms(g("BenchmarkSustainedChurn/p50-ms")), ms(g("BenchmarkSustainedChurn/p99-ms")),
		ms(g("BenchmarkDynamicVsReload/dyn-250-p50-ms")), ms(g("BenchmarkDynamicVsReload/dyn-250-p99-ms")))
	fmt.Fprintf(&b, "| 100 changes in 1 s | – | %.0f reloads | %.0f reloads, exact final set |\n",
		g("BenchmarkBurstReloads/reloads"), g("BenchmarkDynamicBurst/reloads"))
	fmt.Fprintf(&b, "| 10,000 instances | – | render %s + `nginx -t` %s + reload | pushed → served %s |\n",
		ms(g("BenchmarkRenderValidate10000/ns/op")/1e6), ms(g("BenchmarkRenderValidate10000/nginx-t-ms")), ms(g("BenchmarkDynamicTenThousand/push-10000-served-ms")))
	fmt.Fprintf(&b, "| churn under load (30 s, %.0f changes) | – | %.0f failed of %.0f, %.0f reloads | %.0f failed of %.0f, %.0f reloads |\n",
		g("BenchmarkChurnDynamic/changes"), g("BenchmarkChurn/failed"), g("BenchmarkChurn/requests"), g("BenchmarkChurn/reloads"),
		g("BenchmarkChurnDynamic/failed"), g("BenchmarkChurnDynamic/requests"), g("BenchmarkChurnDynamic/reloads"))
	return b.String()
}

// withModesTable returns readme with the text between the markers
// replaced by the table.
func withModesTable(readme []byte, raw map[string]float64) ([]byte, error) {
	i := bytes.Index(readme, []byte(readmeBegin))
	j := bytes.Index(readme, []byte(readmeEnd))
	if i < 0 || j < i {
		return nil, fmt.Errorf("README.md has no %q ... %q markers", readmeBegin, readmeEnd)
	}
	var out bytes.Buffer
	out.Write(readme[:i+len(readmeBegin)])
	out.WriteString("\n")
	out.WriteString(modesTable(raw))
	out.Write(readme[j:])
	return out.Bytes(), nil
}

// writeReadme rewrites README.md's modes table from results.
func writeReadme(path string, res Results) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	nb, err := withModesTable(b, res.Raw)
	if err != nil {
		return err
	}
	return os.WriteFile(path, nb, 0o644)
}
