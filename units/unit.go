package units

import (
	"bufio"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"strings"
)

// Option is one line of a unit file: Name=Value in [Section].
type Option struct {
	Section string `json:"section"`
	Name    string `json:"name"`
	Value   string `json:"value,omitempty"`
}

// Unit is a named unit file: an ordered list of options. Order and repeated
// names (ExecStartPre, Environment) are kept exactly.
type Unit struct {
	Name    string
	Options []Option
}

// Add appends an option and returns the unit for chaining.
func (u *Unit) Add(section, name, value string) *Unit {
	u.Options = append(u.Options, Option{Section: section, Name: name, Value: value})
	return u
}

// Get returns the values of name in section, in order.
func (u *Unit) Get(section, name string) []string {
	var vs []string
	for _, o := range u.Options {
		if o.Section == section && o.Name == name {
			vs = append(vs, o.Value)
		}
	}
	return vs
}

// Validate checks the unit's name and that every option can be written as
// one line fleet accepts: no newline, at most 2048 bytes per line.
func (u *Unit) Validate() error {
	if err := ValidateName(u.Name); err != nil {
		return err
	}
	if len(u.Options) == 0 {
		return fmt.Errorf("unit %s has no options", u.Name)
	}
	for _, o := range u.Options {
		if o.Section == "" || strings.ContainsAny(o.Section, "[]\n") {
			return fmt.Errorf("unit %s: bad section name %q", u.Name, o.Section)
		}
		if o.Name == "" || strings.ContainsAny(o.Name, "=\n\r[ \t\\") || o.Name[0] == '#' || o.Name[0] == ';' {
			return fmt.Errorf("unit %s: bad option name %q in [%s]", u.Name, o.Name, o.Section)
		}
		if strings.ContainsAny(o.Value, "\n\r") {
			return fmt.Errorf("unit %s: %s= in [%s] contains a newline; fleet rejects raw newlines", u.Name, o.Name, o.Section)
		}
		if strings.HasSuffix(o.Value, "\\") {
			return fmt.Errorf("unit %s: %s= in [%s] ends with a backslash, which continues the line", u.Name, o.Name, o.Section)
		}
		if o.Value != strings.TrimSpace(o.Value) {
			return fmt.Errorf("unit %s: %s= in [%s] has leading or trailing spaces, which systemd drops", u.Name, o.Name, o.Section)
		}
		if n := len(o.Name) + 1 + len(o.Value); n > 2048 {
			return fmt.Errorf("unit %s: %s= line is %d bytes; fleet allows 2048", u.Name, o.Name, n)
		}
	}
	return u.ValidateXFleet()
}

// Render writes the unit as systemd unit text. A section header is written
// whenever the section changes, so options keep their exact order.
func (u *Unit) Render() []byte {
	var b strings.Builder
	cur := ""
	for i, o := range u.Options {
		if o.Section != cur || i == 0 {
			if i > 0 {
				b.WriteByte('\n')
			}
			b.WriteString("[" + o.Section + "]\n")
			cur = o.Section
		}
		b.WriteString(o.Name)
		b.WriteByte('=')
		b.WriteString(o.Value)
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

// Hash is the SHA-1 of the rendered unit, the identity fleet compares
// options by: reordering options is a change.
func (u *Unit) Hash() string {
	h := sha1.Sum(u.Render())
	return hex.EncodeToString(h[:])
}

// Equal reports whether two units have the same name and options in the
// same order.
func (u *Unit) Equal(v *Unit) bool {
	if u.Name != v.Name || len(u.Options) != len(v.Options) {
		return false
	}
	for i := range u.Options {
		if u.Options[i] != v.Options[i] {
			return false
		}
	}
	return true
}

// Parse reads unit text: [Section] headers, Name=Value lines, comments
// starting with # or ;, blank lines, and lines continued with a trailing
// backslash (joined with a space, as systemd does).
func Parse(name string, text []byte) (*Unit, error) {
	u := &Unit{Name: name}
	sc := bufio.NewScanner(strings.NewReader(string(text)))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	section := ""
	lineNo := 0
	var cont strings.Builder
	contStart := 0
	for sc.Scan() {
		lineNo++
		line := sc.Text()
		if cont.Len() > 0 {
			trimmed := strings.TrimSpace(line)
			if strings.HasPrefix(trimmed, "#") || strings.HasPrefix(trimmed, ";") {
				continue
			}
			if strings.HasSuffix(line, "\\") {
				cont.WriteString(" " + strings.TrimSpace(strings.TrimSuffix(line, "\\")))
				continue
			}
			cont.WriteString(" " + trimmed)
			line = cont.String()
			cont.Reset()
		} else {
			t := strings.TrimSpace(line)
			if t == "" || t[0] == '#' || t[0] == ';' {
				continue
			}
			if strings.HasSuffix(line, "\\") {
				cont.WriteString(strings.TrimSpace(strings.TrimSuffix(line, "\\")))
				contStart = lineNo
				continue
			}
			line = t
		}
		if strings.HasPrefix(line, "[") {
			if !strings.HasSuffix(line, "]") || len(line) < 3 {
				return nil, fmt.Errorf("%s line %d: bad section header %q", name, lineNo, line)
			}
			section = line[1 : len(line)-1]
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("%s line %d: %q is not Name=Value", name, lineNo, line)
		}
		if section == "" {
			return nil, fmt.Errorf("%s line %d: option %q before any [Section]", name, lineNo, strings.TrimSpace(k))
		}
		k = strings.TrimSpace(k)
		if k == "" {
			return nil, fmt.Errorf("%s line %d: empty option name", name, lineNo)
		}
		u.Options = append(u.Options, Option{Section: section, Name: k, Value: strings.TrimSpace(v)})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if cont.Len() > 0 {
		return nil, fmt.Errorf("%s line %d: continued line never ends", name, contStart)
	}
	return u, nil
}
