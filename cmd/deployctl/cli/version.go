package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

func newVersionCmd(e *env) *cobra.Command {
	var o output
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print deployctl's version (stamped by make build/release), Go version and platform",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.check(); err != nil {
				return err
			}
			v := struct {
				Version  string `json:"version"`
				Go       string `json:"go"`
				Platform string `json:"platform"`
				Commit   string `json:"commit,omitempty"`
			}{Version: Version, Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
			if bi, ok := debug.ReadBuildInfo(); ok {
				for _, s := range bi.Settings {
					if s.Key == "vcs.revision" {
						v.Commit = s.Value
					}
				}
			}
			if o.json() {
				return writeJSON(e.stdout, v)
			}
			fmt.Fprintf(e.stdout, "deployctl %s (%s, %s)\n", v.Version, v.Go, v.Platform)
			return nil
		},
	}
	o.bind(cmd)
	return cmd
}
