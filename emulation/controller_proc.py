"""Start and stop a netshadow controller as a child process, by pid, with a health check.

Used by the demo, the lab command and the integration tests. The controller runs as
``python -m netshadow controller``; it is ready when ``GET /api/v1/health`` answers. On exit the
process is sent SIGTERM, then SIGKILL if it has not ended within a few seconds.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests


class ControllerProcessError(RuntimeError):
    """The controller process failed to start or to become healthy."""


class PlanApplyError(RuntimeError):
    """A controller did not put a plan in force; the message names the plan and why."""

    def __init__(self, message: str, reached: bool):
        super().__init__(message)
        self.reached = reached  # the controller answered (it refused or rolled back)


def post_plan(base_url: str, token: str | None, body: dict, timeout_s: float = 60.0) -> dict:
    """``POST /api/v1/plans`` at ``base_url`` (``http://host:port``): the enforcer's transaction
    and confirmation. Returns the controller's answer once the plan is applied (or already was);
    raises :class:`PlanApplyError` otherwise."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        r = requests.post(f"{base_url}/api/v1/plans", json=body, headers=headers, timeout=timeout_s)
        answer = r.json()
    except (requests.RequestException, ValueError) as e:
        raise PlanApplyError(f"apply at {base_url}: {e}", reached=False) from None
    if r.status_code != 200 or answer.get("outcome") not in ("applied", "unchanged"):
        why = answer.get("error") or answer.get("reason") or answer.get("outcome")
        raise PlanApplyError(f"the controller did not apply plan {body.get('name')!r} "
                             f"(HTTP {r.status_code}): {why}", reached=True)
    return answer


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ControllerProcess:
    def __init__(self, spec_path: str | Path, of_port: int = 6653, rest_port: int = 8080,
                 log_path: str | Path | None = None, extra_args: list[str] | None = None,
                 env: dict[str, str] | None = None, db_path: str | Path | None = None,
                 poll_interval_s: float = 1.0):
        self.spec_path = str(spec_path)
        self.of_port = of_port
        self.rest_port = rest_port
        self.log_path = Path(log_path) if log_path else None
        self.extra_args = extra_args or []
        self.env = env
        self.db_path = str(db_path) if db_path else "none"
        self.poll_interval_s = poll_interval_s
        self.proc: subprocess.Popen | None = None
        self.started_at: float | None = None
        self._log = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}/api/v1"

    def start(self, timeout_s: float = 30.0) -> ControllerProcess:
        """Launch the process and wait until its REST API answers."""
        self.launch()
        return self.wait_started(timeout_s)

    def launch(self) -> ControllerProcess:
        """Launch the process without waiting (overlap its start-up with other work)."""
        for what, port in (("of_port", self.of_port), ("rest_port", self.rest_port)):
            if not port_free("127.0.0.1", port):
                raise ControllerProcessError(f"{what}: port {port} is already in use")
        cmd = [sys.executable, "-m", "netshadow", "controller", "--spec", self.spec_path,
               "--of-port", str(self.of_port), "--rest-port", str(self.rest_port),
               "--db", self.db_path, "--poll-interval", str(self.poll_interval_s), *self.extra_args]
        self._log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT,
                                     env={**os.environ, **(self.env or {})})
        return self

    def wait_started(self, timeout_s: float = 30.0) -> ControllerProcess:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.stop()
                raise ControllerProcessError(
                    f"controller: exited with status {self.proc.returncode} during start-up"
                    + (f"; see {self.log_path}" if self.log_path else ""))
            try:
                requests.get(f"{self.url}/health", timeout=1).raise_for_status()
                return self
            except requests.RequestException:
                time.sleep(0.02)
        self.stop()
        raise ControllerProcessError(f"controller: no health answer within {timeout_s} s")

    def health(self) -> dict:
        return requests.get(f"{self.url}/health", timeout=5).json()

    def wait_ready(self, timeout_s: float = 60.0) -> dict:
        """Wait until every switch of the spec is programmed; returns the health document."""
        deadline = time.monotonic() + timeout_s
        h: dict = {}
        while time.monotonic() < deadline:
            h = self.health()
            if h["status"] == "ok":
                return h
            if h["status"] == "degraded":
                raise ControllerProcessError(f"controller: switch errors: {h['switches']}")
            time.sleep(0.02)
        pending = [n for n, s in h.get("switches", {}).items() if s["state"] != "ready"]
        raise ControllerProcessError(f"controller: switches {pending} not ready within {timeout_s} s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self._log not in (None, subprocess.DEVNULL):
            self._log.close()
            self._log = None

    def __enter__(self) -> ControllerProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
