"""`netshadow telemetry export`: stored telemetry as a wide table."""

from __future__ import annotations

from ..errors import error
from .common import EXIT_INVALID, EXIT_OK


def cmd_telemetry_export(a) -> int:
    from ..export import ExportError, export

    try:
        rows, cols = export(a.db, a.out, a.step, a.prefix)
    except ExportError as e:
        error(f"netshadow telemetry export: {e}")
        return EXIT_INVALID
    print(f"{a.out}: {rows} rows x {cols} series at {a.step:g} s steps")
    return EXIT_OK


def register(sub) -> None:
    tel = sub.add_parser("telemetry", help="stored telemetry").add_subparsers(dest="tel_cmd",
                                                                              required=True)
    p = tel.add_parser("export", help="wide CSV/Parquet: a time column, one column per series")
    p.add_argument("--db", required=True)
    p.add_argument("--out", required=True, help="FILE.csv or FILE.parquet")
    p.add_argument("--step", type=float, default=1.0, help="seconds per row (mean per bucket)")
    p.add_argument("--prefix", default="", help="only series whose name starts with this, e.g. app/")
    p.set_defaults(func=cmd_telemetry_export)
