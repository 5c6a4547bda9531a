"""abilene.yaml: 12 PoPs, one tenant - every host reaches every other on ICMP, TCP and UDP."""

from __future__ import annotations

from emulation.isolation import expected_cases, run_probes

from .conftest import running_lab


def test_full_intra_tenant_connectivity(tmp_path):
    with running_lab("abilene", "ntj", tmp_path) as lab:
        cases = expected_cases(lab.spec)
        assert len(cases) == 12 * 11 * 3 and all(c.expected for c in cases)
        results = run_probes(lab.lab, lab.spec, cases, timeout_s=1.0, tries=3)
        failed = [(r.case.src, r.case.dst, r.case.proto) for r in results if not r.observed]
        assert failed == []
