"""`netshadow check-config`: validate a network spec."""

from __future__ import annotations

from topologies import load_spec

from .common import EXIT_OK, spec_arg


def cmd_check_config(a) -> int:
    from controller.tenancy import compile_network

    spec = load_spec(a.spec)

    rules = compile_network(spec).rule_count()
    print(f"{a.spec}: ok - {len(spec.switches)} switches, {len(spec.links)} links, "
          f"{len(spec.hosts)} hosts, {len(spec.tenants)} tenants, {rules} flow rules")
    return EXIT_OK


def register(sub) -> None:
    p = sub.add_parser("check-config", help="validate a network spec (exit 0 valid, 2 invalid)")
    p.add_argument("spec", type=spec_arg)
    p.set_defaults(func=cmd_check_config)
