"""The daemon's per-account worker and the pass's stop hook, in this process, on the test
Dovecot: a kept connection across passes, retries, and a pass stopped between messages."""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import EN_ORDINARY, EN_REFUSAL, FR_REFUSAL, make_mail
from tests.daemon_helpers import draft_count, drafts_in_reply_to, inbox_message_ids
from tests.dovecot import Dovecot, free_port
from triage import config, runner
from triage.drafting import Drafter
from triage.state import State
from triage.worker import Backoff, Worker

MakeConfig = Callable[..., config.Config]


@pytest.fixture
def make_worker() -> Iterator[Callable[[config.Config], tuple[Worker, list[float]]]]:
    made: list[Worker] = []

    def build(cfg: config.Config) -> tuple[Worker, list[float]]:
        scheduled: list[float] = []
        worker = Worker(
            cfg,
            cfg.accounts[0],
            runner.build_classifier(cfg),
            Drafter(cfg.identity, cfg.drafting),
            schedule=scheduled.append,
        )
        made.append(worker)
        return worker, scheduled

    yield build
    for worker in made:
        worker.stop()
        worker.close(timeout=5)


def passes(cfg: config.Config) -> list[tuple[int, str]]:
    with sqlite3.connect(Path(cfg.state_path) / "state.sqlite3") as db:
        return list(db.execute("SELECT ok, error FROM passes ORDER BY rowid"))


def test_backoff_doubles_with_jitter_up_to_its_ceiling() -> None:
    random.seed(4)
    backoff = Backoff(ceiling=10.0)
    delays = [backoff.next() for _ in range(8)]
    for delay, nominal in zip(delays, [1, 2, 4, 8, 10, 10, 10, 10], strict=True):
        assert nominal / 2 <= delay <= nominal
    assert len(set(delays)) == len(delays)  # jitter: never in step
    backoff.reset()
    assert backoff.next() <= 1.0


def test_kept_connection_serves_many_passes_and_survives_a_kick_and_a_uidvalidity_change(
    dovecot: Dovecot,
    user: str,
    make_config: MakeConfig,
    make_worker: Callable[..., tuple[Worker, list[float]]],
) -> None:
    cfg = make_config(user)
    worker, scheduled = make_worker(cfg)
    dovecot.deliver(user, make_mail(*EN_REFUSAL))
    worker.run()
    worker.run()  # nothing new, same connection
    dovecot.doveadm("kick", user)  # the kept connection dies between passes
    worker.run()
    dovecot.doveadm("mailbox", "update", "-u", user, "--uid-validity", "777", "INBOX")
    dovecot.deliver(user, make_mail(*FR_REFUSAL))
    worker.run()
    worker.after_sleep()  # a wake from sleep: a new connection and a pass at once
    assert scheduled == [0]
    dovecot.deliver(user, make_mail(*EN_ORDINARY))
    worker.run()
    assert [ok for ok, _ in passes(cfg)] == [1, 1, 1, 1, 1]
    assert draft_count(dovecot, user) == 2
    assert set(drafts_in_reply_to(dovecot, user)) < set(inbox_message_ids(dovecot, user))


def test_a_network_fault_schedules_a_retry_with_backoff(
    make_config: MakeConfig, user: str, make_worker: Callable[..., tuple[Worker, list[float]]]
) -> None:
    cfg = make_config(user, port=free_port())
    worker, scheduled = make_worker(cfg)
    worker.run()
    worker.run()
    assert len(scheduled) == 2 and 0.5 <= scheduled[0] <= 1.0 and 1.0 <= scheduled[1] <= 2.0
    assert [ok for ok, _ in passes(cfg)] == [0, 0]
    assert "cannot connect" in passes(cfg)[0][1]


def test_refused_credentials_wait_and_are_explained_once(
    user: str,
    make_config: MakeConfig,
    make_worker: Callable[..., tuple[Worker, list[float]]],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("TRIAGE_TEST_PASSWORD", "wrong")
    cfg = make_config(user)
    worker, scheduled = make_worker(cfg)
    worker.run()
    worker.run()  # blocked: no second attempt
    assert scheduled == [cfg.daemon.auth_retry]
    assert len(passes(cfg)) == 1
    explained = [r for r in caplog.records if "Not retrying" in r.getMessage()]
    assert len(explained) == 1 and "refused the username or password" in explained[0].getMessage()


def test_a_failing_password_source_is_explained_once_without_a_traceback(
    user: str,
    make_config: MakeConfig,
    make_worker: Callable[..., tuple[Worker, list[float]]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    cfg = make_config(user, password_env="", password_command="false")
    worker, scheduled = make_worker(cfg)
    worker.run()
    assert scheduled == [cfg.daemon.auth_retry]
    (record,) = [r for r in caplog.records if r.levelname == "ERROR"]
    assert "password_command exited with status 1" in record.getMessage()
    assert record.exc_info is None


def test_a_pass_stopped_between_messages_resumes_where_it_stopped(
    dovecot: Dovecot, user: str, make_config: MakeConfig
) -> None:
    """Oversized messages are recorded in their place: stopping after the first message
    must not move the cursor past the second (the cursor is the highest UID recorded)."""
    subject, body = EN_REFUSAL
    dovecot.deliver(user, make_mail(*EN_REFUSAL))
    dovecot.deliver(user, make_mail(*FR_REFUSAL))
    dovecot.deliver(user, make_mail(subject, body + "x" * 5000))  # too large
    cfg = make_config(user, max_message_bytes=3000)
    state = State(cfg.state_path)

    def after_one() -> bool:
        return len(state.messages("work")) >= 1

    try:
        drafter = Drafter(cfg.identity, cfg.drafting)
        classifier = runner.build_classifier(cfg)
        first = runner.run_account(
            cfg, cfg.accounts[0], state, classifier, drafter, should_stop=after_one
        )
        assert not first.failure and first.seen == 1
        rest = runner.run_account(cfg, cfg.accounts[0], state, classifier, drafter)
    finally:
        state.close()
    assert rest.seen == 2
    assert rest.drafted == {"third_party": 1} and rest.skipped == {"too large": 1}
    assert draft_count(dovecot, user) == 2


def test_a_maildir_account_works_in_the_daemon_too(
    tmp_path: Path, make_worker: Callable[..., tuple[Worker, list[float]]]
) -> None:
    import mailbox

    inbox = mailbox.Maildir(tmp_path / "Mail", create=True)
    mailbox.Maildir(tmp_path / "Mail" / ".Drafts", create=True)
    cfg = config.parse(
        {
            "state_dir": str(tmp_path / "state"),
            "identity": {"name": "Camille Martin", "address": "camille@example.com"},
            "accounts": [{"name": "local", "maildir": str(tmp_path / "Mail")}],
        }
    )
    worker, scheduled = make_worker(cfg)
    inbox.add(make_mail(*EN_REFUSAL))
    worker.run()
    inbox.add(make_mail(*FR_REFUSAL))
    worker.run()
    worker.run()
    assert [ok for ok, _ in passes(cfg)] == [1, 1, 1] and scheduled == []
    assert len(list((tmp_path / "Mail" / ".Drafts" / "cur").iterdir())) == 2
