package main

import (
	"encoding/json"
	"os"
	"reflect"
	"testing"
)

// The table is a pure function of the raw figures: the committed
// results.json's rows come back from its raw values, and a figure that
// misses its target fails its row.
func TestRowsFromCommittedResults(t *testing.T) {
	res := committed(t)
	got := rows(res.Raw)
	if !reflect.DeepEqual(got, res.Rows) {
		for i := range got {
			if i >= len(res.Rows) || got[i] != res.Rows[i] {
				t.Fatalf("row %d: %+v, committed %+v", i, got[i], res.Rows[min(i, len(res.Rows)-1)])
			}
		}
		t.Fatalf("%d rows, committed %d", len(got), len(res.Rows))
	}
	raw := map[string]float64{}
	for k, v := range res.Raw {
		raw[k] = v
	}
	raw["BenchmarkDynamicVsReload/dyn-x-floor"] = 0.5
	for _, r := range rows(raw) {
		if r.Figure == "  … as a multiple of the reload floor" && r.Pass != "fail" {
			t.Fatalf("0.5× the floor passes the ≤ 0.2× target: %+v", r)
		}
	}
}

// README.md's modes table is the committed run's: bench -readme writes it
// from results.json, and this keeps the two from drifting apart.
func TestReadmeTableIsTheCommittedRun(t *testing.T) {
	res := committed(t)
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	want, err := withModesTable(readme, res.Raw)
	if err != nil {
		t.Fatal(err)
	}
	if string(want) != string(readme) {
		t.Fatal("README.md's modes table is not bench/results.json's: run `go run ./bench -readme`")
	}
}

// committed reads the committed bench/results.json.
func committed(t *testing.T) Results {
	t.Helper()
	b, err := os.ReadFile("results.json")
	if err != nil {
		t.Fatal(err)
	}
	var res Results
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	return res
}
