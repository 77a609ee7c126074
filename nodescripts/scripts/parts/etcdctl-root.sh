{{if .TLS -}}
export ETCDCTL_API=3 ETCDCTL_ENDPOINTS={{.Endpoint}} ETCDCTL_CACERT={{.CA}} ETCDCTL_CERT={{.Cert}} ETCDCTL_KEY={{.Key}}
e() { sudo -E /usr/bin/etcdctl "$@"; }
{{else -}}
export ETCDCTL_API=3 ETCDCTL_ENDPOINTS={{.Endpoint}}
e() { /usr/bin/etcdctl "$@"; }
{{end -}}
