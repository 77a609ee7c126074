package units

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"

	sdunit "github.com/coreos/go-systemd/v22/unit"
)

func TestValidateName(t *testing.T) {
	good := []string{"web.service", "web@.service", "web@1.service", "a:b_c.d-e.socket", "x.timer", "web@1.path"}
	for _, n := range good {
		if err := ValidateName(n); err != nil {
			t.Errorf("%s: %v", n, err)
		}
	}
	bad := map[string]string{
		"":                                    "empty",
		"web":                                 "suffix",
		"web.exe":                             "suffix",
		"@1.service":                          "start with @",
		"web@1.mount":                         "@",
		"we b.service":                        "character",
		".service":                            "nothing before",
		strings.Repeat("a", 250) + ".service": "256",
	}
	for n, want := range bad {
		err := ValidateName(n)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ValidateName(%q) = %v, want error mentioning %q", n, err, want)
		}
	}
}

func TestParseName(t *testing.T) {
	n, err := ParseName("web@3.service")
	if err != nil || !n.IsInstance() || n.Template() != "web@.service" || n.Instance != "3" || n.String() != "web@3.service" {
		t.Fatalf("%+v %v", n, err)
	}
	tpl, _ := ParseName("web@.service")
	if !tpl.IsTemplate() || tpl.IsInstance() {
		t.Fatal("template not recognised")
	}
	plain, _ := ParseName("web.service")
	if plain.IsTemplate() || plain.IsInstance() || plain.String() != "web.service" {
		t.Fatal("plain unit misparsed")
	}
}

func TestRenderParseRoundTrip(t *testing.T) {
	u := &Unit{Name: "web@.service"}
	u.Add("Unit", "Description", "web %i").
		Add("Service", "ExecStartPre", "-/usr/bin/docker rm -f %p-%i").
		Add("Service", "ExecStartPre", "/usr/bin/docker pull x").
		Add("Unit", "After", "docker.service"). // a section again, later: order kept
		Add(XFleet, "Conflicts", "web@*.service").
		Add("Service", "Environment", "")
	if err := u.Validate(); err != nil {
		t.Fatal(err)
	}
	back, err := Parse(u.Name, u.Render())
	if err != nil {
		t.Fatal(err)
	}
	if !back.Equal(u) {
		t.Fatalf("round trip changed the unit:\n%s\n%+v", u.Render(), back.Options)
	}
	if u.Hash() != back.Hash() {
		t.Fatal("hash differs after round trip")
	}
	swapped := &Unit{Name: u.Name, Options: append([]Option{}, u.Options...)}
	swapped.Options[1], swapped.Options[2] = swapped.Options[2], swapped.Options[1]
	if swapped.Hash() == u.Hash() {
		t.Fatal("reordering options must change the hash")
	}
}

func TestParseSystemdSyntax(t *testing.T) {
	text := "# comment\n; another\n[Unit]\nDescription = spaced \n\n[Service]\nExecStart=/bin/echo a \\\n  b \\\n  c\n"
	u, err := Parse("x.service", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if got := u.Get("Unit", "Description"); len(got) != 1 || got[0] != "spaced" {
		t.Fatalf("Description = %q", got)
	}
	if got := u.Get("Service", "ExecStart"); len(got) != 1 || got[0] != "/bin/echo a b c" {
		t.Fatalf("ExecStart = %q", got)
	}
	for _, bad := range []string{"Description=x\n", "[Unit\nA=b\n", "[Unit]\nnovalue\n", "[Unit]\nA=b \\\n"} {
		if _, err := Parse("x.service", []byte(bad)); err == nil {
			t.Errorf("Parse accepted %q", bad)
		}
	}
}

func TestValidateXFleet(t *testing.T) {
	mk := func(name string, opts ...string) *Unit {
		u := &Unit{Name: name}
		u.Add("Service", "ExecStart", "/bin/true")
		for i := 0; i+1 < len(opts); i += 2 {
			u.Add(XFleet, opts[i], opts[i+1])
		}
		return u
	}
	ok := []*Unit{
		mk("a.service", "Global", "true", "Conflicts", "b.service"),
		mk("a.service", "Global", "yes", "MachineMetadata", "role=edge region=x"),
		mk("a@.service", "MachineOf", "b@%i.service"),
		mk("a.service", "MachineID", "0123456789abcdef0123456789abcdef"),
		mk("a@.service", "Conflicts", "a@*.service"),
		// A per-machine template: each instance is named by its machine.
		mk("a@.service", "MachineID", "%i", "MachineMetadata", "role=edge"),
		mk("a@0123456789abcdef0123456789abcdef.service", "MachineID", "%i"),
	}
	for _, u := range ok {
		if err := u.Validate(); err != nil {
			t.Errorf("%v rejected: %v", u.Options, err)
		}
	}
	bad := map[string]*Unit{
		"MachineID cannot":    mk("a.service", "MachineID", "0123456789abcdef0123456789abcdef", "Global", "true"),
		"32 hex":              mk("a.service", "MachineID", "xyz"),
		"\"1\" is not 32 hex": mk("a@1.service", "MachineID", "%i"),
		"Global units":        mk("a.service", "Global", "true", "MachineOf", "b.service"),
		"Global units cannot": mk("a.service", "Global", "1", "Replaces", "b.service"),
		"cannot be combined":  mk("a.service", "Conflicts", "b.service", "Replaces", "c.service"),
		"matches its own":     mk("a@.service", "MachineOf", "b@%i.service", "Conflicts", "b@*.service"),
		"unknown":             mk("a.service", "Machine", "x"),
		"key=value":           mk("a.service", "MachineMetadata", "role"),
	}
	for want, u := range bad {
		err := u.Validate()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: err %v, want %q", u.Options, err, want)
		}
	}
}

