set -eu; echo '{{.SHA256}}  {{.Staged}}' | sha256sum -c - >/dev/null; sudo mkdir -p /opt/bin; sudo install -m 0755 {{.Staged}} {{.Path}}.new; sudo mv {{.Path}}.new {{.Path}}; rm -f {{.Staged}}
