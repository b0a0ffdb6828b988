"""The whole pass against the real test Dovecot."""

from __future__ import annotations

import email
import email.policy
import sqlite3
from collections.abc import Callable
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import EN_ORDINARY, EN_REFUSAL, FR_REFUSAL, make_mail
from tests.dovecot import Dovecot
from triage import config, pipeline, runner
from triage.errors import AuthError, MailboxError
from triage.state import State

MakeConfig = Callable[..., config.Config]


def drafts(dovecot: Dovecot, user: str) -> list[tuple[int, set[bytes], email.message.EmailMessage]]:
    client = dovecot.client(user)
    try:
        client.select_folder("Drafts", readonly=True)
        uids = client.search("ALL")
        data = client.fetch(uids, ["FLAGS", "BODY.PEEK[]"]) if uids else {}
        return [
            (
                uid,
                set(data[uid][b"FLAGS"]),
                email.message_from_bytes(data[uid][b"BODY[]"], policy=email.policy.default),
            )
            for uid in sorted(data)
        ]
    finally:
        client.logout()


def inbox_flags(dovecot: Dovecot, user: str) -> dict[int, set[bytes]]:
    client = dovecot.client(user)
    try:
        client.select_folder("INBOX", readonly=True)
        uids = client.search("ALL")
        return (
            {u: set(v[b"FLAGS"]) for u, v in client.fetch(uids, ["FLAGS"]).items()} if uids else {}
        )
    finally:
        client.logout()


def run(cfg: config.Config, **kwargs: Any) -> pipeline.Summary:
    (summary,) = runner.run_once(cfg, **kwargs)
    assert not summary.failure, summary.failure
    return summary


def test_english_and_french_inquiries_get_threaded_drafts_in_their_language(
    dovecot: Dovecot, user: str, make_config: MakeConfig
) -> None:
    en = make_mail(*EN_REFUSAL, headers={"References": "<older@client.example>"})
    fr = make_mail(
        *FR_REFUSAL, sender="=?utf-8?q?H=C3=A9l=C3=A8ne_Roussel?= <helene@client.example>"
    )
    dovecot.deliver(user, en)
    dovecot.deliver(user, fr)
    dovecot.deliver(user, make_mail(*EN_ORDINARY))

    summary = run(make_config(user))

    assert summary.seen == 3
    assert summary.drafted == {"cannot_pay": 1, "third_party": 1}
    assert summary.no_refusal == 1
    found = drafts(dovecot, user)
    assert len(found) == 2
    by_to = {str(m["To"]): (flags, m) for _, flags, m in found}
    flags, en_draft = by_to["Jordan Blake <jordan@client.example>"]
    original = email.message_from_bytes(en, policy=email.policy.default)
    assert b"\\Draft" in flags and b"\\Seen" not in flags
    assert en_draft["Subject"] == "Re: Logo for my bakery"
    assert en_draft["In-Reply-To"] == original["Message-ID"]
    assert en_draft["References"].split() == ["<older@client.example>", original["Message-ID"]]
    assert en_draft["From"] == "Camille Martin <camille@example.com>"
    assert en_draft["Message-ID"].endswith("@example.com>")
    assert en_draft["Content-Transfer-Encoding"] == "quoted-printable"
    body = en_draft.get_content().replace("\r\n", "\n")
    assert body.startswith("Hello Jordan,")
    assert "Thank you for your message" in body
    assert "wrote:\n> Hi Camille," in body
    _, fr_draft = by_to["Hélène Roussel <helene@client.example>"]
    fr_body = fr_draft.get_content().replace("\r\n", "\n")
    assert fr_body.startswith("Bonjour Hélène Roussel,")
    assert "Je vous remercie" in fr_body and "a écrit :" in fr_body
    assert fr_draft["Subject"] == "Re: Coaching pour mon fils"


def test_second_pass_appends_nothing_and_seen_is_never_set(
    dovecot: Dovecot, user: str, make_config: MakeConfig
) -> None:
    dovecot.deliver(user, make_mail(*EN_REFUSAL))
    dovecot.deliver(user, make_mail(*FR_REFUSAL))
    cfg = make_config(user)
    first = run(cfg)
    second = run(cfg)
    assert sum(first.drafted.values()) == 2
    assert second.seen == 0 and not second.drafted
    assert len(drafts(dovecot, user)) == 2
    assert all(b"\\Seen" not in flags for flags in inbox_flags(dovecot, user).values())
    dovecot.deliver(user, make_mail(*EN_REFUSAL))
    third = run(cfg)
    assert third.seen == 1 and sum(third.drafted.values()) == 1
    assert len(drafts(dovecot, user)) == 3


