package deployspec

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/deployctl/deployctl/registrar/registry"
	"gopkg.in/yaml.v3"
)

var serviceName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
var envKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
var imageRef = regexp.MustCompile(`^[a-z0-9]+([._/:@-][A-Za-z0-9_.-]+)*$`)

type parser struct {
	file   string
	errs   Errors
	fields []Field
	// tlsPaths are registry.etcd_cacert, etcd_cert and etcd_key as given.
	tlsPaths [3]string
	// prefixNode is registry.prefix as given (nil: the default).
	prefixNode *yaml.Node
}

func (p *parser) record(n *yaml.Node, field string) {
	p.fields = append(p.fields, Field{Path: field, Line: n.Line, Value: n.Value})
}

func (p *parser) errf(n *yaml.Node, field, format string, a ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	p.errs = append(p.errs, &Error{File: p.file, Line: line, Field: field, Msg: fmt.Sprintf(format, a...)})
}

// mapping walks a mapping node's pairs, reporting unknown keys.
func (p *parser) mapping(n *yaml.Node, field string, known map[string]func(k, v *yaml.Node)) {
	if n.Kind != yaml.MappingNode {
		p.errf(n, field, "must be a mapping")
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if seen[k.Value] {
			p.errf(k, field+"."+k.Value, "appears twice")
			continue
		}
		seen[k.Value] = true
		f, ok := known[k.Value]
		if !ok {
			keys := make([]string, 0, len(known))
			for kk := range known {
				keys = append(keys, kk)
			}
			sort.Strings(keys)
			p.errf(k, field+"."+k.Value, "unknown key; known keys are %s", strings.Join(keys, ", "))
			continue
		}
		f(k, v)
	}
}

func (p *parser) str(n *yaml.Node, field string) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		p.errf(n, field, "must be a string")
		return "", false
	}
	if !p.printable(n, field) {
		return "", false
	}
	p.record(n, field)
	return n.Value, true
}

// printable refuses a value with a control character (C0, DEL or C1):
// every string in the spec can reach a fleet unit, where a newline or a
// NUL starts a directive of its own (systemd reads a unit file's lines up
// to a NUL as separate lines).
func (p *parser) printable(n *yaml.Node, field string) bool {
	for i, r := range n.Value {
		if unicode.IsControl(r) {
			p.errf(n, field, "has the control character %U at byte %d; a value that reaches a unit must be printable, on one line (no NUL, tab, newline or escape)", r, i)
			return false
		}
	}
	return true
}

func (p *parser) integer(n *yaml.Node, field string, lo, hi int) (int, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
		p.errf(n, field, "must be a whole number")
		return 0, false
	}
	v, err := strconv.Atoi(n.Value)
	if err != nil || v < lo || v > hi {
		p.errf(n, field, "%s is out of range %d-%d", n.Value, lo, hi)
		return 0, false
	}
	return v, true
}

func (p *parser) boolean(n *yaml.Node, field string) (bool, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
		p.errf(n, field, "must be true or false")
		return false, false
	}
	return n.Value == "true", true
}

func (p *parser) duration(n *yaml.Node, field string) (time.Duration, bool) {
	s, ok := p.str(n, field)
	if !ok {
		return 0, false
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		p.errf(n, field, "%q is not a positive duration like 5s", s)
		return 0, false
	}
	return d, true
}

func (p *parser) pairs(n *yaml.Node, field string, keyRe *regexp.Regexp, what string) [][2]string {
	var out [][2]string
	if n.Kind != yaml.MappingNode {
		p.errf(n, field, "must be a mapping of %s", what)
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if !keyRe.MatchString(k.Value) {
			p.errf(k, field+"."+k.Value, "%q is not a valid %s name", k.Value, what)
			continue
		}
		if v.Kind != yaml.ScalarNode || v.Tag == "!!null" {
			p.errf(v, field+"."+k.Value, "must be a string")
			continue
		}
		if !p.printable(v, field+"."+k.Value) {
			continue
		}
		p.record(v, field+"."+k.Value)
		out = append(out, [2]string{k.Value, v.Value})
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0] < out[j][0] })
	return out
}

