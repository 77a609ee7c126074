set -eu
umask 077
DEPLOYCTL_ROOT=$(sudo mktemp -d /run/deployctl-secrets.XXXXXX)
trap 'sudo rm -rf "$DEPLOYCTL_ROOT"' EXIT
sudo sh -c 'cd "$1" && umask 077 && exec awk '\''/^#deployctl-secret [a-z0-9][a-z0-9.-]*$/ { f = $2; next } f != "" { print > f }'\''' deployctl-secrets "$DEPLOYCTL_ROOT"
for f in root.pem root-key.pem; do
  sudo test -s "$DEPLOYCTL_ROOT/$f" || { echo "$(hostname): $f did not arrive on standard input" >&2; exit 1; }
done
echo ran
