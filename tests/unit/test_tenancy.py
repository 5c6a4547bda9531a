"""The compiled rules, executed on the fake OpenFlow network, implement exactly the spec's policy."""

from __future__ import annotations

import pytest

from controller.cookies import APP_ARP, APP_DENY, DIR_FORWARD, DIR_REVERSE, Cookie
from controller.tenancy import app_number, compile_network, tenant_number
from emulation.isolation import expected_cases
from tests.fakeof import FakeOFNetwork, arp_request, ip_packet
from topologies import bundled, load_spec


@pytest.fixture(scope="module")
def default():
    spec = load_spec(bundled("default"))
    return spec, compile_network(spec)


def reachable(net: FakeOFNetwork, spec, src, dst, proto, port) -> bool:
    """A request reaches ``dst`` and (for TCP/UDP/ICMP) its reply reaches ``src`` back."""
    if proto == "icmp":
        fwd, rev = ip_packet(spec, src, dst, "icmp"), ip_packet(spec, dst, src, "icmp")
    else:
        fwd = ip_packet(spec, src, dst, proto, 40000, port)
        rev = ip_packet(spec, dst, src, proto, port, 40000)
    return net.send(src, fwd).delivered_to == dst and net.send(dst, rev).delivered_to == src


def test_policy_matrix_matches_spec(default):
    spec, compiled = default
    net = FakeOFNetwork(spec, compiled.rules)
    cases = expected_cases(spec)
    assert len(cases) == 8 * 7 * 7  # 56 ordered pairs x (icmp + 6 application ports)
    wrong = [c for c in cases if reachable(net, spec, c.src, c.dst, c.proto, c.port) != c.expected]
    assert wrong == []
    assert sum(c.expected for c in cases) == 25


def test_denied_traffic_hits_the_deny_rule(default):
    spec, compiled = default
    net = FakeOFNetwork(spec, compiled.rules)
    # h1 (red) -> h5 (blue) on port 80: both tenants have a 'web' app, but never across tenants
    t = net.send("h1", ip_packet(spec, "h1", "h5", "tcp", 40000, 80))
    assert t.delivered_to is None and t.dropped_at == "s1"
    assert Cookie.decode(t.cookies[-1]).app == APP_DENY
    # h2 -> h1 web is not in red's policies (only h1 -> h2)
    assert net.send("h2", ip_packet(spec, "h2", "h1", "tcp", 40000, 80)).delivered_to is None


def test_spoofed_source_is_dropped(default):
    spec, compiled = default
    net = FakeOFNetwork(spec, compiled.rules)
    pkt = ip_packet(spec, "h1", "h2", "tcp", 40000, 80)
    assert net.send("h1", pkt).delivered_to == "h2"
    assert net.send("h4", pkt).delivered_to is None  # h4 claims to be h1
    pkt = dict(pkt, eth_src=spec.host("h4").mac)
    assert net.send("h1", pkt).delivered_to is None  # h1 with a foreign MAC


def test_arp_goes_only_to_the_target_inside_the_tenant(default):
    spec, compiled = default
    net = FakeOFNetwork(spec, compiled.rules)
    t = net.send("h1", arp_request(spec, "h1", spec.host("h2").ip))
    assert t.delivered_to == "h2"
    assert Cookie.decode(t.cookies[0]) == Cookie(tenant_number(spec, "red"), APP_ARP)
    assert net.send("h1", arp_request(spec, "h1", spec.host("h4").ip)).delivered_to is None
    assert net.send("h1", arp_request(spec, "h1", "10.0.0.99")).delivered_to is None


def test_cookies_name_tenant_app_and_direction(default):
    spec, compiled = default
    net = FakeOFNetwork(spec, compiled.rules)
    red, web = tenant_number(spec, "red"), app_number(spec, "red", "web")
    fwd = net.send("h1", ip_packet(spec, "h1", "h2", "tcp", 40000, 80))
    rev = net.send("h2", ip_packet(spec, "h2", "h1", "tcp", 80, 40000))
    assert Cookie.decode(fwd.cookies[0]) == Cookie(red, web, DIR_FORWARD)
    assert Cookie.decode(rev.cookies[0]) == Cookie(red, web, DIR_REVERSE)


def test_paths_are_symmetric_shortest_and_spread(default):
    spec, compiled = default
    for (a, b), path in compiled.paths.items():
        assert compiled.paths[(b, a)] == tuple(reversed(path))
    # h1 (s1) and h2 (s4) have two 2-hop paths; the packet follows the compiled one
    net = FakeOFNetwork(spec, compiled.rules)
    t = net.send("h1", ip_packet(spec, "h1", "h2", "icmp"))
    assert tuple(t.hops) == compiled.paths[("h1", "h2")]
    assert len(t.hops) == 3


def test_rule_keys_are_unique_per_switch(default):
    _, compiled = default
    for rules in compiled.rules.values():
        keys = [r.key for r in rules]
        assert len(keys) == len(set(keys))


def test_abilene_full_mesh(tmp_path):
    spec = load_spec(bundled("abilene"))
    net = FakeOFNetwork(spec, compile_network(spec).rules)
    hosts = [h.name for h in spec.hosts]
    for s in hosts:
        for d in hosts:
            if s != d:
                assert reachable(net, spec, s, d, "tcp", 5001), (s, d)
                assert reachable(net, spec, s, d, "udp", 5002), (s, d)
