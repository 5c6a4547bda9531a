#!/usr/bin/env bash
# Idempotent bootstrap for a Debian 12 / Ubuntu machine, run as root.
#
# 1. installs the system packages netshadow drives (Open vSwitch, Mininet, iperf3, ...),
# 2. starts the Open vSwitch daemons with ovs-ctl when they are not running (no systemd needed),
# 3. creates .venv and installs netshadow into it with the extras named in $NETSHADOW_EXTRAS.
#
# Running it twice does nothing the second time except check.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"

extras="${NETSHADOW_EXTRAS:-all,dev}"
venv="${NETSHADOW_VENV:-$here/.venv}"
python="${PYTHON:-python3}"

apt_packages=(
  openvswitch-switch mininet iperf3 ethtool iputils-ping tcpreplay cgroup-tools
  iproute2 procps python3-venv tcpdump
)

if [ "$(id -u)" -ne 0 ]; then
  echo "bootstrap: must run as root (Open vSwitch and Mininet need it)" >&2
  exit 1
fi

missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "bootstrap: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# Open vSwitch: no systemd here, so start the daemons ourselves when needed.
if ! ovs-vsctl --timeout=5 show >/dev/null 2>&1; then
  echo "bootstrap: starting Open vSwitch"
  /usr/share/openvswitch/scripts/ovs-ctl start --system-id=random || true
  ovs-vsctl --timeout=10 show >/dev/null
fi

# Python environment.
if [ ! -x "$venv/bin/python" ]; then
  echo "bootstrap: creating $venv"
  "$python" -m venv "$venv"
fi
stamp="$venv/.netshadow-installed"
want="$(cat setup.cfg pyproject.toml | sha256sum | cut -d' ' -f1) $extras"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "bootstrap: installing netshadow[$extras] into $venv"
  "$venv/bin/pip" install -q --upgrade pip
  "$venv/bin/pip" install -q -e ".[$extras]"
  echo "$want" > "$stamp"
fi
echo "bootstrap: ready ($venv)"
