"""`triage daemon` as a real process against a real Dovecot: IDLE, faults, locks, signals.

No timing assertions: every test waits for an event (a log line, a draft, an exit) with a
timeout, and checks outcomes: drafts in the Drafts folder, rows in the state, exit status.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import EN_ORDINARY, EN_REFUSAL, FR_REFUSAL, make_mail
from tests.daemon_helpers import (
    DaemonProcess,
    draft_count,
    drafts_in_reply_to,
    inbox_message_ids,
    state_rows,
    wait_until,
    write_config,
)
from tests.dovecot import PASSWORD, Dovecot


def refusals(count: int) -> list[bytes]:
    subject, body = EN_REFUSAL
    return [make_mail(f"{subject} #{i}", body) for i in range(count)]


@pytest.fixture(autouse=True)
def password(monkeypatch: pytest.MonkeyPatch) -> None:
    """For the commands run in the test's own process; daemons get theirs explicitly."""
    monkeypatch.setenv("TRIAGE_TEST_PASSWORD", PASSWORD)


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[list[DaemonProcess]]:
    """Daemons a test starts; any still running at the end is killed."""
    started: list[DaemonProcess] = []
    yield started
    for daemon in started:
        daemon.kill()


def start(
    daemons: list[DaemonProcess], config: Path, *args: str, password: str = PASSWORD
) -> DaemonProcess:
    log = config.parent / f"daemon{len(daemons)}.log"
    daemon = DaemonProcess(config, log, *args, password=password)
    daemons.append(daemon)
    return daemon


