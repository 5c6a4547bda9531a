"""Commands build frozen, validated settings before anything starts: a bad value exits 2 with
one line naming the flag."""

from __future__ import annotations

import pytest

from netshadow.cli import build_parser, main
from topologies import bundled, load_spec


def test_controller_settings_refuse_bad_values_by_flag(tmp_path, capsys):
    from controller.launcher import ControllerSettings

    spec = load_spec(bundled("default"))
    for kw, flag in (({"poll_interval_s": 0.01}, "poll_interval_s"), ({"of_port": 0}, "of_port"),
                     ({"retention_s": 0}, "retention_s"), ({"no_meters": frozenset({"s9"})}, "no_meters"),
                     ({"rest_port": 6653}, "rest_port")):
        with pytest.raises(ValueError, match=f"^{flag}: "):
            ControllerSettings(spec, **kw)
    # the command names the flag the user typed, and nothing starts
    for args, flag in ((["--poll-interval", "0.01"], "--poll-interval"),
                       (["--no-meters", "s9"], "--no-meters"),
                       (["--retention-days", "0"], "--retention-days")):
        assert main(["controller", "--db", str(tmp_path / "c.db"), *args]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"netshadow controller: {flag}: ") and err.count("\n") == 1, err



def test_every_command_registers_its_own_parser_and_handler():
    ap = build_parser()
    for argv in (["check-config", "default"], ["controller"], ["lab", "up"], ["lab", "down"],
                 ["agent", "--controller", "http://x", "--host", "h1"],
                 ["telemetry", "export", "--db", "d", "--out", "o.csv"], ["tpp", "evaluate", "--csv", "c"],
                 ["shadow", "clean"], ["plan", "check", "f"], ["demo"],
                 ["run", "--spec", "default"]):
        a = ap.parse_args(argv)
        assert a.func.__module__.startswith("netshadow.commands."), argv


@pytest.mark.parametrize("args, flag", [
    (["--interval", "0"], "--interval"),
    (["--netns-pid", "999999999"], "--netns-pid"),
    (["--controller", "10.0.0.254:8080"], "--controller"),
])
def test_agent_settings_name_the_flag(tmp_path, capsys, args, flag):
    base = {"--controller": "http://127.0.0.1:9", "--host": "h1", "--spool": str(tmp_path / "s.db")}
    for k, v in zip(args[::2], args[1::2]):
        base[k] = v
    argv = ["agent"] + [x for kv in base.items() for x in kv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"netshadow agent: {flag}: ") and err.count("\n") == 1, err
    assert not (tmp_path / "s.db").exists()  # nothing started


def test_shadow_run_settings_are_read_and_checked_before_any_lab(tmp_path, capsys):
    from netshadow.shadowcmd import ShadowRunSettings

    assert main(["shadow", "run", "--spec", "default", "--forecast", str(tmp_path / "none.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("netshadow shadow run: --forecast: ") and err.count("\n") == 1, err
    spec = load_spec(bundled("default"))
    for kw, flag in (({"quantile": 1.0}, "--quantile"), ({"duration_s": 0}, "--duration"),
                     ({"rtt_bound_ms": -1}, "--rtt-bound-ms")):
        with pytest.raises(ValueError, match=f"^{flag}: "):
            ShadowRunSettings(spec, None, (None,), **kw)


@pytest.mark.parametrize("args, flag", [
    (["--prefix", "toolong"], "--prefix"),
    (["--with-controller", "--rest-port", "6653"], "--rest-port"),
    (["--controller-url", "10.0.0.254:8080"], "--controller-url"),
    (["--token-file", "/nonexistent/token"], "--token-file"),
])
def test_lab_up_settings_name_the_flag_and_build_nothing(capsys, args, flag):
    pytest.importorskip("mininet", reason="lab up's prefix rule comes from the Mininet topology")
    assert main(["lab", "up", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"netshadow lab up: {flag}: ") and err.count("\n") == 1, err


def test_compare_production_needs_the_production_controller(tmp_path, capsys):
    from models.forecast import Forecast, SeriesForecast

    f = tmp_path / "f.json"
    sf = SeriesForecast("app/red/video/fwd/bps", ("t1",), (1e6,), ((0.9, (1e6,)),), "test")
    f.write_text(Forecast("t0", 60.0, (sf,)).to_json())
    assert main(["shadow", "run", "--spec", "default", "--forecast", str(f), "--compare-production"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("netshadow shadow run: --compare-production: needs --controller") and \
        err.count("\n") == 1, err
