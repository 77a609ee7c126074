set -eu
umask 077
{{include "receive-secrets.sh" .Secrets}}
sudo install -d -m 0755 {{.Dir}}
{{/* The pair of root is never kept on a node; an older deployctl installed it. */ -}}
sudo rm -f {{.Dir}}/root.pem {{.Dir}}/root-key.pem
{{range .Files -}}
sudo cp "$staged/{{.Name}}" {{.Path}}.tmp
sudo chown {{.Owner}} {{.Path}}.tmp && sudo chmod {{.Mode}} {{.Path}}.tmp && sudo mv {{.Path}}.tmp {{.Path}}
{{end -}}
