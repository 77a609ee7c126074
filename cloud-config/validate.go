package cloudconfig

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"fmt"
	"io"
	"net/url"
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

func (v *validator) structRules(n *yaml.Node, t reflect.Type, path string) {
	switch t {
	case reflect.TypeOf(Config{}):
		if mh, node := value(n, "manage_etc_hosts"); node != nil && node.Tag != "!!null" && mh != "localhost" {
			v.add(node.Line, KindError, "invalid value %s (manage_etc_hosts only takes \"localhost\")", mh)
		}
	case reflect.TypeOf(File{}):
		p, pn := value(n, "path")
		if pn == nil || p == "" {
			v.add(n.Line, KindError, "write_files entry has no path")
		} else {
			if p == "/usr" || strings.HasPrefix(p, "/usr/") {
				v.add(pn.Line, KindError, "file cannot be written to a read-only filesystem")
			}
			if !strings.HasPrefix(p, "/") {
				v.add(pn.Line, KindError, "path %q must be absolute", p)
			}
		}
		enc, en := value(n, "encoding")
		content, cn := value(n, "content")
		if en != nil && enc != "" {
			if _, err := decodeContent(content, enc); err != nil {
				line := en.Line
				if cn != nil {
					line = cn.Line // the bad value is there
				}
				v.add(line, KindError, "content cannot be decoded as %q (encoding on line %d)", enc, en.Line)
			}
		}
	case reflect.TypeOf(Etcd{}), reflect.TypeOf(Etcd2{}):
		if d, dn := value(n, "discovery"); dn != nil && d != "" {
			if _, err := url.ParseRequestURI(d); err != nil {
				v.add(dn.Line, KindWarning, "discovery URL is not valid")
			}
		}
		if t == reflect.TypeOf(Etcd2{}) {
			for _, k := range []string{"listen_peer_urls", "initial_advertise_peer_urls", "advertise_client_urls"} {
				if s, sn := value(n, k); sn != nil && strings.Contains(s, "$public_ipv4") {
					v.add(sn.Line, KindError, "%s uses $public_ipv4: etcd traffic belongs on the private network ($private_ipv4)", k)
				}
			}
			if s, sn := value(n, "listen_client_urls"); sn != nil {
				v.etcdClientURLs = append(v.etcdClientURLs, located{sn.Line, s})
			}
		}
	case reflect.TypeOf(Fleet{}):
		if s, sn := value(n, "etcd_servers"); sn != nil && s != "" {
			v.consumers = append(v.consumers, consumer{sn.Line, "coreos.fleet.etcd_servers", s, hasCertKeys(n)})
		}
		if s, sn := value(n, "public_ip"); sn != nil && strings.Contains(s, "$public_ipv4") {
			v.add(sn.Line, KindWarning, "fleet public_ip uses $public_ipv4; fleet's traffic belongs on $private_ipv4")
		}
	case reflect.TypeOf(Flannel{}):
		if s, sn := value(n, "etcd_endpoints"); sn != nil && s != "" {
			v.consumers = append(v.consumers, consumer{sn.Line, "coreos.flannel.etcd_endpoints", s, hasCertKeys(n)})
		}
		for _, k := range []string{"interface", "public_ip"} {
			if s, sn := value(n, k); sn != nil && strings.Contains(s, "$public_ipv4") {
				v.add(sn.Line, KindError, "flannel %s uses $public_ipv4: vxlan traffic belongs on the private network ($private_ipv4)", k)
			}
		}
	case reflect.TypeOf(Locksmith{}):
		if s, sn := value(n, "endpoint"); sn != nil && s != "" {
			v.consumers = append(v.consumers, consumer{sn.Line, "coreos.locksmith.endpoint", s, hasCertKeys(n)})
		}
	case reflect.TypeOf(Unit{}):
		v.unitRules(n)
	}
}

