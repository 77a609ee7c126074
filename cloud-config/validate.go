package cloudconfig

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Kind of a report entry.
const (
	KindError   = "error"
	KindWarning = "warning"
	KindInfo    = "info"
)

// Entry is one finding.
type Entry struct {
	Line    int    `json:"line"`
	Kind    string `json:"kind"`
	Message string `json:"message"`
}

func (e Entry) String() string { return fmt.Sprintf("line %d: %s: %s", e.Line, e.Kind, e.Message) }

// Report is the result of Validate, sorted by line.
type Report struct {
	Entries []Entry `json:"entries"`
}

// HasErrors reports whether any entry is an error.
func (r Report) HasErrors() bool {
	for _, e := range r.Entries {
		if e.Kind == KindError {
			return true
		}
	}
	return false
}

// String renders one "line N: kind: message" per entry.
func (r Report) String() string {
	var b strings.Builder
	for _, e := range r.Entries {
		b.WriteString(e.String())
		b.WriteByte('\n')
	}
	return b.String()
}

type validator struct {
	entries []Entry
	// facts collected for the cross-file rules
	etcdClientURLs []located
	consumers      []consumer
	// certAuth is where etcd is told to require client certificates.
	certAuth *located
}

type located struct {
	line int
	val  string
}

type consumer struct {
	line int
	what string
	urls string
	// cert: the consumer presents a client certificate (CA, cert and key
	// all given).
	cert bool
}

func (v *validator) add(line int, kind, format string, a ...any) {
	if line < 1 {
		line = 1
	}
	v.entries = append(v.entries, Entry{Line: line, Kind: kind, Message: fmt.Sprintf(format, a...)})
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// Validate applies coreos-cloudinit's validation rules to user data (header,
// YAML syntax, structure and types, unknown and deprecated keys, value
// formats, decodable file content, no files under /usr) and deployctl's own:
// no hyphenated keys, etcd/flannel traffic on $private_ipv4, etcd endpoints
// consistent across the file, and every unit either given content or one
// Flatcar ships. It never panics on any input.
func Validate(data []byte) Report {
	v := &validator{}
	text := string(data)
	first, _, _ := strings.Cut(text, "\n")
	first = strings.TrimRight(first, " \t\r")
	switch {
	case len(bytes.TrimSpace(data)) == 0:
		return Report{}
	case strings.HasPrefix(first, "#!"):
		return Report{}
	case strings.HasPrefix(strings.TrimSpace(text), "{") && strings.Contains(text, `"ignition"`):
		return Report{}
	case strings.Contains(strings.ToLower(first), "content-type: multipart/mixed"):
		return Report{}
	case first != Header:
		v.add(1, KindError, `must be "#cloud-config", multipart mime or begin with "#!"`)
		return v.report()
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		msg := err.Error()
		if m := yamlLine.FindStringSubmatch(msg); m != nil {
			n, _ := strconv.Atoi(m[1])
			v.add(n, KindError, "%s", m[2])
		} else {
			v.add(1, KindError, "%s", msg)
		}
		return v.report()
	}
	if len(doc.Content) == 0 {
		return v.report()
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return v.report()
	}
	v.walk(root, reflect.TypeOf(Config{}), "")
	v.crossChecks()
	return v.report()
}

func (v *validator) report() Report {
	sort.SliceStable(v.entries, func(i, j int) bool { return v.entries[i].Line < v.entries[j].Line })
	return Report{Entries: v.entries}
}

// fieldByKey finds the struct field whose yaml name is key.
func fieldByKey(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == key {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func typeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Pointer:
		return typeName(t.Elem())
	case reflect.Struct:
		return "struct"
	case reflect.Slice:
		return "[]" + typeName(t.Elem())
	case reflect.Float64:
		return "float64"
	}
	return t.Kind().String()
}

// compatible reports whether node can hold a value of type t (the
// coercions coreos-cloudinit allows: a string accepts any scalar).
func compatible(n *yaml.Node, t reflect.Type) bool {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return true
	}
	switch t.Kind() {
	case reflect.Pointer:
		return compatible(n, t.Elem())
	case reflect.Struct:
		return n.Kind == yaml.MappingNode
	case reflect.Slice:
		return n.Kind == yaml.SequenceNode
	case reflect.String:
		return n.Kind == yaml.ScalarNode
	case reflect.Bool:
		return n.Kind == yaml.ScalarNode && n.Tag == "!!bool"
	case reflect.Int:
		return n.Kind == yaml.ScalarNode && n.Tag == "!!int"
	case reflect.Float64:
		return n.Kind == yaml.ScalarNode && (n.Tag == "!!float" || n.Tag == "!!int")
	}
	return false
}

