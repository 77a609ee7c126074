if sudo test -s {{.ServerCert}}; then echo "$(hostname): TLS files present; a new CA or certificates come by the rotation passes"; exit 0; fi
{{include "tls-install.sh" .}}