func (v *validator) unitRules(n *yaml.Node) {
	name, nn := value(n, "name")
	if nn == nil || name == "" {
		v.add(n.Line, KindError, "unit has no name; coreos-cloudinit skips it")
		return
	}
	content, cn := value(n, "content")
	_, dn := value(n, "drop_ins")
	_, mn := value(n, "mask")
	hasDropIns := dn != nil && dn.Kind == yaml.SequenceNode && len(dn.Content) > 0
	if content == "" && !hasDropIns && mn == nil && !FlatcarUnits[name] {
		v.add(nn.Line, KindError, "unit %q has no content and is not a unit Flatcar ships", name)
	}
	if content == "" && hasDropIns && !FlatcarUnits[name] {
		v.add(nn.Line, KindWarning, "unit %q only has drop-ins and is not a unit Flatcar ships", name)
	}
	check := func(text string, node *yaml.Node) {
		env := envs(text, node)
		fleetCert := env["FLEET_ETCD_CAFILE"].val != "" && env["FLEET_ETCD_CERTFILE"].val != "" && env["FLEET_ETCD_KEYFILE"].val != ""
		for i, l := range strings.Split(text, "\n") {
			if m := curlEtcd.FindStringSubmatch(l); m != nil {
				cert := strings.Contains(l, "--cacert ") && strings.Contains(l, "--cert ") && strings.Contains(l, "--key ")
				v.consumers = append(v.consumers, consumer{contentLine(node, i), "curl in " + name, m[1], cert})
			}
		}
		for k, l := range env {
			switch {
			case strings.HasPrefix(k, "ETCD_") && strings.Contains(k, "URLS") && strings.Contains(l.val, "$public_ipv4"):
				v.add(l.line, KindError, "%s uses $public_ipv4: etcd traffic belongs on the private network ($private_ipv4)", k)
			case k == "ETCD_LISTEN_CLIENT_URLS":
				v.etcdClientURLs = append(v.etcdClientURLs, l)
			case k == "FLEET_ETCD_SERVERS":
				v.consumers = append(v.consumers, consumer{l.line, "FLEET_ETCD_SERVERS", l.val, fleetCert})
			case k == "ETCD_CLIENT_CERT_AUTH" && isTrue(l.val):
				l := l
				v.certAuth = &l
			case k == "FLEET_PUBLIC_IP" && strings.Contains(l.val, "$public_ipv4"):
				v.add(l.line, KindWarning, "FLEET_PUBLIC_IP uses $public_ipv4; fleet's traffic belongs on $private_ipv4")
			}
		}
	}
	if cn != nil {
		check(content, cn)
	}
	if hasDropIns {
		for _, d := range dn.Content {
			dname, dnn := value(d, "name")
			c, dc := value(d, "content")
			if dnn == nil || dname == "" {
				v.add(d.Line, KindError, "drop-in of %q has no name", name)
			} else if !strings.HasSuffix(dname, ".conf") {
				v.add(dnn.Line, KindError, "drop-in %q of %q must end in .conf or systemd ignores it", dname, name)
			}
			if dc != nil {
				check(c, dc)
			}
		}
	}
}

// curlEtcd finds an etcd URL a unit's curl call talks to.
var curlEtcd = regexp.MustCompile(`\bcurl\b.*?\b(https?://[^/\s]+:2379)`)

// hasCertKeys reports whether a coreos.* section gives etcd_cafile,
// etcd_certfile and etcd_keyfile.
func hasCertKeys(n *yaml.Node) bool {
	for _, k := range []string{"etcd_cafile", "etcd_certfile", "etcd_keyfile"} {
		if s, _ := value(n, k); s == "" {
			return false
		}
	}
	return true
}

func isTrue(s string) bool {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "1", "yes", "on":
		return true
	}
	return false
}

// crossChecks: every consumer of etcd uses a port (and scheme) etcd
// listens on.
func (v *validator) crossChecks() {
	if len(v.etcdClientURLs) == 0 && v.certAuth == nil {
		return
	}
	ports := map[string]bool{}
	schemes := map[string]bool{}
	var listed []string
	for _, l := range v.etcdClientURLs {
		for _, raw := range strings.Split(l.val, ",") {
			u, err := url.Parse(strings.TrimSpace(raw))
			if err != nil || u.Port() == "" {
				v.add(l.line, KindError, "etcd client URL %q is not scheme://host:port", raw)
				continue
			}
			ports[u.Port()] = true
			schemes[u.Scheme] = true
			listed = append(listed, u.Scheme+"/"+u.Port())
		}
	}
	for _, c := range v.consumers {
		if v.certAuth != nil && !c.cert {
			v.add(c.line, KindError, "%s reaches etcd without a client certificate, but etcd requires one (ETCD_CLIENT_CERT_AUTH on line %d): give it the CA, certificate and key", c.what, v.certAuth.line)
		}
		for _, raw := range strings.Split(c.urls, ",") {
			raw = strings.TrimSpace(raw)
			u, err := url.Parse(raw)
			if err != nil || u.Port() == "" {
				v.add(c.line, KindError, "%s: %q is not scheme://host:port", c.what, raw)
				continue
			}
			if !ports[u.Port()] || !schemes[u.Scheme] {
				v.add(c.line, KindError, "%s: %s does not match a client URL etcd listens on (%s)", c.what, raw, strings.Join(listed, ", "))
			}
		}
	}
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
