"""One scan of a running lab (production or a shadow) outside a load run: every source host
probes its cases at once (:mod:`emulation.scan`: crafted here, sent and captured inside the
hosts, paired here), and each case becomes one result row of :mod:`controller.scans`.

Production is scanned at a low rate by ``netshadow run --scan-prefix``: one probe per case, a
millisecond apart, only to the lab's own hosts. Its cases are the spec's
(:func:`emulation.isolation.expected_cases`) less the UDP ports the policies allow: nothing in
production is started to answer them, and a closed UDP port's ICMP error is dropped by the
tenant's rules (unless the tenant allows ICMP), so silence there proves nothing. A TCP port
answers with SYN/ACK or RST whether or not a service listens; ICMP answers where the tenant
allows it; a denied case that answers is a policy drift whatever its protocol.
"""

from __future__ import annotations

import json
import subprocess
import sys

from topologies import NetworkSpec

from .isolation import ProbeCase, expected_cases

MAX_CASES = 20_000


def production_cases(spec: NetworkSpec) -> list[ProbeCase]:
    return [c for c in expected_cases(spec) if not (c.expected and c.proto == "udp")]


def scan(lab, spec: NetworkSpec, cases: list[ProbeCase], iface_of, count: int = 1,
         timeout_s: float = 1.0) -> list[dict]:
    """Probe ``cases`` in ``lab`` (anything with ``host(name).popen``); ``iface_of(host)`` names a
    host's interface. One dict per case: src, dst, proto, port, expected, reachable, rtt_ms."""
    from . import scan as scanner

    if not 1 <= count <= 10 or len(cases) > MAX_CASES:
        raise ValueError(f"count: 1-10 probes per case, at most {MAX_CASES} cases "
                         f"(got {count}, {len(cases)})")
    by_src: dict[str, list[ProbeCase]] = {}
    for c in cases:
        by_src.setdefault(c.src, []).append(c)
    running = []
    try:
        for src, cs in by_src.items():
            h = spec.host(src)
            targets = [{"mac": spec.host(c.dst).mac, "ip": spec.host(c.dst).ip, "proto": c.proto,
                        "port": c.port} for c in cs]
            probes = scanner.craft(h.mac, h.ip, targets, count=count)
            p = lab.host(src).popen([sys.executable, "-m", "emulation.scan", "--iface", iface_of(src),
                                     "--timeout", str(timeout_s)],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            p.stdin.write(json.dumps({"frames": [f.hex() for f in probes.frames], "ip": h.ip,
                                      "expect": sum(count for c in cs if c.expected)}) + "\n")
            p.stdin.close()
            running.append((p, cs, probes))
        out = []
        for p, cs, probes in running:
            got = json.loads(p.stdout.read() or "{}")
            p.wait(timeout=60)
            if "sent" not in got:
                raise RuntimeError(f"scan: the scanner in {cs[0].src} exited {p.returncode} "
                                   "without a result")
            rtts = scanner.match(probes, len(cs), got["sent"],
                                 [(bytes.fromhex(x), t) for x, t in got["replies"]])
            for c, r in zip(cs, rtts, strict=True):
                out.append({"src": c.src, "dst": c.dst, "proto": c.proto, "port": c.port,
                            "expected": c.expected, "reachable": bool(r),
                            "rtt_ms": round(max(0.0, r[len(r) // 2]), 3) if r else None})
        return out
    finally:
        for p, _, _ in running:
            if p.poll() is None:
                p.kill()
                p.wait()
