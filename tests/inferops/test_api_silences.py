"""A real `inferops run` serves the API; the real `amtool` (with a bearer token through its
`--http.config.file`) and `inferops silences` add, query and expire silences on it."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import Result
from typer.testing import CliRunner

from inferops.cli import app

pytestmark = pytest.mark.integration

AMTOOL = "/usr/bin/amtool"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ControlPlaneProcess:
    def __init__(self, tmp_path: Path) -> None:
        self.dir = tmp_path
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = tmp_path / "inferops.yaml"
        self.config.write_text(
            f"store: {{url: 'sqlite:///{tmp_path / 'cp.db'}'}}\n"
            f"api: {{port: {self.port}}}\n"
            "alerting: {watchdog: false}\n",
            encoding="utf-8",
        )
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ("INFEROPS_API_TOKEN", "INFEROPS_API_URL", "INFEROPS_CONFIG")}

    def cli(self, *args: str) -> Result:
        """`inferops ARGS` in this process (the API it calls is the real server)."""
        return CliRunner().invoke(app, list(args), env={
            "INFEROPS_API_TOKEN": None, "INFEROPS_API_URL": None, "INFEROPS_CONFIG": None,
        })


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlaneProcess]:
    with control_plane(tmp_path_factory.mktemp("api")) as started:
        yield started


@contextlib.contextmanager
def control_plane(tmp_path: Path) -> Iterator[ControlPlaneProcess]:
    plane = ControlPlaneProcess(tmp_path)
    log = (tmp_path / "run.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "inferops", "run", "-c", str(plane.config)],
        stdout=log, stderr=subprocess.STDOUT, env=plane.env, cwd=tmp_path,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{plane.url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((tmp_path / "run.log").read_text(encoding="utf-8"))
            time.sleep(0.1)
        yield plane
    finally:
        process.terminate()
        process.wait(15)
        log.close()


def test_inferops_run_generates_a_token_announces_it_once_and_saves_it_0600(
    plane: ControlPlaneProcess,
) -> None:
    token_file = plane.dir / ".inferops" / "api-token"
    token = token_file.read_text(encoding="utf-8").strip()
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert httpx.get(f"{plane.url}/api/v2/silences", timeout=5).status_code == 401
    authorized = httpx.get(f"{plane.url}/api/v2/silences", timeout=5,
                           headers={"Authorization": f"Bearer {token}"})
    assert (authorized.status_code, authorized.json()) == (200, [])
    log = (plane.dir / "run.log").read_text(encoding="utf-8")
    assert log.count(token) == 1
    assert ("INFEROPS_API_TOKEN is not set; generated an API token for this run "
            f"(saved for local clients): {token}") in log


def test_amtool_adds_queries_and_expires_silences_with_a_bearer_token(
    plane: ControlPlaneProcess,
) -> None:
    if shutil.which(AMTOOL) is None:
        pytest.skip("amtool is not installed")
    token = (plane.dir / ".inferops" / "api-token").read_text(encoding="utf-8").strip()
    http_config = plane.dir / "amtool-http.yml"
    http_config.write_text(
        f"authorization:\n  type: Bearer\n  credentials: {token}\n", encoding="utf-8"
    )
    amtool = [AMTOOL, f"--alertmanager.url={plane.url}",
              f"--http.config.file={http_config}"]

    def run(*args: str) -> str:
        done = subprocess.run([*amtool, *args], capture_output=True, text=True, timeout=30,
                              check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    silence_id = run("silence", "add", 'node="node-1"', 'alertname=~"Node.*"',
                     "--duration=2h", "--author=alice", "--comment=replacing the NIC")
    queried = json.loads(run("silence", "query", "-o", "json"))
    assert [(s["id"], s["createdBy"], s["comment"], s["status"]["state"], s["matchers"])
            for s in queried] == [(silence_id, "alice", "replacing the NIC", "active", [
                {"name": "node", "value": "node-1", "isRegex": False, "isEqual": True},
                {"name": "alertname", "value": "Node.*", "isRegex": True, "isEqual": True},
            ])]
    run("silence", "expire", silence_id)
    assert run("silence", "query", "-q") == ""
    assert run("silence", "query", "--expired", "-q") == silence_id

    unauthorized = subprocess.run(
        [AMTOOL, f"--alertmanager.url={plane.url}", "silence", "query"],
        capture_output=True, text=True, timeout=30, check=False,
    )
    assert unauthorized.returncode != 0


def test_inferops_silences_cli_adds_lists_and_expires_over_the_api(
    plane: ControlPlaneProcess,
) -> None:
    config = ("-c", str(plane.config))
    bad = plane.cli("silences", "add", "node~x", 'team="db"', "node=~(", "--comment=x",
                    *config)
    assert (bad.exit_code, bad.output.strip()) == (2, (
        "error: bad matchers: matcher 'node~x': expected name=value, name!=value, "
        "name=~regex or name!~regex; matcher node=~\"(\": '(' is not a valid regular "
        "expression: missing ), unterminated subpattern at position 0"
    ))
    added = plane.cli("silences", "add", 'node="node-1"', "--duration=30m",
                      "--comment=rebooting", *config)
    assert added.exit_code == 0, added.output
    silence_id = added.stdout.strip()
    listed = plane.cli("silences", "list", "--json", *config)
    shown = json.loads(listed.stdout)
    assert [(s["id"], s["comment"], s["createdBy"].startswith("cli:"), s["matchers"])
            for s in shown] == [(silence_id, "rebooting", True, [
                {"name": "node", "value": "node-1", "isRegex": False, "isEqual": True}])]
    expired = plane.cli("silences", "expire", silence_id, *config)
    assert (expired.exit_code, expired.stdout) == (0, f"expired {silence_id}\n")
    assert plane.cli("silences", "list", *config).output == "no silences\n"
    unknown = plane.cli("silences", "expire", "nope", *config)
    assert (unknown.exit_code, unknown.output) == (1, "error: 404: id: no silence 'nope'\n")
    wrong = plane.cli("silences", "list", "--token", "wrong", *config)
    assert (wrong.exit_code, wrong.output) == (
        1, "error: 401: missing or invalid bearer token\n"
    )


def test_a_second_inferops_run_on_a_taken_api_port_exits_2_naming_it(
    plane: ControlPlaneProcess,
) -> None:
    second = plane.dir / "second.yaml"
    second.write_text(
        f"store: {{url: 'sqlite:///{plane.dir / 'second.db'}'}}\n"
        f"api: {{port: {plane.port}}}\nalerting: {{watchdog: false}}\n", encoding="utf-8",
    )
    done = subprocess.run(
        [sys.executable, "-m", "inferops", "run", "-c", str(second)], capture_output=True,
        text=True, timeout=60, check=False, env={**plane.env, "INFEROPS_API_TOKEN": "x"},
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        f"error: api: cannot listen on 127.0.0.1:{plane.port}: Address already in use "
        "(set api.port, or api.enabled: false)"
    )
