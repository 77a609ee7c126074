package deployspec

import (
	"strings"
	"testing"
	"time"
)

func TestParseExample(t *testing.T) {
	s, err := Load("../../examples/deploy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	app := s.Service("someapp")
	if app == nil || app.Port != 3000 || app.Instances != 4 || !app.Spread || app.Health.HTTP != "/healthz" || app.Health.Interval != 5*time.Second {
		t.Fatalf("someapp = %+v", app)
	}
	if len(app.Env) != 1 || app.Env[0] != [2]string{"NODE_ENV", "production"} {
		t.Fatalf("env = %v", app.Env)
	}
	lb := s.Service("lb")
	if lb == nil || lb.LB == nil || lb.LB.Upstream != "someapp" || lb.LB.Listen != 80 || lb.Machine.Metadata[0] != [2]string{"role", "edge"} {
		t.Fatalf("lb = %+v", lb)
	}
	if app.TTL != Defaults.TTL || s.Prefix != "/services" {
		t.Fatal("defaults not applied")
	}
}

func TestParseErrorsNameLineAndField(t *testing.T) {
	cases := []struct {
		name, yaml, want string
	}{
		{"unknown key", "services:\n  web:\n    image: a/b:1\n    port: 80\n    imgae: x\n", "f.yaml:5: services.web.imgae: unknown key"},
		{"port range", "services:\n  web:\n    image: a/b:1\n    port: 70000\n", "f.yaml:4: services.web.port: 70000 is out of range"},
		{"zero instances", "services:\n  web:\n    image: a/b:1\n    port: 80\n    instances: 0\n", "f.yaml:5: services.web.instances: must be at least 1"},
		{"bad name", "services:\n  Web_1:\n    image: a/b:1\n    port: 80\n", "f.yaml:2: services.Web_1: service name"},
		{"lb to nothing", "services:\n  lb:\n    nginx: {upstream: nope}\n", "f.yaml:2: services.lb.nginx.upstream: \"nope\" is not a service"},
		{"lb without upstream", "services:\n  lb:\n    nginx: {listen: 80}\n", "f.yaml:3: services.lb.nginx.upstream: is required"},
		{"lb to lb", "services:\n  a:\n    nginx: {upstream: b}\n  b:\n    nginx: {upstream: a}\n", "is a load balancer"},
		{"missing image", "services:\n  web:\n    port: 80\n", "f.yaml:3: services.web.image: is required"},
		{"missing port", "services:\n  web:\n    image: a/b:1\n", "services.web.port: is required"},
		{"port string", "services:\n  web:\n    image: a/b:1\n    port: \"80\"\n", "services.web.port: must be a whole number"},
		{"bad env key", "services:\n  web:\n    image: a/b:1\n    port: 80\n    env: {1X: y}\n", "services.web.env.1X"},
		{"health path", "services:\n  web:\n    image: a/b:1\n    port: 80\n    health: {http: healthz}\n", "services.web.health.http"},
		{"health timeout", "services:\n  web:\n    image: a/b:1\n    port: 80\n    health: {http: /h, interval: 1s, timeout: 2s}\n", "services.web.health.timeout"},
		{"no services", "registry: {prefix: /services/x}\n", "services: is required"},
		{"top-level unknown", "servics: {}\n", "f.yaml:1: .servics: unknown key"},
		{"empty", "", "the file is empty"},
		{"lb with port", "services:\n  web:\n    image: a/b:1\n    port: 80\n  lb:\n    nginx: {upstream: web}\n    port: 80\n", "f.yaml:7: services.lb.port: a load balancer"},
		{"bad prefix", "registry: {prefix: services}\nservices:\n  web: {image: a/b:1, port: 80}\n", "registry.prefix"},
		{"prefix outside the registrar role's, with TLS", "registry:\n  prefix: /apps\nservices:\n  web: {image: a/b:1, port: 80}\n", "f.yaml:2: registry.prefix: \"/apps\" is outside /services/"},
		{"short ttl", "services:\n  web: {image: a/b:1, port: 80, ttl: 1s}\n", "services.web.ttl"},
		{"duplicate", "services:\n  web: {image: a/b:1, port: 80}\n  web: {image: a/b:1, port: 80}\n", "appears twice"},
		{"spread and global", "services:\n  web: {image: a/b:1, port: 80, spread: true, machine: {global: true}}\n", "spread does not apply"},
		{"instances and global", "services:\n  web:\n    image: a/b:1\n    port: 80\n    instances: 2\n    machine: {global: true}\n", "f.yaml:5: services.web.instances: a global service runs one instance on every matching machine"},
		// Issue 35: a control character would reach a unit, where text after
		// a NUL or a newline becomes a directive of its own.
		{"NUL in env", "services:\n  web:\n    image: a/b:1\n    port: 80\n    env: {A: \"x\\0ExecStartPost=/bin/sh -c id\"}\n", "f.yaml:5: services.web.env.A: has the control character U+0000"},
		{"escape in a command argument", "services:\n  web:\n    image: a/b:1\n    port: 80\n    command: [serve, \"a\\eb\"]\n", "services.web.command: has the control character U+001B"},
		{"tab in network", "services:\n  web:\n    image: a/b:1\n    port: 80\n    network: \"br\\tx\"\n", "services.web.network: has the control character U+0009"},
		{"NUL in the health path", "services:\n  web:\n    image: a/b:1\n    port: 80\n    health: {http: \"/h\\0x\"}\n", "services.web.health.http: has the control character U+0000"},
		{"NUL in machine metadata", "services:\n  web:\n    image: a/b:1\n    port: 80\n    machine: {metadata: {role: \"a\\0b\"}}\n", "services.web.machine.metadata.role: has the control character"},
		{"C1 control in env", "services:\n  web:\n    image: a/b:1\n    port: 80\n    env: {A: \"x\\x85y\"}\n", "services.web.env.A: has the control character U+0085"},
		{"prefix cleaned elsewhere", "registry: {prefix: /services/../x}\nservices:\n  web: {image: a/b:1, port: 80}\n", "f.yaml:1: registry.prefix: \"/services/../x\" has an empty, \".\" or \"..\" segment"},
		{"prefix with an empty segment", "registry: {prefix: /services//x}\nservices:\n  web: {image: a/b:1, port: 80}\n", "registry.prefix"},
		{"host network", "services:\n  web:\n    image: a/b:1\n    port: 80\n    network: host\n", "f.yaml:5: services.web.network: \"host\" gives the app no address of its own"},
		{"no network", "services:\n  web:\n    image: a/b:1\n    port: 80\n    network: none\n", "services.web.network: \"none\""},
		{"another container's network", "services:\n  web:\n    image: a/b:1\n    port: 80\n    network: \"container:db\"\n", "services.web.network: \"container:db\" is not a Docker network name"},
		{"spread and global, on global's line", "services:\n  web:\n    image: a/b:1\n    port: 80\n    spread: true\n    machine:\n      global: true\n", "f.yaml:7: services.web.machine.global"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("f.yaml", []byte(c.yaml))
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not contain %q", err, c.want)
			}
		})
	}
}

