[ "$(sudo stat -c %Y {{.}})" -ge "$(t=$(systemctl show -p ActiveEnterTimestamp --value etcd-member.service); if [ -n "$t" ]; then date -d "$t" +%s 2>/dev/null || echo 0; else echo 0; fi)" ]
