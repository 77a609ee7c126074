package units

import (
	"fmt"
	"strings"
)

// Fleet accepts these unit suffixes (fleet 1.0.0, unit/unit.go).
var validSuffixes = map[string]bool{
	"automount": true, "busname": true, "device": true, "mount": true, "path": true,
	"scope": true, "service": true, "slice": true, "snapshot": true, "socket": true,
	"swap": true, "target": true, "timer": true,
}

// Suffixes that may carry an "@" (templates and their instances).
var templateSuffixes = map[string]bool{"path": true, "service": true, "socket": true, "target": true, "timer": true}

// MaxNameLength is fleet's limit on unit names.
const MaxNameLength = 256

// ValidateName applies fleet's unit-name rules: at most 256 characters, a
// known suffix after the last dot, only [A-Za-z0-9:_.@-\] before it, not
// starting with "@", and "@" only in path, service, socket, target and timer
// units.
func ValidateName(name string) error {
	if name == "" {
		return fmt.Errorf("unit name is empty")
	}
	if len(name) > MaxNameLength {
		return fmt.Errorf("unit name %q is %d characters; fleet allows at most %d", name, len(name), MaxNameLength)
	}
	dot := strings.LastIndexByte(name, '.')
	if dot < 0 {
		return fmt.Errorf("unit name %q has no suffix such as .service", name)
	}
	prefix, suffix := name[:dot], name[dot+1:]
	if !validSuffixes[suffix] {
		return fmt.Errorf("unit name %q: suffix %q is not one fleet accepts (service, socket, timer, ...)", name, suffix)
	}
	if prefix == "" {
		return fmt.Errorf("unit name %q has nothing before the suffix", name)
	}
	if prefix[0] == '@' {
		return fmt.Errorf("unit name %q must not start with @", name)
	}
	for _, r := range prefix {
		if !nameChar(r) {
			return fmt.Errorf("unit name %q: character %q is not allowed (use A-Z a-z 0-9 : _ . @ - \\)", name, r)
		}
	}
	if strings.Contains(prefix, "@") && !templateSuffixes[suffix] {
		return fmt.Errorf("unit name %q: only path, service, socket, target and timer units may contain @", name)
	}
	return nil
}

func nameChar(r rune) bool {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		return true
	}
	return strings.ContainsRune(":_.@-\\", r)
}

// Name is a parsed unit name: "web@1.service" is prefix "web", instance "1",
// suffix "service"; "web@.service" is a template.
type Name struct {
	Prefix   string
	Instance string
	Suffix   string
	at       bool
}

// ParseName validates and splits a unit name.
func ParseName(s string) (Name, error) {
	if err := ValidateName(s); err != nil {
		return Name{}, err
	}
	dot := strings.LastIndexByte(s, '.')
	n := Name{Suffix: s[dot+1:]}
	base := s[:dot]
	if i := strings.IndexByte(base, '@'); i >= 0 {
		n.Prefix, n.Instance, n.at = base[:i], base[i+1:], true
	} else {
		n.Prefix = base
	}
	return n, nil
}

// IsTemplate reports "name@.suffix".
func (n Name) IsTemplate() bool { return n.at && n.Instance == "" }

// IsInstance reports "name@instance.suffix".
func (n Name) IsInstance() bool { return n.at && n.Instance != "" }

// Template returns the template name of an instance ("web@.service").
func (n Name) Template() string { return n.Prefix + "@." + n.Suffix }

// String renders the name.
func (n Name) String() string {
	if n.at {
		return n.Prefix + "@" + n.Instance + "." + n.Suffix
	}
	return n.Prefix + "." + n.Suffix
}