def test_screened_mail_gets_no_draft(dovecot: Dovecot, user: str, make_config: MakeConfig) -> None:
    subject, body = EN_REFUSAL
    dovecot.deliver(user, make_mail(subject, body, headers={"List-Id": "<news.client.example>"}))
    dovecot.deliver(user, make_mail(subject, body, headers={"Auto-Submitted": "auto-replied"}))
    dovecot.deliver(user, make_mail(subject, body, headers={"Precedence": "bulk"}))
    dovecot.deliver(user, make_mail(subject, body, sender="noreply@client.example"))
    dovecot.deliver(user, make_mail(subject, body, sender="camille@example.com"))
    dovecot.deliver(user, make_mail(subject, body), flags=(b"\\Answered",))
    dovecot.deliver(user, make_mail(subject, body, sender="friend@allowed.example"))
    cfg = config.parse({**_data(make_config(user)), "screening": {"allow": ["@allowed.example"]}})
    summary = run(cfg)
    assert summary.seen == 7
    assert not summary.drafted
    assert summary.skipped == {
        "mailing list": 1,
        "auto-submitted": 1,
        "precedence bulk": 1,
        "automated sender": 1,
        "sent by you": 1,
        "already answered": 1,
        "on the allow list": 1,
    }
    assert drafts(dovecot, user) == []


def _data(cfg: config.Config) -> dict[str, Any]:
    """A parsed config back to TOML-shaped data, to derive variants in tests."""
    import dataclasses

    data = dataclasses.asdict(cfg)
    data.pop("path")
    return data


