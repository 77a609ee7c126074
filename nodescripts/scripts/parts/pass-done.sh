pass_done() {
  [ "$(sudo cat {{.Marker}} 2>/dev/null)" = "{{.Want}}" ] && return 0
  if {{include "etcd-older-than.sh" .EtcdOlderThan}}; then return 1; fi
  etcd_t=$(systemctl show -p ActiveEnterTimestampMonotonic --value etcd-member.service)
  for u in {{join .Clients " "}}; do
    systemctl is-active -q "$u" || continue
    [ "$(systemctl show -p ActiveEnterTimestampMonotonic --value "$u")" -gt "${etcd_t:-0}" ] || return 1
  done
  mark_done
}
mark_done() { sudo install -d -m 0755 {{.MarkerDir}} && echo "{{.Want}}" | sudo tee {{.Marker}} >/dev/null; }
