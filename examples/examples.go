// Package examples carries the example deploy spec inside the deployctl
// binary, so that `deployctl demo` plays the story from any folder, with
// nothing but the binary.
package examples

import _ "embed"

// DeploySpecName is the example's path in the repository, the name the
// demo reports it under.
const DeploySpecName = "examples/deploy.yaml"

// DeploySpec is examples/deploy.yaml as built into the binary.
//
//go:embed deploy.yaml
var DeploySpec []byte