func TestValidateLines(t *testing.T) {
	u := &Unit{Name: "a.service"}
	u.Add("Service", "ExecStart", "/bin/echo "+strings.Repeat("x", 2048))
	if err := u.Validate(); err == nil || !strings.Contains(err.Error(), "2048") {
		t.Fatalf("long line: %v", err)
	}
	u = &Unit{Name: "a.service"}
	u.Add("Service", "ExecStart", "a\nb")
	if err := u.Validate(); err == nil || !strings.Contains(err.Error(), "newline") {
		t.Fatalf("newline: %v", err)
	}
}

func FuzzParseRoundTrip(f *testing.F) {
	f.Add("[Unit]\nDescription=x\n[Service]\nExecStart=/bin/true\n")
	f.Add("[A]\nB=c \\\n d\n#x\n;y\n[X-Fleet]\nGlobal=true\n")
	f.Add("[Unit]\nA=\n")
	f.Fuzz(func(t *testing.T, text string) {
		u, err := Parse("f.service", []byte(text))
		if err != nil {
			return
		}
		if u.Validate() != nil {
			return
		}
		back, err := Parse(u.Name, u.Render())
		if err != nil {
			t.Fatalf("rendered unit does not parse: %v\n%q", err, u.Render())
		}
		if !back.Equal(u) {
			t.Fatalf("round trip changed the unit:\n%q\n%+v\n%+v", u.Render(), u.Options, back.Options)
		}
	})
}

// lineOf returns a unit whose ExecStart= line is exactly n bytes.
func lineOf(n int) *Unit {
	u := &Unit{Name: "a.service"}
	u.Add("Unit", "Description", "x")
	u.Add("Service", "ExecStart", "/bin/echo "+strings.Repeat("x", n-len("ExecStart=/bin/echo ")))
	return u
}

// fleet refuses a line of 2048 bytes or more and accepts 2047: the limit is
// counted on "Name=Value" without the newline, as go-systemd's deserializer
// (which fleetd runs on every submit) counts it.
func TestLineLimitAsFleetCountsIt(t *testing.T) {
	for _, n := range []int{2046, 2047} {
		if err := lineOf(n).Validate(); err != nil {
			t.Errorf("%d-byte line: %v", n, err)
		}
		if _, err := sdunit.Deserialize(bytes.NewReader(lineOf(n).Serialize())); err != nil {
			t.Errorf("go-systemd refuses a %d-byte line: %v", n, err)
		}
	}
	for _, n := range []int{2048, 2049, 4000} {
		var lt *LineTooLongError
		if err := lineOf(n).Validate(); !errors.As(err, &lt) || lt.Len != n || lt.Option != "ExecStart" {
			t.Errorf("%d-byte line: err %v", n, err)
		}
		if _, err := sdunit.Deserialize(bytes.NewReader(lineOf(n).Serialize())); err == nil {
			t.Errorf("go-systemd accepts a %d-byte line; the limit moved", n)
		}
	}
}

// Serialize and Hash follow go-systemd's serialization, which is what fleet
// stores and hashes, also when sections are interleaved.
func TestSerializeMatchesGoSystemd(t *testing.T) {
	u := &Unit{Name: "a.service"}
	u.Add("Unit", "Description", "d").Add("Service", "ExecStart", "/bin/true").
		Add(XFleet, "Global", "true").Add("Unit", "After", "b.service").Add("Service", "ExecStartPre", "-/bin/false")
	var opts []*sdunit.UnitOption
	for _, o := range u.Options {
		opts = append(opts, sdunit.NewUnitOption(o.Section, o.Name, o.Value))
	}
	want, err := io.ReadAll(sdunit.Serialize(opts))
	if err != nil {
		t.Fatal(err)
	}
	if got := u.Serialize(); !bytes.Equal(got, want) {
		t.Fatalf("Serialize:\n%s\ngo-systemd:\n%s", got, want)
	}
	sum := sha1.Sum(want)
	if u.Hash() != hex.EncodeToString(sum[:]) {
		t.Fatal("Hash is not the SHA-1 of go-systemd's serialization")
	}
	plain := lineOf(100)
	if !bytes.Equal(plain.Serialize(), plain.Render()) {
		t.Fatal("for a unit without interleaved sections Serialize and Render must agree")
	}
}
