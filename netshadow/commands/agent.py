"""`netshadow agent`: a host agent reporting CPU, memory and network I/O."""

from __future__ import annotations

from pathlib import Path

from ..errors import error
from .common import EXIT_INVALID


def cmd_agent(a) -> int:
    from controller.rest import load_token

    from ..agent import AgentSettings
    from ..agent import main as agent_main

    try:
        s = AgentSettings(a.controller, a.host, a.interval, Path(a.spool) if a.spool else None,
                          a.netns_pid, a.cgroup, load_token(a.token_file))
    except (OSError, ValueError) as e:
        error(f"netshadow agent: {e}")
        return EXIT_INVALID
    return agent_main(s)


def register(sub) -> None:
    p = sub.add_parser("agent", help="report a host's CPU, memory and network I/O to the controller")
    p.add_argument("--controller", required=True, help="controller REST base URL, e.g. http://10.0.0.254:8080")
    p.add_argument("--host", required=True, help="this host's name in the spec")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between readings")
    p.add_argument("--spool", help="spool file (default /var/lib/netshadow/agent-HOST.db)")
    p.add_argument("--netns-pid", type=int, help="measure the network namespace of this process "
                                                 "instead of the agent's own")
    p.add_argument("--cgroup", help="cgroup path of the host (cpuacct/memory), if it has one")
    p.add_argument("--token-file", help="REST bearer token file (else $NETSHADOW_API_TOKEN[_FILE])")
    p.set_defaults(func=cmd_agent)
