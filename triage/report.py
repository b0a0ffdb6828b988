"""What `triage status` and `triage log` print: the state database, read only, as text."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from datetime import UTC, datetime, timedelta

from triage.config import Account, Config
from triage.state import Activity, State, lock_holder


def status(config: Config, state: State, now: datetime | None = None) -> list[str]:
    """Per account: who is working on it, the last good pass, the last error, day and week."""
    now = now or datetime.now(UTC)
    lines = []
    for account in config.accounts:
        holder = lock_holder(config.state_path, account.name)
        lines.append(f"{account.name}: {'running: ' + holder if holder else 'not running'}")
        good = state.last_pass(account.name, ok=True)
        bad = state.last_pass(account.name, ok=False)
        lines.append(
            "  last successful pass: " + (_when(good["finished"], now) if good else "never")
        )
        if bad is None:
            lines.append("  last error: none")
        else:
            recovered = good is not None and good["finished"] > bad["finished"]
            lines.append(
                f"  last error: {_when(bad['finished'], now)}: {bad['error']}"
                + (" (recovered since)" if recovered else "")
            )
        for title, days in (("last day", 1), ("last week", 7)):
            counts = _counts(state.activity(account.name, now - timedelta(days=days)))
            lines.append(f"  {title + ':':<10} {counts}")
    return lines


def decisions(config: Config, state: State, account: str | None, limit: int) -> list[str]:
    """The last decisions, newest first: what, why (evidence), and where the draft is."""
    accounts = {a.name: a for a in config.accounts}
    lines = []
    for row in state.recent(account, limit):
        lines.extend(_decision(row, accounts.get(row["account"])))
    return lines


def _decision(row: sqlite3.Row, account: Account | None) -> list[str]:
    what = row["action"]
    if row["action"] == "drafted":
        what += f" {row['label']}/{row['lang']}"
    elif row["reason"]:
        what += f" ({row['reason']})"
    sender = f" from {row['sender']}" if row["sender"] else ""
    lines = [
        f"{_local(row['handled_at'])}  {row['account']}  uid {row['uid']}  {what}: "
        f"{row['subject']!r}{sender}"
    ]
    evidence = json.loads(row["evidence"] or "{}")
    if evidence:
        found = "; ".join(
            f"{label}: {', '.join(map(repr, words))}" for label, words in evidence.items()
        )
        lines.append(f"    evidence: {found}")
    if row["draft_message_id"]:
        folder = (account.drafts_folder if account else "") or "the Drafts folder"
        place = f"uid {row['draft_uid']} in {folder}" if row["draft_uid"] else f"in {folder}"
        lines.append(f"    draft: {place}, Message-ID {row['draft_message_id']}")
    return lines


def _counts(activity: Activity) -> str:
    return (
        f"seen {activity.seen}; drafted {_per(activity.drafted)}; "
        f"skipped {_per(activity.skipped)}; no refusal {activity.no_refusal}; "
        f"errors {activity.errors}; failed passes {activity.failed_passes}"
    )


def _per(counter: Counter[str]) -> str:
    if not counter:
        return "0"
    return ", ".join(f"{key} {value}" for key, value in sorted(counter.items()))


def _local(stamp: str) -> str:
    return datetime.fromisoformat(stamp).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _when(stamp: str, now: datetime) -> str:
    seconds = max(0, int((now - datetime.fromisoformat(stamp)).total_seconds()))
    if seconds < 120:
        ago = f"{seconds} s ago"
    elif seconds < 7200:
        ago = f"{seconds // 60} min ago"
    elif seconds < 172800:
        ago = f"{seconds // 3600} h ago"
    else:
        ago = f"{seconds // 86400} days ago"
    return f"{_local(stamp)} ({ago})"