// checkEndpoints checks a comma-separated list of etcd URLs.
func checkEndpoints(s string) error {
	for _, ep := range strings.Split(s, ",") {
		if !strings.HasPrefix(ep, "https://") && !strings.HasPrefix(ep, "http://") {
			return fmt.Errorf("%q is not an http(s):// URL", ep)
		}
	}
	return nil
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// absPath reads an absolute path.
func (p *parser) absPath(v *yaml.Node, field string) string {
	s, ok := p.str(v, field)
	if ok && !strings.HasPrefix(s, "/") {
		p.errf(v, field, "%q must be an absolute path on the node", s)
		return ""
	}
	return s
}

// syntaxError places a YAML syntax error on the line that breaks the
// document. yaml.v3 reports some errors at the line where the enclosing
// block starts, 0-based (a bad indent on line 4 comes back as "line 1"), so
// the line is found as the first one from which every longer prefix of the
// file fails to parse.
func syntaxError(file string, data []byte, err error) error {
	msg := yamlLineRE.ReplaceAllString(err.Error(), "")
	lines := strings.SplitAfter(string(data), "\n")
	line := 0
	if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
		line, _ = strconv.Atoi(m[1])
	}
	if len(lines) <= 2000 {
		var n yaml.Node
		for l := len(lines); l >= 1; l-- {
			if yaml.Unmarshal([]byte(strings.Join(lines[:l], "")), &n) != nil {
				line = l
				continue
			}
			break
		}
	}
	if line < 1 {
		line = 1
	}
	return Errors{&Error{File: file, Line: line, Field: "yaml", Msg: msg + " (check the indentation and quoting on this line)"}}
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): `)

// registry parses the registry settings shared by every unit: the etcd
// prefix and endpoints, the registrar's path and its TLS files (see
// registryTLS).
func (p *parser) registry(v *yaml.Node, spec *Spec) {
	tlsPaths := &p.tlsPaths
	p.mapping(v, "registry", map[string]func(k, v *yaml.Node){
		"prefix": func(k, v *yaml.Node) {
			if s, ok := p.str(v, "registry.prefix"); ok {
				if err := registry.CheckPrefix(s); err != nil {
					p.errf(v, "registry.prefix", "%v", err)
				} else {
					spec.Prefix, p.prefixNode = s, v
				}
			}
		},
		"etcd_endpoints": func(k, v *yaml.Node) {
			if s, ok := p.str(v, "registry.etcd_endpoints"); ok {
				if err := checkEndpoints(s); err != nil {
					p.errf(v, "registry.etcd_endpoints", "%v", err)
				}
				spec.EtcdEndpoints = s
			}
		},
		"etcd_cacert": func(k, v *yaml.Node) { tlsPaths[0] = p.absPath(v, "registry.etcd_cacert") },
		"etcd_cert":   func(k, v *yaml.Node) { tlsPaths[1] = p.absPath(v, "registry.etcd_cert") },
		"etcd_key":    func(k, v *yaml.Node) { tlsPaths[2] = p.absPath(v, "registry.etcd_key") },
		"registrar": func(k, v *yaml.Node) {
			if s, ok := p.str(v, "registry.registrar"); ok {
				if !strings.HasPrefix(s, "/") {
					p.errf(v, "registry.registrar", "%q must be an absolute path", s)
				} else {
					spec.Registrar = s
				}
			}
		},
	})
}

// registryTLS sets the registrar's TLS files: those given, else the node
// PKI's, for https endpoints (the default); none for http.
func (p *parser) registryTLS(spec *Spec, root *yaml.Node) {
	switch {
	case strings.HasPrefix(spec.EtcdEndpoints, "https://"):
		spec.EtcdCACert, spec.EtcdCert, spec.EtcdKey = or(p.tlsPaths[0], Defaults.EtcdCACert), or(p.tlsPaths[1], Defaults.EtcdCert), or(p.tlsPaths[2], Defaults.EtcdKey)
		// The node PKI's registrar certificate may write only under
		// /services/ (etcd's v3 auth, role registrar): another prefix would
		// be refused on every write, for good.
		if p.tlsPaths[1] == "" && p.prefixNode != nil && spec.Prefix != Defaults.Prefix && !strings.HasPrefix(spec.Prefix+"/", Defaults.Prefix+"/") {
			p.errf(p.prefixNode, "registry.prefix", "%q is outside %s/: with TLS the registrar's certificate may write only there (etcd role registrar); use a prefix under %s, or give registry.etcd_cert/etcd_key of a user allowed under %s", spec.Prefix, Defaults.Prefix, Defaults.Prefix, spec.Prefix)
		}
	case p.tlsPaths != [3]string{}:
		p.errf(root, "registry.etcd_cert", "TLS files are given but etcd_endpoints are http://; use https://")
	}
}
