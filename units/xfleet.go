package units

import (
	"fmt"
	"path"
	"strings"
)

// XFleet is the section fleet reads its scheduling options from.
const XFleet = "X-Fleet"

// Known [X-Fleet] options of fleet 1.0.0.
var xfleetOptions = map[string]bool{
	"MachineID": true, "MachineOf": true, "MachineMetadata": true, "Conflicts": true, "Global": true, "Replaces": true,
}

func isTrue(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true", "yes", "1", "on", "t", "y":
		return true
	}
	return false
}

// substitute replaces fleet's %n %N %p %i in an X-Fleet value.
func substitute(v string, n Name, full string) string {
	r := strings.NewReplacer("%n", full, "%N", strings.TrimSuffix(full, "."+n.Suffix), "%p", n.Prefix, "%i", n.Instance)
	return r.Replace(v)
}

// ValidateXFleet applies fleet's checks on [X-Fleet]: known options, a
// 32-hex MachineID, key=value metadata, and the combinations fleet
// rejects.
func (u *Unit) ValidateXFleet() error {
	n, err := ParseName(u.Name)
	if err != nil {
		return err
	}
	has := map[string][]string{}
	for _, o := range u.Options {
		if o.Section != XFleet {
			continue
		}
		if !xfleetOptions[o.Name] {
			return fmt.Errorf("unit %s: unknown [X-Fleet] option %s (fleet knows MachineID, MachineOf, MachineMetadata, Conflicts, Global, Replaces)", u.Name, o.Name)
		}
		has[o.Name] = append(has[o.Name], substitute(o.Value, n, u.Name))
	}
	if ids := has["MachineID"]; len(ids) > 0 {
		for _, id := range ids {
			if n.IsTemplate() && id == "" && u.hasRaw(XFleet, "MachineID", "%i") {
				continue // each instance's name is its machine's ID
			}
			if len(id) != 32 || strings.Trim(strings.ToLower(id), "0123456789abcdef") != "" {
				return fmt.Errorf("unit %s: MachineID %q is not 32 hex characters", u.Name, id)
			}
		}
		for _, other := range []string{"MachineOf", "Conflicts", "Global", "Replaces"} {
			if len(has[other]) > 0 {
				return fmt.Errorf("unit %s: MachineID cannot be combined with %s", u.Name, other)
			}
		}
	}
	global := false
	for _, g := range has["Global"] {
		global = global || isTrue(g)
	}
	if global {
		for _, other := range []string{"MachineOf", "Replaces"} {
			if len(has[other]) > 0 {
				return fmt.Errorf("unit %s: Global units cannot use %s", u.Name, other)
			}
		}
	}
	if len(has["Conflicts"]) > 0 && len(has["Replaces"]) > 0 {
		return fmt.Errorf("unit %s: Conflicts and Replaces cannot be combined", u.Name)
	}
	for _, md := range has["MachineMetadata"] {
		for _, pair := range strings.Fields(md) {
			pair = strings.Trim(pair, `"`)
			if k, v, ok := strings.Cut(pair, "="); !ok || k == "" || v == "" {
				return fmt.Errorf("unit %s: MachineMetadata %q is not key=value", u.Name, pair)
			}
		}
	}
	var globs []string
	for _, c := range append(append([]string{}, has["Conflicts"]...), has["Replaces"]...) {
		globs = append(globs, strings.Fields(c)...)
	}
	for _, target := range has["MachineOf"] {
		for _, g := range globs {
			if ok, _ := path.Match(g, target); ok {
				return fmt.Errorf("unit %s: MachineOf=%s matches its own Conflicts/Replaces %s", u.Name, target, g)
			}
		}
	}
	return nil
}

// hasRaw reports whether an option of that section and name, before
// fleet's specifier substitution, is exactly value.
func (u *Unit) hasRaw(section, name, value string) bool {
	for _, o := range u.Get(section, name) {
		if strings.TrimSpace(o) == value {
			return true
		}
	}
	return false
}
