package registrarcli

import (
	"io"

	"github.com/spf13/cobra"
)

func newNginxCmd(g *globals, stdout io.Writer) *cobra.Command {
	return &cobra.Command{Use: "nginx", Short: "Follow etcd and keep nginx's upstream current", Hidden: true}
}
