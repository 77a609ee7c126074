package units_test

import (
	"fmt"

	"github.com/deployctl/deployctl/units"
)

func ExampleParse() {
	u, err := units.Parse("someapp-discovery@.service", []byte(`[Unit]
BindsTo=someapp@%i.service
After=someapp@%i.service

[X-Fleet]
MachineOf=someapp@%i.service
`))
	if err != nil {
		panic(err)
	}
	fmt.Println(u.Get(units.XFleet, "MachineOf"), u.Validate())
	n, _ := units.ParseName("someapp@3.service")
	fmt.Println(n.Template(), n.Instance)
	// Output:
	// [someapp@%i.service] <nil>
	// someapp@.service 3
}
