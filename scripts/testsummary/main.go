// Command testsummary reads `go test -json` events on stdin, prints what a
// person needs (each package's result, every failed test's output, every
// skipped test and why) and appends the events to a file; with -total it
// reads such files and prints one closing line, "N passed, N failed,
// N skipped". make check runs it so a skip cannot hide in a green run.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

type event struct {
	Action  string
	Package string
	Test    string
	Output  string
	Elapsed float64
}

func main() {
	appendTo := flag.String("append", "", "append the events read from stdin to this file")
	total := flag.Bool("total", false, "read the files named as arguments and print the totals")
	flag.Parse()
	if *total {
		os.Exit(totals(flag.Args()))
	}
	os.Exit(stream(os.Stdin, *appendTo))
}

// stream prints results as they come and appends events to path.
func stream(r io.Reader, path string) int {
	var out io.Writer = io.Discard
	if path != "" {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			fmt.Fprintln(os.Stderr, "testsummary:", err)
			return 1
		}
		defer f.Close()
		out = f
	}
	outputs := map[string][]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var ev event
		if err := json.Unmarshal(line, &ev); err != nil {
			fmt.Println(string(line)) // build errors and the like are not JSON
			continue
		}
		fmt.Fprintln(out, string(line))
		key := ev.Package + " " + ev.Test
		switch ev.Action {
		case "output":
			outputs[key] = append(outputs[key], ev.Output)
		case "fail":
			fmt.Print(strings.Join(outputs[key], ""))
			if ev.Test == "" {
				fmt.Printf("FAIL\t%s\t%.1fs\n", ev.Package, ev.Elapsed)
			}
		case "skip":
			if ev.Test != "" {
				fmt.Printf("SKIP\t%s %s: %s\n", ev.Package, ev.Test, skipReason(outputs[key]))
			}
		case "pass":
			if ev.Test == "" {
				fmt.Printf("ok\t%s\t%.1fs\n", ev.Package, ev.Elapsed)
			}
		}
		if ev.Action == "pass" || ev.Action == "fail" || ev.Action == "skip" {
			delete(outputs, key)
		}
	}
	return 0
}

func skipReason(lines []string) string {
	for _, l := range lines {
		if i := strings.Index(l, "SKIP"); i >= 0 || strings.Contains(l, ".go:") {
			return strings.TrimSpace(l)
		}
	}
	return "(no reason given)"
}

// totals counts tests (not packages) over every file.
func totals(paths []string) int {
	var passed, failed, skipped int
	var skips []string
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			fmt.Fprintln(os.Stderr, "testsummary:", err)
			return 1
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			var ev event
			if json.Unmarshal(sc.Bytes(), &ev) != nil || ev.Test == "" {
				continue
			}
			switch ev.Action {
			case "pass":
				passed++
			case "fail":
				failed++
			case "skip":
				skipped++
				skips = append(skips, ev.Package+" "+ev.Test)
			}
		}
		f.Close()
	}
	sort.Strings(skips)
	for _, s := range skips {
		fmt.Println("skipped:", s)
	}
	fmt.Printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped)
	if failed > 0 {
		return 1
	}
	return 0
}
