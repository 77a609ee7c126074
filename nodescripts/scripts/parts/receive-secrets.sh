{{.Var}}=$(sudo mktemp -d {{.RunDir}}/deployctl-secrets.XXXXXX)
trap 'sudo rm -rf "${{.Var}}"' EXIT
sudo sh -c 'cd "$1" && umask 077 && exec awk '\''/^{{.Header}} [a-z0-9][a-z0-9.-]*$/ { f = $2; next } f != "" { print > f }'\''' deployctl-secrets "${{.Var}}"
for f in {{join .Names " "}}; do
  sudo test -s "${{.Var}}/$f" || { echo "$(hostname): $f did not arrive on standard input" >&2; exit 1; }
done
