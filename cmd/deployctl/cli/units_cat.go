package cli

import (
	"errors"
	"fmt"

	"github.com/deployctl/deployctl/internal/exitcode"
	"github.com/deployctl/deployctl/units"
	"github.com/deployctl/deployctl/units/fleet"
	"github.com/spf13/cobra"
)

func newUnitsCatCmd(e *env) *cobra.Command {
	var ff fleetFlags
	cmd := &cobra.Command{
		Use:   "cat UNIT",
		Short: "Print the unit file fleet holds, like fleetctl cat",
		Long: `cat prints the unit file fleet holds for UNIT (a name with or without
".service": someapp@1, someapp-lb.service) as fleet stores it: what the
agents write on the machines. An instance fleet holds under its own name
is printed as submitted; "units diff" compares fleet's units with what
render makes.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if _, err := units.ParseName(name); err != nil {
				name += ".service"
			}
			if err := units.ValidateName(name); err != nil {
				return exitcode.Usage(fmt.Errorf("UNIT: %w", err))
			}
			ctx, c, done, err := ff.connect(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			u, err := c.Unit(ctx, name)
			if errors.Is(err, fleet.ErrNotFound) {
				return exitcode.Usage(fmt.Errorf("fleet holds no unit %s (deployctl units list shows what it holds)", name))
			}
			if err != nil {
				return err
			}
			_, err = e.stdout.Write(u.File().Serialize())
			return err
		},
	}
	ff.bind(cmd)
	return cmd
}
