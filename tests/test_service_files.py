"""The service files parse, run `triage daemon`, and the README installs them."""

from __future__ import annotations

import configparser
import plistlib
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "service" / "triage.service"
AGENT = ROOT / "service" / "local.triage.daemon.plist"


def test_launchd_agent_runs_the_daemon_and_restarts_it_only_after_a_crash() -> None:
    agent = plistlib.loads(AGENT.read_bytes())
    assert agent["Label"] == AGENT.name.removesuffix(".plist")
    assert agent["ProgramArguments"][-1] == "daemon"
    assert agent["ProgramArguments"][0].endswith("/triage")
    assert agent["KeepAlive"] == {"SuccessfulExit": False}


def test_systemd_unit_runs_the_daemon_reloads_with_sighup_and_does_not_loop_on_bad_config() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read_string(UNIT.read_text(encoding="utf-8"))
    service = unit["Service"]
    assert service["ExecStart"].endswith("/triage daemon")
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert service["RestartPreventExitStatus"] == "2"  # config errors exit 2
    assert unit["Install"]["WantedBy"] == "default.target"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_systemd_accepts_every_key_of_the_unit() -> None:
    done = subprocess.run(
        ["systemd-analyze", "verify", str(UNIT)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    complaints = [
        line
        for line in (done.stdout + done.stderr).splitlines()
        if "triage.service:" in line and "is not executable" not in line
    ]
    assert complaints == []


def test_readme_shows_how_to_install_both() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Running as a service", 1)[1].split("\n## ", 1)[0]
    assert "cp service/triage.service ~/.config/systemd/user/" in section
    assert "systemctl --user enable --now triage" in section
    assert "~/Library/LaunchAgents/local.triage.daemon.plist" in section
    assert "launchctl bootstrap gui/$(id -u)" in section
