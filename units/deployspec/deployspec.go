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
	"strings"
	"time"

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

var metaKey = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// NodeEtcdEnv names the environment variable that, when set, replaces the
// default of registry.etcd_endpoints (the URL the registrars on the nodes
// reach etcd at) for a spec that does not set it: `deployctl cluster local
// env` and `deployctl cluster endpoints` export it for a cluster whose etcd
// runs without TLS, so the example deploy.yaml runs unchanged on it.
const NodeEtcdEnv = "DEPLOYCTL_NODE_ETCD_ENDPOINTS"

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
	if v := os.Getenv(NodeEtcdEnv); v != "" {
		if err := checkEndpoints(v); err != nil {
			return nil, fmt.Errorf("$%s (the registrars' etcd when deploy.yaml sets no registry.etcd_endpoints): %w", NodeEtcdEnv, err)
		}
		spec.EtcdEndpoints = v
	}
	root := doc.Content[0]
	var servicesNode *yaml.Node
	p.mapping(root, "", map[string]func(k, v *yaml.Node){
		"services": func(k, v *yaml.Node) { servicesNode = v },
		"registry": func(k, v *yaml.Node) { p.registry(v, spec) },
	})
	p.registryTLS(spec, root)
	spec.Fields = append([]Field(nil), p.fields...)
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

// IsErrors reports whether err holds spec errors.
func IsErrors(err error) bool {
	var es Errors
	var e *Error
	return errors.As(err, &es) || errors.As(err, &e)
}
