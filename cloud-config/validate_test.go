package cloudconfig_test

import (
	"os"
	"strings"
	"testing"

	cloudconfig "github.com/deployctl/deployctl/cloud-config"
)

func TestValidateReferenceExamples(t *testing.T) {
	classic, _ := os.ReadFile("testdata/reference-coreos.yaml")
	r := cloudconfig.Validate(classic)
	got := r.String()
	for _, want := range []string{
		`line 25: warning: deprecated key "etcd2" (etcd2 is no longer shipped in Container Linux)`,
		`line 39: warning: deprecated key "fleet" (fleet is no longer shipped in Container Linux)`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("classic example: missing %q in\n%s", want, got)
		}
	}
	flatcar, _ := os.ReadFile("testdata/reference-flatcar.yaml")
	if r := cloudconfig.Validate(flatcar); len(r.Entries) != 0 {
		t.Errorf("flatcar example: want no entries, got\n%s", r)
	}
}

func TestValidateBrokenInputs(t *testing.T) {
	cases := []struct {
		name, doc, want string
	}{
		{"no header", "hostname: x\n", `line 1: error: must be "#cloud-config"`},
		{"yaml syntax", "#cloud-config\na: b\n c: d\n", "line 3: error: mapping values are not allowed"},
		{"unknown key", "#cloud-config\nbogus: 1\n", `line 2: warning: unrecognized key "bogus"`},
		{"write_files under coreos", "#cloud-config\ncoreos:\n  write_files: []\n", `line 3: info: write_files doesn't belong under coreos`},
		{"hyphenated", "#cloud-config\ncoreos:\n  update:\n    reboot-strategy: off\n", `line 4: error: key "reboot-strategy": Flatcar ignores hyphenated keys`},
		{"reboot strategy", "#cloud-config\ncoreos:\n  update:\n    reboot_strategy: maybe\n", "line 4: error: invalid value maybe"},
		{"unit command", "#cloud-config\ncoreos:\n  units:\n    - name: docker.service\n      command: begin\n", "line 5: error: invalid value begin"},
		{"bool type", "#cloud-config\ncoreos:\n  units:\n    - name: docker.service\n      enable: 4\n", `line 5: error: incorrect type for "enable" (want bool)`},
		{"permissions", "#cloud-config\nwrite_files:\n  - path: /etc/x\n    permissions: '0999'\n", "line 4: error: invalid value 0999"},
		{"encoding", "#cloud-config\nwrite_files:\n  - path: /etc/x\n    encoding: b64\n    content: '!!!'\n", `line 5: error: content cannot be decoded as "b64"`},
		{"bad encoding name", "#cloud-config\nwrite_files:\n  - path: /etc/x\n    encoding: rot13\n", "line 4: error: invalid value rot13"},
		{"usr", "#cloud-config\nwrite_files:\n  - path: /usr/bin/x\n", "line 3: error: file cannot be written to a read-only filesystem"},
		{"relative path", "#cloud-config\nwrite_files:\n  - path: etc/x\n", "line 3: error: path \"etc/x\" must be absolute"},
		{"proxy", "#cloud-config\ncoreos:\n  etcd2:\n    proxy: maybe\n", "line 4: error: invalid value maybe"},
		{"discovery", "#cloud-config\ncoreos:\n  etcd2:\n    discovery: not-a-url\n", "line 4: warning: discovery URL is not valid"},
		{"manage_etc_hosts", "#cloud-config\nmanage_etc_hosts: yes-please\n", "line 2: error: invalid value yes-please"},
		{"unknown unit", "#cloud-config\ncoreos:\n  units:\n    - name: mystery.service\n      command: start\n", `line 4: error: unit "mystery.service" has no content`},
		{"unit without name", "#cloud-config\ncoreos:\n  units:\n    - command: start\n", "line 4: error: unit has no name"},
		{"drop-in suffix", "#cloud-config\ncoreos:\n  units:\n    - name: docker.service\n      drop_ins:\n        - name: 10-x\n          content: \"[Unit]\"\n", `line 6: error: drop-in "10-x" of "docker.service" must end in .conf`},
		{"public etcd", "#cloud-config\ncoreos:\n  units:\n    - name: etcd-member.service\n      drop_ins:\n        - name: 20.conf\n          content: |\n            [Service]\n            Environment=\"ETCD_LISTEN_PEER_URLS=http://$public_ipv4:2380\"\n", "line 9: error: ETCD_LISTEN_PEER_URLS uses $public_ipv4"},
		{"public flannel", "#cloud-config\ncoreos:\n  flannel:\n    interface: $public_ipv4\n", "line 4: error: flannel interface uses $public_ipv4"},
		{"endpoint mismatch", "#cloud-config\ncoreos:\n  flannel:\n    etcd_endpoints: http://127.0.0.1:4001\n  units:\n    - name: etcd-member.service\n      drop_ins:\n        - name: 20.conf\n          content: |\n            [Service]\n            Environment=\"ETCD_LISTEN_CLIENT_URLS=http://0.0.0.0:2379\"\n", "line 4: error: coreos.flannel.etcd_endpoints: http://127.0.0.1:4001 does not match"},
		{"scheme mismatch", "#cloud-config\ncoreos:\n  locksmith:\n    endpoint: https://127.0.0.1:2379\n  etcd2:\n    listen_client_urls: http://0.0.0.0:2379\n", "line 4: error: coreos.locksmith.endpoint"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := cloudconfig.Validate([]byte(c.doc))
			if !strings.Contains(r.String(), c.want) {
				t.Fatalf("want %q in\n%s", c.want, r)
			}
		})
	}
}

