// Command pulumi is the Pulumi program `pulumi up` runs from the repository
// root (Pulumi.yaml: main: cmd/pulumi). Everything lives in package infra.
package main

import (
	"github.com/deployctl/deployctl/infra"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

func main() { pulumi.Run(infra.Program) }