func (v *validator) walk(n *yaml.Node, t reflect.Type, path string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			key := k.Value
			if strings.Contains(key, "-") {
				fixed := strings.ReplaceAll(key, "-", "_")
				v.add(k.Line, KindError, "key %q: Flatcar ignores hyphenated keys since 2024; write %q", key, fixed)
				key = fixed
			}
			f, ok := fieldByKey(t, key)
			if !ok {
				v.add(k.Line, KindWarning, "unrecognized key %q", key)
				if path == "coreos" && key == "write_files" {
					v.add(k.Line, KindInfo, "write_files doesn't belong under coreos")
				}
				continue
			}
			if msg := f.Tag.Get("deprecated"); msg != "" {
				v.add(k.Line, KindWarning, "deprecated key %q (%s)", key, msg)
			}
			if b, ok := yaml11Bool(val, f.Type); ok {
				// coreos-cloudinit parses YAML 1.1, where yes/no/on/off are
				// booleans: Flatcar reads the value as intended.
				v.add(val.Line, KindWarning, "%q for %q is read as %v by Flatcar (YAML 1.1); write %v", val.Value, key, b, b)
			} else if !compatible(val, f.Type) {
				v.add(k.Line, KindError, "incorrect type for %q (want %s)", key, typeName(f.Type))
				continue
			}
			if re := f.Tag.Get("valid"); re != "" && val.Kind == yaml.ScalarNode && val.Tag != "!!null" {
				val := val.Value
				if key == "permissions" && k.Line > 0 {
					// A YAML int 0644 is read as octal digits, as cloudinit coerces it.
					val = strings.TrimPrefix(val, "0o")
				}
				if !regexp.MustCompile(re).MatchString(val) {
					v.add(k.Line, KindError, "invalid value %s", val)
				}
			}
			child := path + "." + key
			if path == "" {
				child = key
			}
			v.walk(val, f.Type, child)
		}
		v.structRules(n, t, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return
		}
		for i, c := range n.Content {
			if !compatible(c, t.Elem()) {
				v.add(c.Line, KindError, "incorrect type for \"%s[%d]\" (want %s)", path[strings.LastIndex(path, ".")+1:], i, typeName(t.Elem()))
				continue
			}
			v.walk(c, t.Elem(), path)
		}
	}
}

// yaml11Bool reports whether n is a YAML 1.1 boolean word (yes, no, on,
// off, y, n) for a bool field: yaml.v3 reads it as a string, Flatcar's
// coreos-cloudinit as a boolean.
func yaml11Bool(n *yaml.Node, t reflect.Type) (bool, bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Bool || n.Kind != yaml.ScalarNode || n.Tag != "!!str" || n.Style != 0 {
		return false, false
	}
	switch strings.ToLower(n.Value) {
	case "yes", "on", "y":
		return true, true
	case "no", "off", "n":
		return false, true
	}
	return false, false
}

// value returns the scalar value and node of key in mapping n.
func value(n *yaml.Node, key string) (string, *yaml.Node) {
	if n == nil || n.Kind != yaml.MappingNode {
		return "", nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if strings.ReplaceAll(n.Content[i].Value, "-", "_") == key {
			return n.Content[i+1].Value, n.Content[i+1]
		}
	}
	return "", nil
}

// contentLine is the file line of line i (0-based) inside a scalar.
func contentLine(n *yaml.Node, i int) int {
	if n.Style == yaml.LiteralStyle || n.Style == yaml.FoldedStyle {
		return n.Line + 1 + i
	}
	return n.Line
}

var envLine = regexp.MustCompile(`^\s*Environment=("?)([A-Za-z_][A-Za-z0-9_]*)=(.*?)("?)\s*$`)

// envs returns KEY=value pairs of Environment= lines in unit text.
func envs(content string, n *yaml.Node) map[string]located {
	out := map[string]located{}
	for i, l := range strings.Split(content, "\n") {
		if m := envLine.FindStringSubmatch(l); m != nil {
			out[m[2]] = located{line: contentLine(n, i), val: m[3]}
		}
	}
	return out
}

// decodeContent decodes write_files content as coreos-cloudinit does.
func decodeContent(content, encoding string) ([]byte, error) {
	b64 := func(s string) ([]byte, error) { return base64.StdEncoding.DecodeString(strings.TrimSpace(s)) }
	gz := func(b []byte) ([]byte, error) {
		r, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			return nil, err
		}
		defer r.Close()
		return io.ReadAll(io.LimitReader(r, 16<<20))
	}
	switch encoding {
	case "":
		return []byte(content), nil
	case "b64", "base64":
		return b64(content)
	case "gz", "gzip":
		return gz([]byte(content))
	case "gz+base64", "gzip+base64", "gz+b64", "gzip+b64":
		b, err := b64(content)
		if err != nil {
			return nil, err
		}
		return gz(b)
	}
	return nil, fmt.Errorf("unsupported encoding %q", encoding)
}

// FlatcarUnits are units a Flatcar image ships, which cloud-config may
// start, enable or extend with drop-ins without giving content.
var FlatcarUnits = map[string]bool{
	"etcd-member.service": true, "flanneld.service": true, "flannel-docker-opts.service": true,
	"docker.service": true, "docker.socket": true, "containerd.service": true,
	"locksmithd.service": true, "update-engine.service": true, "sshd.socket": true, "sshd.service": true,
	"systemd-networkd.service": true, "systemd-resolved.service": true, "systemd-timesyncd.service": true,
	"systemd-journald.service": true, "coreos-metadata.service": true, "coreos-metadata-sshkeys@core.service": true,
	"afterburn-sshkeys@core.service": true, "ntpd.service": true, "iptables-restore.service": true,
	"ip6tables-restore.service": true, "user-configdrive.service": true, "oem-cloudinit.service": true,
}
