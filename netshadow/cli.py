"""The ``netshadow`` command.

A thin dispatcher: every command (or group) lives in :mod:`netshadow.commands`, registers its own
arguments and handles them.

Exit status: 0 success, 1 a runtime failure (reported in one line, no traceback), 2 invalid input
(bad spec, bad arguments).
"""

from __future__ import annotations

import argparse
import logging

from topologies import SpecError

from .commands import COMMANDS
from .commands.common import EXIT_FAIL, EXIT_INVALID
from .errors import error


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="netshadow", description=__doc__.splitlines()[0])
    ap.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = ap.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.register(sub)
    return ap


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if a.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return a.func(a)
    except SpecError as e:
        error(f"netshadow {a.command}: invalid spec: {e}")
        return EXIT_INVALID
    except KeyboardInterrupt:
        return EXIT_FAIL
    except Exception as e:  # noqa: BLE001 - one line for the user; details with -v
        if a.verbose:
            logging.exception("failed")
        error(f"netshadow {a.command}: {e}")
        return EXIT_FAIL
