// Package cli is deployctl's command tree: one constructor per command,
// handlers that take a context and return errors, no init() wiring and no
// global state, so every command can be run and tested in-process.
package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"

	"github.com/deployctl/deployctl/internal/exitcode"
	"github.com/spf13/cobra"
)

// Version is set at build time.
var Version = "dev"

// env is what every command writes to.
type env struct {
	stdout, stderr io.Writer
	log            *slog.Logger
}

// New builds the deployctl command tree.
func New(stdout, stderr io.Writer) *cobra.Command {
	e := &env{stdout: stdout, stderr: stderr, log: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	root := &cobra.Command{
		Use:   "deployctl",
		Short: "From a deploy.yaml to a running, load-balanced, self-healing cluster",
		Long: `deployctl takes a web app from nothing to a running, load-balanced cluster:

  deployctl demo          the whole story on this machine (embedded etcd, real nginx, Docker)
  deployctl units         render deploy.yaml into fleet units and submit them through fleet's API
  deployctl cloud-config  render and validate the user data every node boots with
  deployctl cluster       the DigitalOcean droplets and endpoints of a cluster made by pulumi up
  deployctl services      the instances registered in etcd, listed or watched`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       Version,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return exitcode.Usage(fmt.Errorf("%w (see %s --help)", err, c.CommandPath()))
	})
	root.AddCommand(newUnitsCmd(e), newCloudConfigCmd(e), newClusterCmd(e), newServicesCmd(e), newDemoCmd(e), newDemoAppCmd(e), newVersionCmd(e))
	return root
}

// Main runs the tree and returns the exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := New(stdout, stderr)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err != nil && !exitcode.Silent(err) {
		fmt.Fprintln(stderr, "deployctl:", err)
	}
	code := exitcode.Of(err)
	// A command whose exit 2 means something else (units diff: there are
	// differences) reports every error, bad usage too, as 1.
	if cmd != nil && cmd.Annotations[errorExit1] == "true" && code == 2 && !exitcode.Silent(err) {
		code = 1
	}
	return code
}

// errorExit1 annotates a command whose errors all exit 1 (see Main).
const errorExit1 = "deployctl/error-exit-1"

// output is the --output flag shared by commands a script may read.
type output struct{ format string }

func (o *output) bind(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&o.format, "output", "o", "table", "output format: table or json")
}

func (o *output) check() error {
	if o.format != "table" && o.format != "json" {
		return exitcode.Usage(fmt.Errorf("--output: %q is not table or json", o.format))
	}
	return nil
}

func (o *output) json() bool { return o.format == "json" }

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table writes rows with aligned columns.
func table(w io.Writer, header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// list writes items as a JSON array (empty, not null, when there are none)
// with -o json, otherwise as a table with one row per item.
func list[T any](e *env, o *output, items []T, header []string, row func(T) []string) error {
	if o.json() {
		if items == nil {
			items = []T{}
		}
		return writeJSON(e.stdout, items)
	}
	rows := make([][]string, 0, len(items))
	for _, it := range items {
		rows = append(rows, row(it))
	}
	return table(e.stdout, header, rows)
}
