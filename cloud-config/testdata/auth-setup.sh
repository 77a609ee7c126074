set -eu
export ETCDCTL_API=3 ETCDCTL_ENDPOINTS=https://127.0.0.1:2379 ETCDCTL_CACERT=/etc/ssl/etcd/ca.pem ETCDCTL_CERT=/etc/ssl/etcd/root.pem ETCDCTL_KEY=/etc/ssl/etcd/root-key.pem
e() { sudo -E /usr/bin/etcdctl "$@"; }
for i in $(seq 1 60); do e endpoint health >/dev/null 2>&1 && break; sleep 2; done
e user get root >/dev/null 2>&1 || e user add root --no-password
e user grant-role root root
e role get registrar >/dev/null 2>&1 || e role add registrar
e role grant-permission registrar --prefix=true readwrite /services/
e user get registrar >/dev/null 2>&1 || e user add registrar --no-password
e user grant-role registrar registrar
e auth status 2>/dev/null | grep -q 'Authentication Status: true' || e auth enable
