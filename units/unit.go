package units

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"strings"

	sdunit "github.com/coreos/go-systemd/v22/unit"
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
		if n := len(o.Name) + 1 + len(o.Value); n >= MaxLine {
			return &LineTooLongError{Unit: u.Name, Section: o.Section, Option: o.Name, Len: n}
		}
	}
	if err := u.ValidateXFleet(); err != nil {
		return err
	}
	return u.validateAsFleet()
}

// MaxLine is fleet's line limit: fleetd checks every unit with go-systemd's
// deserializer, which refuses a line ("Name=Value", without its newline) of
// MaxLine bytes or more; 2047 is accepted.
const MaxLine = 2048

// LineTooLongError is a unit line fleet would refuse with
// "400 line too long (max 2048 bytes)".
type LineTooLongError struct {
	Unit, Section, Option string
	// Len is the length of "Option=Value" in bytes.
	Len int
}

func (e *LineTooLongError) Error() string {
	return fmt.Sprintf("unit %s: the %s= line in [%s] is %d bytes; fleet refuses lines of %d bytes or more (line too long)",
		e.Unit, e.Option, e.Section, e.Len, MaxLine)
}

// validateAsFleet runs the check fleetd runs on every submitted unit:
// go-systemd's deserializer over go-systemd's serialization of the options.
func (u *Unit) validateAsFleet() error {
	if _, err := sdunit.Deserialize(bytes.NewReader(u.Serialize())); err != nil {
		return fmt.Errorf("unit %s: fleet would refuse it: %w", u.Name, err)
	}
	return nil
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

// Serialize writes the unit as go-systemd's unit.Serialize does, which is
// what fleet stores and hashes: options grouped by section, sections in the
// order they first appear. For a unit whose sections are not interleaved it
// equals Render.
func (u *Unit) Serialize() []byte {
	var order []string
	bySection := map[string][]Option{}
	for _, o := range u.Options {
		if _, ok := bySection[o.Section]; !ok {
			order = append(order, o.Section)
		}
		bySection[o.Section] = append(bySection[o.Section], o)
	}
	var b bytes.Buffer
	for i, sec := range order {
		b.WriteString("[" + sec + "]\n")
		for _, o := range bySection[sec] {
			b.WriteString(o.Name + "=" + o.Value + "\n")
		}
		if i < len(order)-1 {
			b.WriteByte('\n')
		}
	}
	return b.Bytes()
}

// Hash is the SHA-1 of the unit as fleet serializes it (Serialize), the
// identity fleet compares options by and reports in its unit states:
// reordering options is a change.
func (u *Unit) Hash() string {
	h := sha1.Sum(u.Serialize())
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