def test_crash_between_append_and_record_leaves_one_draft(
    dovecot: Dovecot, user: str, make_config: MakeConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    dovecot.deliver(user, make_mail(*EN_REFUSAL))
    cfg = make_config(user)

    class Crash(BaseException):
        """Stands for the process dying: nothing after it runs."""

    real_record = State.record

    def crash_after_append(self: State, *args: Any) -> None:
        raise Crash

    monkeypatch.setattr(State, "record", crash_after_append)
    with pytest.raises(Crash):
        runner.run_once(cfg)
    assert len(drafts(dovecot, user)) == 1  # appended, never recorded

    monkeypatch.setattr(State, "record", real_record)
    summary = run(cfg)
    assert summary.drafted == {"cannot_pay": 1}
    found = drafts(dovecot, user)
    assert len(found) == 1
    with sqlite3.connect(Path(cfg.state_path) / "state.sqlite3") as db:
        (draft_uid,) = db.execute("SELECT draft_uid FROM messages").fetchone()
    assert draft_uid == str(found[0][0])
    assert run(cfg).seen == 0


def test_uidvalidity_change_handles_nothing_twice(
    dovecot: Dovecot, user: str, make_config: MakeConfig
) -> None:
    dovecot.deliver(user, make_mail(*EN_REFUSAL))
    cfg = make_config(user)
    assert sum(run(cfg).drafted.values()) == 1
    dovecot.doveadm("mailbox", "update", "-u", user, "--uid-validity", "424242", "INBOX")
    dovecot.deliver(user, make_mail(*FR_REFUSAL))
    summary = run(cfg)
    assert summary.skipped == {"already handled": 1}
    assert summary.drafted == {"third_party": 1}
    assert len(drafts(dovecot, user)) == 2
    state = State(Path(cfg.state_path))
    cursor = state.cursor("work", "INBOX")
    assert cursor is not None and cursor.uidvalidity == 424242
    assert run(cfg).seen == 0


def test_dry_run_changes_neither_server_nor_state(
    dovecot: Dovecot, user: str, make_config: MakeConfig
) -> None:
    cfg = make_config(user, drafting={"tag_keywords": True})
    dovecot.deliver(user, make_mail(*EN_ORDINARY))
    run(cfg)
    dovecot.deliver(user, make_mail(*EN_REFUSAL))
    dovecot.deliver(user, make_mail(*FR_REFUSAL))

    def snapshot() -> tuple[Any, ...]:
        client = dovecot.client(user)
        try:
            status = {
                f: client.folder_status(f, ["MESSAGES", "UIDNEXT", "HIGHESTMODSEQ"])
                for f in ("INBOX", "Drafts")
            }
        finally:
            client.logout()
        with sqlite3.connect(Path(cfg.state_path) / "state.sqlite3") as db:
            dump = list(db.iterdump())
        return status, inbox_flags(dovecot, user), dump

    before = snapshot()
    summary = run(cfg, dry_run=True)
    assert summary.drafted == {"cannot_pay": 1, "third_party": 1}
    assert snapshot() == before
    assert sum(run(cfg).drafted.values()) == 2


def test_keywords_tag_refused_inquiries(
    dovecot: Dovecot, user: str, make_config: MakeConfig
) -> None:
    dovecot.deliver(user, make_mail(*EN_REFUSAL))
    dovecot.deliver(user, make_mail(*EN_ORDINARY))
    run(make_config(user, drafting={"tag_keywords": True}))
    flags = inbox_flags(dovecot, user)
    assert flags[1] == {b"$triage_cannot_pay"}
    assert flags[2] == set()


def test_tls_with_certificate_checks(dovecot: Dovecot, user: str, make_config: MakeConfig) -> None:
    dovecot.deliver(user, make_mail(*EN_REFUSAL))
    cfg = make_config(
        user, security="tls", port=dovecot.imaps_port, host="localhost", tls_ca_file=dovecot.ca_file
    )
    assert run(cfg).drafted == {"cannot_pay": 1}
    untrusted = make_config(user, security="tls", port=dovecot.imaps_port, host="localhost")
    (summary,) = runner.run_once(untrusted)
    assert "certificate not trusted" in summary.failure
    starttls = make_config(
        user,
        security="starttls",
        port=dovecot.imap_port,
        host="localhost",
        tls_ca_file=dovecot.ca_file,
    )
    assert run(starttls).seen == 0


def test_wrong_password_is_a_clear_auth_error(
    dovecot: Dovecot, user: str, make_config: MakeConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    from triage.imap import ImapMailbox

    cfg = make_config(user)
    monkeypatch.setenv("TRIAGE_TEST_PASSWORD", "wrong")
    with pytest.raises(AuthError, match="refused the username or password"):
        ImapMailbox(cfg.accounts[0])
    (summary,) = runner.run_once(cfg)
    assert "refused" in summary.failure


def test_connection_refused_is_a_mailbox_error(make_config: MakeConfig, user: str) -> None:
    from tests.dovecot import free_port

    cfg = make_config(user, port=free_port())
    (summary,) = runner.run_once(cfg)
    assert summary.failure.startswith("account 'work' (127.0.0.1:")
    assert "cannot connect" in summary.failure
    with pytest.raises(MailboxError):
        runner.open_mailbox(cfg.accounts[0])


def test_first_pass_looks_back_only_first_run_days(
    dovecot: Dovecot, user: str, make_config: MakeConfig
) -> None:
    from datetime import datetime, timedelta

    client = dovecot.client(user)
    old = datetime.now(UTC) - timedelta(days=30)
    client.append("INBOX", make_mail(*EN_REFUSAL, date=old), msg_time=old)
    client.logout()
    dovecot.deliver(user, make_mail(*FR_REFUSAL))
    summary = run(make_config(user, first_run_days=7))
    assert summary.seen == 1 and summary.drafted == {"third_party": 1}


def test_oversized_message_is_skipped_with_reason(
    dovecot: Dovecot, user: str, make_config: MakeConfig
) -> None:
    subject, body = EN_REFUSAL
    dovecot.deliver(user, make_mail(subject, body + "x" * 5000))
    summary = run(make_config(user, max_message_bytes=2000))
    assert summary.skipped == {"too large": 1}
    assert drafts(dovecot, user) == []


def test_earlier_reply_in_sent_feeds_the_already_helped_signal(
    dovecot: Dovecot, user: str, make_config: MakeConfig
) -> None:
    earlier = make_mail(
        "Re: Your CV",
        "Here is your revised CV with the changes we discussed: the summary, the experience "
        "section and the skills list for recruiters.",
        sender="Camille Martin <camille@example.com>",
        to="Tom Okafor <tom@client.example>",
    )
    dovecot.deliver(user, earlier, folder="Sent")
    dovecot.deliver(
        user,
        make_mail(
            "CV again",
            "Hi Camille, recruiters still don't call back after the CV changes. Could we look at "
            "the experience section and the summary of my CV once more? Tom",
            sender="Tom Okafor <tom@client.example>",
        ),
    )
    summary = run(make_config(user), dry_run=True)
    (report,) = summary.reports
    assert any(
        "earlier thread with this sender" in e for e in report.evidence.get("already_helped", [])
    )


def test_check_names_the_folders_and_says_what_is_wrong(
    dovecot: Dovecot,
    user: str,
    make_config: MakeConfig,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from triage.cli import main

    good = make_config(user).accounts[0]
    path = tmp_path / "check.toml"
    path.write_text(
        f'state_dir = "{tmp_path / "s"}"\n'
        f'[[accounts]]\nname = "work"\nhost = "127.0.0.1"\nport = {good.port}\n'
        f'security = "plain"\nusername = "{user}"\npassword_env = "TRIAGE_TEST_PASSWORD"\n'
        f'[[accounts]]\nname = "broken"\nhost = "127.0.0.1"\nport = {good.port}\n'
        f'security = "plain"\nusername = "{user}"\npassword_env = "TRIAGE_UNSET_PASSWORD"\n'
    )
    monkeypatch.delenv("TRIAGE_UNSET_PASSWORD", raising=False)
    assert main(["check", "--config", str(path)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"config {path}: ok (2 account(s))")
    assert lines[1] == "work: ok; inbox = INBOX, drafts = Drafts, sent = Sent"
    assert lines[2] == (
        "broken: account 'broken': environment variable TRIAGE_UNSET_PASSWORD "
        "is not set (password_env)"
    )