func TestValidateAccepts(t *testing.T) {
	for _, doc := range []string{"", "#!/bin/sh\necho hi\n", `{"ignition":{"version":"3.0.0"}}`, "#cloud-config\n", "#cloud-config\nhostname: x\n"} {
		if r := cloudconfig.Validate([]byte(doc)); len(r.Entries) != 0 {
			t.Errorf("%q: %s", doc, r)
		}
	}
}

func FuzzValidate(f *testing.F) {
	for _, p := range []string{"testdata/reference-coreos.yaml", "testdata/reference-flatcar.yaml", "testdata/cluster-3-node-1.yaml"} {
		b, _ := os.ReadFile(p)
		f.Add(string(b))
	}
	f.Add("#cloud-config\ncoreos: {units: [{name: a, drop_ins: [{}]}], etcd2: {listen_client_urls: ':::'}}\n")
	f.Fuzz(func(t *testing.T, doc string) {
		r := cloudconfig.Validate([]byte(doc))
		for _, e := range r.Entries {
			if e.Line < 1 || (e.Kind != "error" && e.Kind != "warning" && e.Kind != "info") {
				t.Fatalf("bad entry %+v", e)
			}
		}
	})
}

// Where Flatcar accepts a value and reads it as intended, the validator
// warns instead of failing; errors point at the line with the bad value.
func TestValidatorMatchesFlatcarLeniency(t *testing.T) {
	doc := "#cloud-config\ncoreos:\n  units:\n    - name: a.service\n      enable: yes\n      command: start\n      content: |\n        [Service]\n        ExecStart=/bin/true\nwrite_files:\n  - path: /etc/x\n    encoding: b64\n    content: \"not base64!!\"\n"
	r := cloudconfig.Validate([]byte(doc))
	var warnEnable, errB64 bool
	for _, e := range r.Entries {
		if e.Line == 5 && e.Kind == cloudconfig.KindWarning && strings.Contains(e.Message, "read as true") {
			warnEnable = true
		}
		if e.Kind == cloudconfig.KindError && strings.Contains(e.Message, "cannot be decoded") {
			errB64 = e.Line == 13
		}
		if e.Kind == cloudconfig.KindError && strings.Contains(e.Message, "enable") {
			t.Errorf("enable: yes is an error: %s", e)
		}
	}
	if !warnEnable || !errB64 {
		t.Fatalf("want a warning on line 5 and the base64 error on line 13 (content):\n%s", r)
	}
	// A quoted "yes" is a string to Flatcar too: still an error.
	r = cloudconfig.Validate([]byte(strings.Replace(doc, "enable: yes", `enable: "yes"`, 1)))
	if !r.HasErrors() {
		t.Fatal(`enable: "yes" accepted`)
	}
}
