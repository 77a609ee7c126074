set -eu
{{include "etcdctl-root.sh" .Etcdctl}}
for i in $(seq 1 60); do e endpoint health >/dev/null 2>&1 && break; sleep 2; done
e user get root >/dev/null 2>&1 || e user add root --no-password
e user grant-role root root
e role get registrar >/dev/null 2>&1 || e role add registrar
e role grant-permission registrar --prefix=true readwrite {{.RegistrarKeyPrefix}}
e user get registrar >/dev/null 2>&1 || e user add registrar --no-password
e user grant-role registrar registrar
e auth status 2>/dev/null | grep -q 'Authentication Status: true' || e auth enable
{{include "v2-auth.sh" .V2}}
