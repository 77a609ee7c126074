systemctl is-active -q flanneld.service flannel-docker-opts.service docker.service && . {{.SubnetFile}} && ip -4 addr show docker0 2>/dev/null | grep -qF "${FLANNEL_SUBNET%/*}"
