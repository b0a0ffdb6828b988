"""`triage demo`: one real pass over a bundled Maildir copied to a fresh temp dir."""

from __future__ import annotations

import shutil
import tempfile
import tomllib
from importlib import resources
from pathlib import Path
from typing import TextIO

from triage import config, runner


def prepare(target: Path) -> config.Config:
    """Copy the demo Maildir under `target` and return the demo config pointing at it."""
    maildir = target / "Maildir"
    bundled = resources.files("triage.demo").joinpath("Maildir", "new")
    for sub in ("cur", "new", "tmp", ".Drafts/cur", ".Drafts/new", ".Drafts/tmp"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    for entry in bundled.iterdir():
        if entry.is_file():
            # Written, not copied with its metadata: the arrival time is now.
            (maildir / "new" / entry.name).write_bytes(entry.read_bytes())
    text = resources.files("triage.demo").joinpath("config.toml").read_text("utf-8")
    text = text.replace("{state_dir}", str(target / "state")).replace("{maildir}", str(maildir))
    return config.parse(tomllib.loads(text), "<demo config>")


def run(out: TextIO) -> int:
    target = Path(tempfile.mkdtemp(prefix="triage-demo-"))
    cfg = prepare(target)
    summaries = runner.run_once(cfg)
    for line in runner.summarize(summaries):
        print(line, file=out)
    print(file=out)
    for report in summaries[0].reports:
        verdict = report.label if report.action in ("drafted", "no_refusal") else report.action
        print(
            f"- {report.subject!r} ({report.lang or '?'}): {verdict}"
            + (f" [{report.reason}]" if report.reason else ""),
            file=out,
        )
        for label, phrases in report.evidence.items():
            print(f"    {label} {report.scores.get(label, 0):.2f}: {', '.join(phrases)}", file=out)
    drafts = target / "Maildir" / ".Drafts" / "cur"
    files = sorted(drafts.iterdir())
    print(f"\n{len(files)} draft(s) written to {drafts}", file=out)
    if files:
        print(f"one of them, as your mail client will show it ({files[0].name}):\n", file=out)
        from email import message_from_bytes, policy

        message = message_from_bytes(files[0].read_bytes(), policy=policy.default)
        for header in ("From", "To", "Subject", "In-Reply-To"):
            print(f"{header}: {message[header]}", file=out)
        body = message.get_body(("plain",))
        print("\n" + (body.get_content() if body is not None else ""), file=out)
    print(f"(delete {target} when done)", file=out)
    shutil.rmtree(target / "state" / "locks", ignore_errors=True)
    return 1 if any(s.failure for s in summaries) else 0
