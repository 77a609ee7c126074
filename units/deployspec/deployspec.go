// Package deployspec reads deploy.yaml, the one file that describes an app's
// services for deployctl: app services (image, port, instances, env,
// health, spread) and nginx load balancers in front of them. Every error
// names the file, line and field; unknown keys are errors; every default is
// set in Defaults.
package deployspec

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/deployctl/deployctl/registrar"
	"gopkg.in/yaml.v3"
)

// Defaults are every default value of the spec, in one place.
var Defaults = struct {
	Instances      int
	HealthInterval time.Duration
	HealthTimeout  time.Duration
	TTL            time.Duration
	Prefix         string
	Network        string
	LBListen       int
	NginxImage     string
	// NginxLuaImage is the LB image in dynamic mode: nginx with the Lua
	// module (OpenResty), pinned by tag.
	NginxLuaImage string
	NginxMode     string
	Registrar     string
	EtcdEndpoints string
	ConfRoot      string
	// The registrar's etcd client certificate on a node
	// (cloudconfig.TLSDir), used with https endpoints.
	EtcdCACert, EtcdCert, EtcdKey string
}{
	Instances:      1,
	HealthInterval: 5 * time.Second,
	HealthTimeout:  2 * time.Second,
	TTL:            15 * time.Second,
	Prefix:         "/services",
	Network:        "bridge",
	LBListen:       80,
	NginxImage:     "nginx:1.27",
	NginxLuaImage:  "openresty/openresty:1.25.3.2-bookworm",
	// Dynamic: instance changes reach nginx without a reload (see the
	// README's comparison); reload mode serves plain nginx.
	NginxMode:     "dynamic",
	Registrar:     "/opt/bin/registrar",
	EtcdEndpoints: "https://127.0.0.1:2379",
	ConfRoot:      "/etc/deployctl/nginx",
	EtcdCACert:    "/etc/ssl/etcd/ca.pem",
	EtcdCert:      "/etc/ssl/etcd/registrar.pem",
	EtcdKey:       "/etc/ssl/etcd/registrar-key.pem",
}

// Spec is a parsed deploy.yaml.
type Spec struct {
	File string
	// Services in name order.
	Services []*Service
	// Registry settings shared by all units.
	Prefix        string
	EtcdEndpoints string
	Registrar     string
	// EtcdCACert, EtcdCert and EtcdKey are the registrar's TLS files on the
	// node (set for https endpoints, empty for http).
	EtcdCACert, EtcdCert, EtcdKey string
	// Fields are the registry's scalar values and their positions.
	Fields []Field
}

// Service is an app service or a load balancer (LB != nil).
type Service struct {
	Name      string
	Line      int
	Image     string
	Port      int
	Instances int
	Env       [][2]string // sorted by key
	Command   []string
	Health    *Health
	Spread    bool
	TTL       time.Duration
	Network   string
	Machine   Machine
	LB        *LB
	// Fields are the scalar values read for this service, with where they
	// are, so an error found later (a unit line fleet would refuse) can
	// name the field that causes it.
	Fields []Field
}

// Field is one scalar value of the spec and its position.
type Field struct {
	Path  string // e.g. services.web.env.BIG
	Line  int
	Value string
}

// Health is the HTTP check the sidekick runs.
type Health struct {
	HTTP     string
	Interval time.Duration
	Timeout  time.Duration
}

// Machine holds fleet placement.
type Machine struct {
	Metadata [][2]string // sorted by key
	Global   bool
}

// LB is an nginx load balancer for one app service.
type LB struct {
	Listen   int
	Upstream string
	Image    string
	// Mode is "dynamic" (pushes to nginx's Lua balancer, no reloads) or
	// "reload" (rewrite and reload; plain nginx).
	Mode string
}

// Service returns the named service or nil.
func (s *Spec) Service(name string) *Service {
	for _, sv := range s.Services {
		if sv.Name == name {
			return sv
		}
	}
	return nil
}

