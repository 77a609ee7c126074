v2() { {{.Curl}} -o /dev/null -X PUT -H 'Content-Type: application/json' {{.Endpoint}}/v2/auth/"$1" -d "$2"; }
v2get() { {{.Curl}} {{.Endpoint}}/v2/auth/"$1" 2>/dev/null; }
pw() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
{{range .Roles -}}
v2get roles/{{.Name}} >/dev/null || v2 roles/{{.Name}} '{"role":"{{.Name}}","permissions":{"kv":{"read":["{{.Prefix}}"],"write":["{{.Prefix}}"]}}}'
{{/* A role set up with the pattern that also matched siblings: the new grant first, then the old one revoked. */ -}}
v2get roles/{{.Name}} | grep -qF '"{{.Prefix}}"' || v2 roles/{{.Name}} '{"role":"{{.Name}}","grant":{"kv":{"read":["{{.Prefix}}"],"write":["{{.Prefix}}"]}}}'
if v2get roles/{{.Name}} | grep -qF '"{{.OldPrefix}}"'; then v2 roles/{{.Name}} '{"role":"{{.Name}}","revoke":{"kv":{"read":["{{.OldPrefix}}"],"write":["{{.OldPrefix}}"]}}}'; fi
{{end -}}
{{range .Users -}}
v2get users/{{.}} >/dev/null || v2 users/{{.}} "{\"user\":\"{{.}}\",\"password\":\"$(pw)\"}"
{{end -}}
{{range .Roles -}}
v2get users/{{.Name}} | grep -q '"role":"{{.Name}}"' || v2 users/{{.Name}} '{"user":"{{.Name}}","grant":["{{.Name}}"]}'
{{end -}}
{{/* The guest role is what etcd gives a request with no user it knows, by default read-write on everything: it keeps nothing. */ -}}
if v2get roles/guest >/dev/null; then
  v2get roles/guest | grep -qF '"/*"' && v2 roles/guest '{"role":"guest","revoke":{"kv":{"read":["/*"],"write":["/*"]}}}'
else
  v2 roles/guest '{"role":"guest"}'
fi
v2get enable | grep -q '"enabled":true' || v2 enable ''
