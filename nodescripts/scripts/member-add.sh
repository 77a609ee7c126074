set -eu
{{include "etcdctl-root.sh" .Etcdctl}}
members=$(e member list) # fails the script when the local member does not answer
if echo "$members" | grep -qF {{q .Peer}}; then
  echo "member {{.Name}} ({{.Peer}}) already added"
  exit 0
fi
{{include "retried.sh" .Retry}}
