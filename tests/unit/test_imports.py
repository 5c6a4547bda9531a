"""The architecture's import rules (docs/architecture.md, "Where things live"), read from the
source: which of our packages may import which, and what the controller process never loads."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OURS = ("topologies", "controller", "models", "planner", "emulation", "netshadow")
MAY_IMPORT = {
    "topologies": set(),
    "models": set(),
    "controller": {"topologies"},
    "emulation": {"topologies", "models", "controller"},
    "planner": {"topologies", "models", "controller", "emulation"},
    "netshadow": set(OURS),
}
# the controller process stays free of TensorFlow, Mininet and the profiler's data stack; the
# spec package the controller imports builds Mininet topologies, but only in a module it never loads
NEVER = {"controller": {"pandas", "tensorflow", "keras", "lightgbm", "mininet", "scapy", "matplotlib"},
         "topologies": {"pandas", "tensorflow", "keras", "scapy", "matplotlib"}}


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, top-level module) of every import in ``path``, wherever it is (functions too);
    relative imports are the file's own package."""
    tree = ast.parse(path.read_text(), filename=str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend((node.lineno, a.name.split(".")[0]) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.lineno, node.module.split(".")[0]))
    return out


def violations(root: Path) -> list[str]:
    found = []
    for pkg in OURS:
        for path in sorted((root / pkg).rglob("*.py")):
            for line, mod in imports(path):
                where = f"{path.relative_to(root)}:{line}"
                if mod in OURS and mod != pkg and mod not in MAY_IMPORT[pkg]:
                    found.append(f"{where}: {pkg} may not import {mod}")
                if mod in NEVER.get(pkg, ()):
                    found.append(f"{where}: {pkg} never imports {mod}")
    return found


def test_the_packages_import_only_what_the_architecture_allows():
    assert violations(ROOT) == []


def test_a_forbidden_import_is_found(tmp_path):
    for pkg in OURS:
        (tmp_path / pkg).mkdir()
    (tmp_path / "controller" / "x.py").write_text("import numpy\n\ndef f():\n    import pandas as pd\n")
    (tmp_path / "emulation" / "y.py").write_text("from planner.core import Planner\nfrom . import z\n")
    (tmp_path / "models" / "z.py").write_text("from controller.plan import Plan\n")
    assert violations(tmp_path) == ["controller/x.py:4: controller never imports pandas",
                                    "models/z.py:1: models may not import controller",
                                    "emulation/y.py:1: emulation may not import planner"]


def test_the_controller_process_loads_none_of_them():
    """What ``netshadow controller`` imports, measured in a fresh interpreter."""
    import subprocess
    import sys

    code = ("import sys, controller.app, controller.rest, controller.store, controller.enforcer; "
            "print(','.join(sorted({m.split('.')[0] for m in sys.modules})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         timeout=120, check=True).stdout.strip().split(",")
    assert not set(out) & (NEVER["controller"] | {"models", "planner", "emulation"}), out
