from __future__ import annotations

import email
import email.policy
import os
from pathlib import Path

import pytest

from tests.conftest import EN_REFUSAL, FR_REFUSAL, make_mail
from triage import config, demo, runner
from triage.cli import main
from triage.errors import MailboxError


def maildir(root: Path) -> Path:
    for sub in ("cur", "new", "tmp", ".Drafts/cur", ".Drafts/new", ".Drafts/tmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    return root


def maildir_config(root: Path, state: Path) -> config.Config:
    return config.parse(
        {
            "state_dir": str(state),
            "identity": {"name": "C", "address": "c@example.com"},
            "accounts": [{"name": "local", "maildir": str(root)}],
        }
    )


def test_maildir_account_drafts_once_with_the_d_flag(tmp_path: Path) -> None:
    root = maildir(tmp_path / "Mail")
    (root / "new" / "1.a.host").write_bytes(make_mail(*EN_REFUSAL))
    (root / "cur" / "2.b.host:2,S").write_bytes(make_mail(*FR_REFUSAL))
    (root / "cur" / "3.c.host:2,RS").write_bytes(make_mail(*EN_REFUSAL))  # answered already
    cfg = maildir_config(root, tmp_path / "state")
    (summary,) = runner.run_once(cfg)
    assert summary.drafted == {"cannot_pay": 1, "third_party": 1}
    assert summary.skipped == {"already answered": 1}
    drafts = sorted((root / ".Drafts" / "cur").iterdir())
    assert len(drafts) == 2
    assert all(name.name.endswith(":2,D") for name in drafts)
    message = email.message_from_bytes(drafts[0].read_bytes(), policy=email.policy.default)
    assert b"\r\n" not in drafts[0].read_bytes()
    assert str(message["Subject"]).startswith("Re: ")
    # The user's mail is untouched: same names, same bytes.
    assert sorted(os.listdir(root / "new")) == ["1.a.host"]
    (again,) = runner.run_once(cfg)
    assert again.seen == 0
    # A mail client moving the message from new/ to cur/ does not make it new.
    os.rename(root / "new" / "1.a.host", root / "cur" / "1.a.host:2,S")
    assert runner.run_once(cfg)[0].seen == 0
    assert len(list((root / ".Drafts" / "cur").iterdir())) == 2


def test_not_a_maildir_is_a_clear_error(tmp_path: Path) -> None:
    (summary,) = runner.run_once(maildir_config(tmp_path / "nope", tmp_path / "state"))
    assert "is not a Maildir" in summary.failure
    root = tmp_path / "nodrafts"
    for sub in ("cur", "new", "tmp"):
        (root / sub).mkdir(parents=True)
    from triage.maildir import MaildirMailbox

    with pytest.raises(MailboxError, match="no Drafts Maildir"):
        MaildirMailbox(config.Account(name="x", maildir=str(root)))


def test_demo_runs_a_real_pass_on_the_bundled_maildir(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    first = out.splitlines()[0]
    assert first.startswith("demo: seen 13; drafted ")
    assert "skipped mailing list 1" in first and "errors 0" in first
    drafted = dict(
        part.rsplit(" ", 1) for part in first.split("drafted ")[1].split(";")[0].split(", ")
    )
    assert len(drafted) >= 5  # most of the seven situations are recognised
    assert "'Demande de devis' (fr): none" in out
    assert "'Illustrations for our annual report' (en): none" in out
    assert "draft(s) written to" in out
    (target,) = tmp_path.glob("triage-demo-*")
    drafts = list((target / "Maildir" / ".Drafts" / "cur").iterdir())
    assert len(drafts) == sum(int(n) for n in drafted.values())


def test_demo_prepare_uses_the_config_format(tmp_path: Path) -> None:
    cfg = demo.prepare(tmp_path)
    assert cfg.accounts[0].maildir == str(tmp_path / "Maildir")
    assert len(list((tmp_path / "Maildir" / "new").iterdir())) == 13
