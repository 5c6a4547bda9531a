#!/usr/bin/env bash
# Idempotent bootstrap for a Debian 12 / Ubuntu machine, run as root.
#
# 1. installs the system packages netshadow drives (Open vSwitch, Mininet, iperf3, ...),
# 2. starts the Open vSwitch daemons with ovs-ctl when they are not running (no systemd needed),
#    with a send buffer large enough for the lab's link queues (see below),
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
  iproute2 procps python3-venv tcpdump libgomp1
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

# The userspace datapath sends every port's packets through one packet socket, made with the
# net.core.wmem_default of its first send; every packet waiting in any link's queue is charged to
# it, and once it is full sends to all ports fail. 208 KiB (the kernel's default) pays for about
# 30-packet link queues; 8 MiB for the lab's full 256 (emulation/lab.py, emulation/dpsock.py).
want_wmem=8388608
if [ "$(sysctl -n net.core.wmem_default)" -lt "$want_wmem" ]; then
  sysctl -qw net.core.wmem_default="$want_wmem" || echo "bootstrap: cannot raise net.core.wmem_default; link queues stay short" >&2
fi
ovs_send_buffer() {
  ss -0 -a -m -n -p 2>/dev/null | awk '/\[0\]:\*/ && /ovs-vswitchd/ {
    if (match($0, /tb[0-9]+/)) { print substr($0, RSTART + 2, RLENGTH - 2); exit } }'
}

# Open vSwitch: no systemd here, so start the daemons ourselves when needed.
if ! ovs-vsctl --timeout=5 show >/dev/null 2>&1; then
  echo "bootstrap: starting Open vSwitch"
  /usr/share/openvswitch/scripts/ovs-ctl start --system-id=random || true
  ovs-vsctl --timeout=10 show >/dev/null
fi
# A running ovs-vswitchd keeps the send socket it made: restart it when that is small, only while
# it has no bridge (a restart would interrupt someone's network).
tb="$(ovs_send_buffer)"
if [ -n "$tb" ] && [ "$tb" -lt "$(sysctl -n net.core.wmem_default)" ]; then
  if [ -z "$(ovs-vsctl --timeout=10 list-br)" ]; then
    echo "bootstrap: restarting ovs-vswitchd for a larger send buffer (it has $tb bytes)"
    /usr/share/openvswitch/scripts/ovs-ctl --no-ovsdb-server restart >/dev/null
    ovs-vsctl --timeout=10 show >/dev/null
  else
    echo "bootstrap: ovs-vswitchd's send buffer is $tb bytes and it has bridges: not restarted; link queues stay short" >&2
  fi
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