// A prefix outside /services/ is fine without TLS, or with a certificate of
// the user's own; under /services/ it is fine with the node PKI's.
// Issue 33: the cluster's environment says where the registrars reach etcd
// when the spec does not, so the example runs unchanged on a plain
// cluster; a spec's own value wins, and a bad value names the variable.
func TestNodeEtcdFromTheEnvironment(t *testing.T) {
	yaml := "services:\n  web: {image: a/b:1, port: 80}\n"
	t.Setenv(NodeEtcdEnv, "http://127.0.0.1:2379")
	s, err := Parse("f.yaml", []byte(yaml))
	if err != nil || s.EtcdEndpoints != "http://127.0.0.1:2379" || s.EtcdCACert != "" {
		t.Fatalf("from the environment: %v %q %q", err, s.EtcdEndpoints, s.EtcdCACert)
	}
	s, err = Parse("f.yaml", []byte(yaml+"registry: {etcd_endpoints: \"https://10.0.0.1:2379\"}\n"))
	if err != nil || s.EtcdEndpoints != "https://10.0.0.1:2379" {
		t.Fatalf("the spec's own: %v %q", err, s.EtcdEndpoints)
	}
	t.Setenv(NodeEtcdEnv, "127.0.0.1:2379")
	if _, err := Parse("f.yaml", []byte(yaml)); err == nil || !strings.Contains(err.Error(), "$"+NodeEtcdEnv) {
		t.Fatalf("bad value: %v", err)
	}
}

func TestPrefixWithTLS(t *testing.T) {
	for _, y := range []string{
		"registry: {prefix: /services/team-a}\nservices:\n  web: {image: a/b:1, port: 80}\n",
		"registry: {prefix: /apps, etcd_endpoints: http://127.0.0.1:2379}\nservices:\n  web: {image: a/b:1, port: 80}\n",
		"registry: {prefix: /apps, etcd_cert: /etc/x/apps.pem, etcd_key: /etc/x/apps-key.pem}\nservices:\n  web: {image: a/b:1, port: 80}\n",
	} {
		if _, err := Parse("f.yaml", []byte(y)); err != nil {
			t.Errorf("%q: %v", y, err)
		}
	}
}

func TestEveryErrorReported(t *testing.T) {
	_, err := Parse("f.yaml", []byte("services:\n  web:\n    image: a/b:1\n    port: 0\n    bogus: 1\n"))
	es, ok := err.(Errors)
	if !ok || len(es) != 2 {
		t.Fatalf("want 2 errors, got %v", err)
	}
	if es[0].Line != 4 || es[1].Line != 5 {
		t.Fatalf("errors not in line order: %v", err)
	}
}

// Finding 5 of issue 11: a syntax error is placed on the line that breaks
// the file (yaml.v3 itself says "line 1" for a bad indent on line 4).
func TestYAMLSyntaxErrorLine(t *testing.T) {
	cases := map[string]string{
		"services:\n  web:\n    image: a/b:1\n   port: 3\n":                     "bad.yaml:4: yaml:",
		"services:\n  web:\n    image: a/b:1\n    port: 3\n      x: 1\n":        "bad.yaml:5: yaml:",
		"services:\n  web:\n    image: \"a/b:1\n    port: 3\n":                  "bad.yaml:3: yaml:",
		"services:\n  web:\n    image: a/b:1\n    env: [a,\n      b]\n  x: {\n": "bad.yaml:6: yaml:",
	}
	for in, want := range cases {
		_, err := Parse("bad.yaml", []byte(in))
		if !IsErrors(err) || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%q: got %v, want prefix %q", in, err, want)
		}
	}
}
