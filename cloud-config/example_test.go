package cloudconfig_test

import (
	"fmt"

	cloudconfig "github.com/deployctl/deployctl/cloud-config"
)

func ExampleValidate() {
	r := cloudconfig.Validate([]byte(`#cloud-config
coreos:
  update:
    reboot-strategy: etcd-lock
  etcd2:
    name: core-1
`))
	fmt.Print(r)
	// Output:
	// line 4: error: key "reboot-strategy": Flatcar ignores hyphenated keys since 2024; write "reboot_strategy"
	// line 5: warning: deprecated key "etcd2" (etcd2 is no longer shipped in Container Linux)
}