def test_mail_delivered_while_idling_is_drafted_without_waiting_for_the_poll(
    dovecot: Dovecot, user: str, tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    config = write_config(tmp_path / "config.toml", dovecot, {"work": user}, poll_every=3600.0)
    daemon = start(daemons, config)
    daemon.wait_for(r"IDLE on INBOX")
    # The first pass and the catch-up pass after IDLE started; the next poll is an hour away.
    wait_until(lambda: len(state_rows(tmp_path, "SELECT * FROM passes")) >= 2, what="2 passes")

    raw = make_mail(*EN_REFUSAL)
    dovecot.deliver(user, raw)

    wait_until(lambda: draft_count(dovecot, user) == 1, what="the draft")
    assert drafts_in_reply_to(dovecot, user) == inbox_message_ids(dovecot, user)
    assert daemon.stop() == 0
    assert "next attempt" not in daemon.text()


def test_server_restart_mid_life_drafts_every_inquiry_once_and_never_exits(
    tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    server = Dovecot()  # its own server: this test stops it
    server.start()
    try:
        user = server.new_user()
        config = write_config(tmp_path / "config.toml", server, {"work": user}, poll_every=2.0)
        server.deliver(user, make_mail(*EN_REFUSAL))
        daemon = start(daemons, config)
        daemon.wait_for(r"IDLE on INBOX")
        wait_until(lambda: draft_count(server, user) == 1, what="the first draft")

        server.stop()
        daemon.wait_for(r"IDLE connection lost")
        daemon.wait_for(r"next attempt in")  # a pass failed too, and is being retried
        server.start(same_ports=True)
        server.deliver_many(user, [make_mail(*FR_REFUSAL), *refusals(2), make_mail(*EN_ORDINARY)])

        wait_until(lambda: draft_count(server, user) == 4, what="4 drafts")
        daemon.wait_for(r"IDLE on INBOX", count=2)
        server.deliver(user, make_mail(*EN_REFUSAL))
        wait_until(lambda: draft_count(server, user) == 5, what="5 drafts")
        assert daemon.process.poll() is None
        assert daemon.stop() == 0
        answered = drafts_in_reply_to(server, user)
        assert len(answered) == len(set(answered)) == 5
        assert set(answered) < set(inbox_message_ids(server, user))  # the ordinary one: none
        assert state_rows(tmp_path, "SELECT COUNT(*) FROM messages") == [(6,)]
    finally:
        server.cleanup()


def mid_pass(
    dovecot: Dovecot, user: str, tmp_path: Path, daemons: list[DaemonProcess], total: int
) -> tuple[Path, DaemonProcess]:
    """A daemon that has drafted its first inquiries out of `total`, small batches left."""
    dovecot.deliver_many(user, refusals(total))
    config = write_config(
        tmp_path / "config.toml", dovecot, {"work": user}, fetch_batch=4, idle=False
    )
    daemon = start(daemons, config)
    daemon.wait_for(r"uid \d+: drafted")
    return config, daemon


def test_sigkill_mid_pass_then_restart_drafts_each_inquiry_exactly_once(
    dovecot: Dovecot, user: str, tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    total = 120
    config, first = mid_pass(dovecot, user, tmp_path, daemons, total)
    first.kill()  # SIGKILL
    recorded = state_rows(tmp_path, "SELECT COUNT(*) FROM messages")[0][0]
    assert 0 < recorded < total, "the kill was meant to land mid-pass"

    second = start(daemons, config)
    wait_until(lambda: draft_count(dovecot, user) >= total, what=f"{total} drafts")
    second.wait_for(r"seen \d+; drafted cannot_pay \d+")
    assert second.stop() == 0
    assert drafts_in_reply_to(dovecot, user) == inbox_message_ids(dovecot, user)
    assert draft_count(dovecot, user) == total
    assert state_rows(tmp_path, "SELECT COUNT(*), COUNT(DISTINCT uid) FROM messages") == [
        (total, total)
    ]


def test_sigterm_mid_pass_stops_between_messages_and_exits_0(
    dovecot: Dovecot, user: str, tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    total = 120
    config, daemon = mid_pass(dovecot, user, tmp_path, daemons, total)
    assert daemon.stop(signal.SIGTERM) == 0
    assert "daemon stopped" in daemon.text()
    # Every draft appended was recorded: nothing stopped between the two.
    recorded = state_rows(tmp_path, "SELECT COUNT(*) FROM messages WHERE action='drafted'")
    assert recorded == [(draft_count(dovecot, user),)]

    from triage.cli import main

    assert main(["run", "--once", "--config", str(config)]) == 0
    assert drafts_in_reply_to(dovecot, user) == inbox_message_ids(dovecot, user)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_sigint_exit_0(
    signum: int, dovecot: Dovecot, user: str, tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    log_file = tmp_path / "logs" / "triage.log"
    config = write_config(
        tmp_path / "config.toml", dovecot, {"work": user}, daemon={"log_file": str(log_file)}
    )
    daemon = start(daemons, config)
    daemon.wait_for(r"IDLE on INBOX")
    assert daemon.stop(signum, timeout=15) == 0
    assert daemon.text().rstrip().endswith("daemon stopped")
    assert log_file.read_text() == daemon.text()  # the optional log file has every line


def test_a_second_daemon_or_a_run_on_the_same_account_is_refused(
    dovecot: Dovecot,
    user: str,
    tmp_path: Path,
    daemons: list[DaemonProcess],
    capsys: pytest.CaptureFixture[str],
) -> None:
    from triage.cli import main

    config = write_config(tmp_path / "config.toml", dovecot, {"work": user})
    first = start(daemons, config)
    first.wait_for(r"daemon started")

    second = start(daemons, config)
    assert second.process.wait(30) == 1
    refusal = f"account 'work' is being processed by the triage daemon (pid {first.pid})"
    assert refusal in second.text()
    assert "Traceback" not in second.text()

    assert main(["run", "--once", "--config", str(config)]) == 1
    assert refusal in capsys.readouterr().out
    assert main(["status", "--config", str(config)]) == 0
    assert f"work: running: the triage daemon (pid {first.pid})" in capsys.readouterr().out

    assert first.stop() == 0
    assert main(["status", "--config", str(config)]) == 0
    assert "work: not running" in capsys.readouterr().out


def test_wrong_password_is_reported_once_and_not_retried_in_a_loop(
    dovecot: Dovecot, user: str, tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    config = write_config(tmp_path / "config.toml", dovecot, {"work": user}, poll_every=0.1)
    daemon = start(daemons, config, password="wrong")
    daemon.wait_for(r"Not retrying for 60 minutes")
    time.sleep(2)  # twenty poll intervals: a retry loop would show here
    assert daemon.process.poll() is None  # one failing account does not stop the daemon
    assert daemon.stop() == 0
    log = daemon.text()
    assert log.count("Not retrying") == 1
    assert "the server refused the username or password" in log
    assert "SIGHUP" in log
    attempts = [
        line
        for line in (Path(dovecot.dir) / "dovecot.log").read_text().splitlines()
        if f"user=<{user}>" in line and "auth failed" in line
    ]
    assert len(attempts) == 1, attempts


def test_sighup_reloads_the_config_and_a_bad_one_is_kept_out(
    dovecot: Dovecot, tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    first, second = dovecot.new_user(), dovecot.new_user()
    config = write_config(tmp_path / "config.toml", dovecot, {"work": first})
    daemon = start(daemons, config)
    daemon.wait_for(r"IDLE on INBOX")

    good = config.read_text()
    config.write_text(good + "[[accounts]]\nnmae = 'x'\n")
    daemon.send(signal.SIGHUP)
    daemon.wait_for(r"reload: .*unknown key .*the running configuration stays")

    write_config(config, dovecot, {"work": first, "home": second})
    daemon.send(signal.SIGHUP)
    daemon.wait_for(r"configuration reloaded: work every 3600 s.*; home every")
    daemon.wait_for(r"IDLE on INBOX", count=3)  # work again, and home
    dovecot.deliver(second, make_mail(*FR_REFUSAL))
    dovecot.deliver(first, make_mail(*EN_REFUSAL))
    wait_until(lambda: draft_count(dovecot, second) == 1, what="home's draft")
    wait_until(lambda: draft_count(dovecot, first) == 1, what="work's draft")
    assert daemon.stop() == 0


def test_status_and_log_show_passes_counts_evidence_and_drafts(
    dovecot: Dovecot, user: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.dovecot import free_port
    from triage.cli import main

    dovecot.deliver(user, make_mail(*EN_REFUSAL))
    dovecot.deliver(user, make_mail(*EN_ORDINARY))
    dovecot.deliver(user, make_mail("Weekly digest", "news", headers={"List-Id": "<n.example>"}))
    config = write_config(tmp_path / "config.toml", dovecot, {"work": user})
    assert main(["run", "--once", "--config", str(config)]) == 0
    broken = write_config(tmp_path / "broken.toml", dovecot, {"work": user}, port=free_port())
    assert main(["run", "--once", "--config", str(broken)]) == 1
    capsys.readouterr()

    assert main(["status", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "work: not running" in out
    assert "last successful pass: " in out and "never" not in out
    assert "cannot connect" in out.split("last error:")[1].splitlines()[0]
    day = next(line for line in out.splitlines() if "last day:" in line)
    assert "seen 3; drafted cannot_pay 1; skipped mailing list 1; no refusal 1" in day
    assert "failed passes 1" in day

    assert main(["log", "--config", str(config), "-n", "2"]) == 0
    out = capsys.readouterr().out
    assert out.count("  work  uid ") == 2
    assert main(["log", "--config", str(config), "--account", "work"]) == 0
    out = capsys.readouterr().out
    drafted = out.split("drafted cannot_pay/en")[1]
    assert "evidence: cannot_pay:" in drafted
    assert "draft: uid 1 in the Drafts folder, Message-ID <" in drafted
    assert main(["log", "--config", str(config), "--account", "nope"]) == 2


def test_a_bad_daemon_config_is_one_line_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "config.toml"
    bad.write_text("[daemon]\nbackoff_max = 0\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "triage", "daemon", "--config", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert "backoff_max and auth_retry must be >= 1 second" in done.stderr
