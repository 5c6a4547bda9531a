"""`netshadow plan check|apply`: allocation plans."""

from __future__ import annotations

from topologies import bundled, load_spec

from ..errors import error
from .common import EXIT_FAIL, EXIT_INVALID, EXIT_OK, spec_arg


def cmd_plan_check(a) -> int:
    from controller.plan import PlanError, load_plan

    try:
        plan = load_plan(a.file, load_spec(a.spec))
    except PlanError as e:
        error(f"netshadow plan check: {e}")
        return EXIT_INVALID
    print(f"{a.file}: ok - plan {plan.name!r}: {len(plan.allocations)} allocations "
          f"({plan.cost_mbps():g} Mbit/s), {len(plan.extra_policies)} policy additions, "
          f"{len(plan.cpu_quotas)} CPU quotas")
    return EXIT_OK


def cmd_plan_apply(a) -> int:
    import json as _json

    import requests

    from controller.plan import PlanError, read_plan_file
    from controller.rest import load_token

    try:
        body = read_plan_file(a.file)
    except PlanError as e:
        error(f"netshadow plan apply: {e}")
        return EXIT_INVALID
    token = load_token(a.token_file)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    url = a.controller.rstrip("/") + "/api/v1/plans" + ("?dry_run=1" if a.dry_run else "")
    try:
        r = requests.post(url, json=body, headers=headers, timeout=60)
        doc = r.json()
    except requests.RequestException as e:
        error(f"netshadow plan apply: --controller: {e.__class__.__name__}: {e}")
        return EXIT_FAIL
    except ValueError:
        error(f"netshadow plan apply: --controller: {url} answered {r.status_code} without JSON")
        return EXIT_FAIL
    if 400 <= r.status_code < 500 and "error" in doc:
        error(f"netshadow plan apply: {a.file}: {doc['error']}")
        return EXIT_INVALID if r.status_code in (400, 413) else EXIT_FAIL
    print(_json.dumps(doc, indent=1))
    return EXIT_OK if r.ok else EXIT_FAIL


def register(sub) -> None:
    pl = sub.add_parser("plan", help="allocation plans").add_subparsers(dest="plan_cmd", required=True)
    p = pl.add_parser("apply", help="send a plan to the controller (prints the diff and outcome)")
    p.add_argument("file")
    p.add_argument("--dry-run", action="store_true", help="compute the diff only")
    p.add_argument("--controller", default="http://127.0.0.1:8080")
    p.add_argument("--token-file", help="REST token file (else $NETSHADOW_API_TOKEN[_FILE])")
    p.set_defaults(func=cmd_plan_apply)
    p = pl.add_parser("check", help="validate a plan file against a spec, without a controller "
                                    "(exit 0 valid, 2 invalid)")
    p.add_argument("file")
    p.add_argument("--spec", type=spec_arg, default=str(bundled("default")))
    p.set_defaults(func=cmd_plan_check)
