package cli

import "github.com/spf13/cobra"

func newServicesCmd(e *env) *cobra.Command { return &cobra.Command{Use: "services", Hidden: true} }
func newDemoCmd(e *env) *cobra.Command     { return &cobra.Command{Use: "demo", Hidden: true} }
