members=$({{.Curl}} {{.Endpoint}}/v2/members) || { echo "$(hostname): the local etcd does not list its members; not starting this pass" >&2; exit 1; }
urls=$(echo "$members" | grep -o '"clientURLs":\[[^]]*\]' | grep -o 'https\?://[^"]*' || true)
[ -n "$urls" ] || { echo "$(hostname): no member lists a client URL; not starting this pass" >&2; exit 1; }
for u in $urls; do
  {{.Curl}} "$u/health" 2>/dev/null | grep -q '"health":"true"' || { echo "$(hostname): member $u is not healthy; not starting this pass (etcdctl endpoint health --cluster)" >&2; exit 1; }
done
