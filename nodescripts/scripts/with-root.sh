set -eu
umask 077
{{include "receive-secrets.sh" .}}
