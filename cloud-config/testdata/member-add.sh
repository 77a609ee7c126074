set -eu
if curl -fsS http://127.0.0.1:2379/v2/members | grep -qF '"http://10.0.0.4:2380"'; then
  echo "member core-4 (http://10.0.0.4:2380) already added"
else
  curl -fsS -o /dev/null -X POST http://127.0.0.1:2379/v2/members -H 'Content-Type: application/json' -d '{"peerURLs":["http://10.0.0.4:2380"]}'
  echo "member core-4 (http://10.0.0.4:2380) added"
fi
