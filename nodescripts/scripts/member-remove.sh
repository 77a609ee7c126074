set -eu
{{include "etcdctl-root.sh" .Etcdctl}}
members=$(e member list) # fails the script when the local member does not answer
id=$(echo "$members" | grep -F {{q .Peer}} | cut -d, -f1)
if [ -z "$id" ]; then
  echo "member {{.Name}} ({{.Peer}}) already removed"
  exit 0
fi
{{include "retried.sh" .Retry}}