// Error is a spec error at a position.
type Error struct {
	File  string
	Line  int
	Field string
	Msg   string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s:%d: %s: %s", e.File, e.Line, e.Field, e.Msg)
}

// Errors is every error found in one file.
type Errors []*Error

func (es Errors) Error() string {
	var b strings.Builder
	for i, e := range es {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Load reads and parses path.
func Load(path string) (*Spec, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read deploy spec: %w", err)
	}
	return Parse(path, b)
}

var serviceName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
var envKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
var imageRef = regexp.MustCompile(`^[a-z0-9]+([._/:@-][A-Za-z0-9_.-]+)*$`)

type parser struct {
	file   string
	errs   Errors
	fields []Field
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
	p.record(n, field)
	return n.Value, true
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
		if strings.ContainsAny(v.Value, "\n\r") {
			p.errf(v, field+"."+k.Value, "must be one line")
			continue
		}
		p.record(v, field+"."+k.Value)
		out = append(out, [2]string{k.Value, v.Value})
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0] < out[j][0] })
	return out
}

var metaKey = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// Parse parses deploy.yaml content; file names the source in errors.
func Parse(file string, data []byte) (*Spec, error) {
	p := &parser{file: file}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, syntaxError(file, data, err)
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, &Error{File: file, Line: 1, Field: "services", Msg: "the file is empty; it needs a services: mapping"}
	}
	spec := &Spec{File: file, Prefix: Defaults.Prefix, EtcdEndpoints: Defaults.EtcdEndpoints, Registrar: Defaults.Registrar}
	root := doc.Content[0]
	var servicesNode *yaml.Node
	var tlsPaths [3]string
	p.mapping(root, "", map[string]func(k, v *yaml.Node){
		"services": func(k, v *yaml.Node) { servicesNode = v },
		"registry": func(k, v *yaml.Node) {
			p.mapping(v, "registry", map[string]func(k, v *yaml.Node){
				"prefix": func(k, v *yaml.Node) {
					if s, ok := p.str(v, "registry.prefix"); ok {
						if !strings.HasPrefix(s, "/") || (len(s) > 1 && strings.HasSuffix(s, "/")) {
							p.errf(v, "registry.prefix", "%q must start with / and not end with one", s)
						} else {
							spec.Prefix = s
						}
					}
				},
				"etcd_endpoints": func(k, v *yaml.Node) {
					if s, ok := p.str(v, "registry.etcd_endpoints"); ok {
						for _, ep := range strings.Split(s, ",") {
							if !strings.HasPrefix(ep, "https://") && !strings.HasPrefix(ep, "http://") {
								p.errf(v, "registry.etcd_endpoints", "%q is not an http(s):// URL", ep)
							}
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
		},
	})
	spec.Fields = append([]Field(nil), p.fields...)
	if strings.HasPrefix(spec.EtcdEndpoints, "https://") {
		spec.EtcdCACert, spec.EtcdCert, spec.EtcdKey = or(tlsPaths[0], Defaults.EtcdCACert), or(tlsPaths[1], Defaults.EtcdCert), or(tlsPaths[2], Defaults.EtcdKey)
	} else if tlsPaths != [3]string{} {
		p.errf(root, "registry.etcd_cert", "TLS files are given but etcd_endpoints are http://; use https://")
	}
	if servicesNode == nil {
		if len(p.errs) == 0 {
			p.errf(root, "services", "is required: a mapping of service names to their settings")
		}
		return nil, p.errs
	}
	if servicesNode.Kind != yaml.MappingNode || len(servicesNode.Content) == 0 {
		p.errf(servicesNode, "services", "must map at least one service name to its settings")
		return nil, p.errs
	}
	for i := 0; i+1 < len(servicesNode.Content); i += 2 {
		k, v := servicesNode.Content[i], servicesNode.Content[i+1]
		field := "services." + k.Value
		if !serviceName.MatchString(k.Value) {
			p.errf(k, field, "service name %q must be lower-case letters, digits and '-', at most 63 characters", k.Value)
			continue
		}
		if spec.Service(k.Value) != nil {
			p.errf(k, field, "appears twice")
			continue
		}
		spec.Services = append(spec.Services, p.service(k.Value, k, v, field))
	}
	sort.Slice(spec.Services, func(i, j int) bool { return spec.Services[i].Name < spec.Services[j].Name })
	p.crossCheck(spec)
	if len(p.errs) > 0 {
		sort.SliceStable(p.errs, func(i, j int) bool { return p.errs[i].Line < p.errs[j].Line })
		return nil, p.errs
	}
	return spec, nil
}

func (p *parser) service(name string, k, v *yaml.Node, field string) *Service {
	s := &Service{Name: name, Line: k.Line, Instances: Defaults.Instances, TTL: Defaults.TTL, Network: Defaults.Network}
	start := len(p.fields)
	defer func() { s.Fields = append([]Field(nil), p.fields[start:]...) }()
	var instancesNode, portNode, imageNode *yaml.Node
	p.mapping(v, field, map[string]func(k, v *yaml.Node){
		"image": func(_, v *yaml.Node) {
			imageNode = v
			if img, ok := p.str(v, field+".image"); ok {
				if !imageRef.MatchString(img) {
					p.errf(v, field+".image", "%q is not an image reference like example/someapp:1.4", img)
				}
				s.Image = img
			}
		},
		"port": func(_, v *yaml.Node) {
			portNode = v
			s.Port, _ = p.integer(v, field+".port", 1, 65535)
		},
		"instances": func(_, v *yaml.Node) {
			instancesNode = v
			if n, ok := p.integer(v, field+".instances", 1, 1000); ok {
				s.Instances = n
			} else if v.Value == "0" {
				p.errs = p.errs[:len(p.errs)-1]
				p.errf(v, field+".instances", "must be at least 1; to stop a service, remove it or destroy its units")
			}
		},
		"env": func(_, v *yaml.Node) { s.Env = p.pairs(v, field+".env", envKey, "environment variable") },
		"command": func(_, v *yaml.Node) {
			if v.Kind != yaml.SequenceNode {
				p.errf(v, field+".command", "must be a list of arguments")
				return
			}
			for _, a := range v.Content {
				if arg, ok := p.str(a, field+".command"); ok {
					s.Command = append(s.Command, arg)
				}
			}
		},
		"health": func(_, v *yaml.Node) {
			h := &Health{Interval: Defaults.HealthInterval, Timeout: Defaults.HealthTimeout}
			p.mapping(v, field+".health", map[string]func(k, v *yaml.Node){
				"http": func(_, v *yaml.Node) {
					if path, ok := p.str(v, field+".health.http"); ok {
						if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, " \t\n") {
							p.errf(v, field+".health.http", "%q must be a path starting with /", path)
						}
						h.HTTP = path
					}
				},
				"interval": func(_, v *yaml.Node) { h.Interval, _ = p.duration(v, field+".health.interval") },
				"timeout":  func(_, v *yaml.Node) { h.Timeout, _ = p.duration(v, field+".health.timeout") },
			})
			if h.HTTP == "" {
				p.errf(v, field+".health.http", "is required in health (e.g. http: /healthz)")
			}
			if h.Interval > 0 && h.Timeout > 0 {
				if err := registrar.CheckHealth(h.Interval, h.Timeout); err != nil {
					p.errf(v, field+".health.timeout", "%v", err)
				}
			}
			s.Health = h
		},
		"spread": func(_, v *yaml.Node) { s.Spread, _ = p.boolean(v, field+".spread") },
		"ttl": func(_, v *yaml.Node) {
			if d, ok := p.duration(v, field+".ttl"); ok {
				if d < 2*time.Second {
					p.errf(v, field+".ttl", "%s is below etcd's minimum lease of 2s", d)
				}
				s.TTL = d
			}
		},
		"network": func(_, v *yaml.Node) {
			if n, ok := p.str(v, field+".network"); ok {
				s.Network = n
			}
		},
		"machine": func(_, v *yaml.Node) {
			p.mapping(v, field+".machine", map[string]func(k, v *yaml.Node){
				"metadata": func(_, v *yaml.Node) {
					s.Machine.Metadata = p.pairs(v, field+".machine.metadata", metaKey, "metadata key")
				},
				"global": func(_, v *yaml.Node) { s.Machine.Global, _ = p.boolean(v, field+".machine.global") },
			})
		},
		"nginx": func(_, v *yaml.Node) {
			lb := &LB{Listen: Defaults.LBListen, Mode: Defaults.NginxMode}
			p.mapping(v, field+".nginx", map[string]func(k, v *yaml.Node){
				"listen": func(_, v *yaml.Node) {
					if n, ok := p.integer(v, field+".nginx.listen", 1, 65535); ok {
						lb.Listen = n
					}
				},
				"upstream": func(_, v *yaml.Node) {
					if u, ok := p.str(v, field+".nginx.upstream"); ok {
						lb.Upstream = u
					}
				},
				"image": func(_, v *yaml.Node) {
					if img, ok := p.str(v, field+".nginx.image"); ok {
						if !imageRef.MatchString(img) {
							p.errf(v, field+".nginx.image", "%q is not an image reference like nginx:1.27", img)
						}
						lb.Image = img
					}
				},
				"mode": func(_, v *yaml.Node) {
					if m, ok := p.str(v, field+".nginx.mode"); ok {
						if m != "dynamic" && m != "reload" {
							p.errf(v, field+".nginx.mode", "%q is not dynamic (instance changes pushed to nginx's Lua balancer, no reloads; needs nginx with Lua, e.g. OpenResty) or reload (plain nginx, reloaded on changes)", m)
						}
						lb.Mode = m
					}
				},
			})
			if lb.Image == "" {
				lb.Image = Defaults.NginxImage
				if lb.Mode == "dynamic" {
					lb.Image = Defaults.NginxLuaImage
				}
			}
			if lb.Upstream == "" {
				p.errf(v, field+".nginx.upstream", "is required: the app service this load balancer fronts")
			}
			s.LB = lb
		},
	})
	if s.LB != nil {
		for what, n := range map[string]*yaml.Node{"image": imageNode, "port": portNode, "instances": instancesNode} {
			if n != nil {
				p.errf(n, field+"."+what, "a load balancer (nginx:) takes no %s; set it on the app service", what)
			}
		}
		if s.Health != nil || s.Spread || len(s.Env) > 0 || len(s.Command) > 0 {
			p.errf(v, field, "a load balancer (nginx:) takes only nginx and machine")
		}
		return s
	}
	if imageNode == nil {
		p.errf(v, field+".image", "is required for an app service (or give nginx: for a load balancer)")
	}
	if portNode == nil {
		p.errf(v, field+".port", "is required: the port the app listens on inside its container")
	}
	if s.Machine.Global && s.Spread {
		p.errf(v, field+".machine.global", "global services run on every machine; spread does not apply")
	}
	return s
}

// crossCheck checks references between services.
func (p *parser) crossCheck(spec *Spec) {
	for _, s := range spec.Services {
		if s.LB == nil || s.LB.Upstream == "" {
			continue
		}
		target := spec.Service(s.LB.Upstream)
		switch {
		case target == nil:
			p.errs = append(p.errs, &Error{File: p.file, Line: s.Line, Field: "services." + s.Name + ".nginx.upstream",
				Msg: fmt.Sprintf("%q is not a service in this file", s.LB.Upstream)})
		case target.LB != nil:
			p.errs = append(p.errs, &Error{File: p.file, Line: s.Line, Field: "services." + s.Name + ".nginx.upstream",
				Msg: fmt.Sprintf("%q is a load balancer, not an app service", s.LB.Upstream)})
		}
	}
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

// IsErrors reports whether err holds spec errors.
func IsErrors(err error) bool {
	var es Errors
	var e *Error
	return errors.As(err, &es) || errors.As(err, &e)
}
