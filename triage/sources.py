"""Messages from files for `classify` (and later `train`/`eval`): paths -> inquiries.

A path is a message file, a directory (read recursively: every regular file is a message), a
Maildir, a `.jsonl` file in the format of LABELS.md, or `-` for one message on stdin.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from triage.errors import InputError
from triage.parsing import Inquiry, ParseError, from_fields, parse


@dataclass(frozen=True)
class Item:
    id: str
    inquiry: Inquiry | None
    error: str = ""
    label: str = ""


def read(paths: list[str]) -> Iterator[Item]:
    for name in paths:
        if name == "-":
            yield from_bytes("-", sys.stdin.buffer.read())
            continue
        path = Path(name)
        if path.is_dir():
            yield from _directory(path)
        elif path.is_file():
            if path.suffix == ".jsonl":
                yield from read_jsonl(path)
            else:
                yield _from_file(path)
        else:
            raise InputError(f"{name}: no such file or directory")


def _directory(root: Path) -> Iterator[Item]:
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        if Path(folder).name == "tmp" and {"cur", "new"} <= set(os.listdir(Path(folder).parent)):
            continue  # a Maildir's tmp/ holds deliveries in progress
        for name in sorted(files):
            path = Path(folder) / name
            if path.is_file() and not path.is_symlink():
                yield _from_file(path)


def _from_file(path: Path) -> Item:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return Item(str(path), None, f"cannot read: {exc.strerror}")
    return from_bytes(str(path), raw)


def from_bytes(ident: str, raw: bytes) -> Item:
    try:
        return Item(ident, parse(raw))
    except ParseError as exc:
        return Item(ident, None, f"unreadable message: {exc}")


def read_jsonl(path: Path) -> Iterator[Item]:
    """Records of LABELS.md; a malformed line is one clear error naming file and line."""
    try:
        handle = path.open(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror}") from None
    with handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                if not isinstance(record, dict):
                    raise ValueError("not a JSON object")
                missing = [
                    k for k in ("id", "subject", "body") if not isinstance(record.get(k), str)
                ]
                if missing:
                    raise ValueError(f"missing or non-string field(s): {', '.join(missing)}")
            except ValueError as exc:
                raise InputError(f"{path}:{number}: {exc}") from None
            inquiry = from_fields(
                subject=record["subject"],
                body=record["body"],
                from_name=str(record.get("from_name") or ""),
                from_addr=str(record.get("from_addr") or ""),
                date=str(record.get("date") or ""),
                lang=str(record.get("lang") or ""),
            )
            yield Item(record["id"], inquiry, label=str(record.get("label") or ""))
