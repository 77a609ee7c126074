set -u
sudo systemctl stop fleet.service fleet.socket || true
echo "fleet stopped: its units move to the other machines"
