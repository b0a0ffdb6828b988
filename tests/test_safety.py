"""The safety contract, held by reading the code: no sending, no deleting, no moving."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "triage"

FORBIDDEN_MODULES = {"smtplib", "smtpd", "aiosmtplib"}
#: imapclient and mailbox methods that delete, expunge, move, copy or rewrite user mail.
FORBIDDEN_CALLS = {
    "delete_messages",
    "expunge",
    "uid_expunge",
    "move",
    "copy",
    "delete_folder",
    "rename_folder",
    "create_folder",
    "remove_flags",
    "set_flags",
    "remove_gmail_labels",
    "set_gmail_labels",
    "sendmail",
    "send_message",
    "remove",
    "discard",
    "__delitem__",
    "lock",
    "flush",
    "clear",
    "pop",
    "popitem",
    "update",
}
ALLOWED = {
    # (module, attribute): uses on objects that are not the user's mail.
    ("pipeline.py", "update"),
    ("rules.py", "update"),
    ("config.py", "update"),
    ("state.py", "update"),
    ("cli.py", "clear"),
    ("text.py", "update"),
    ("pipeline.py", "discard"),
    ("maildir.py", "discard"),
    ("maildir.py", "set_flags"),  # on the draft being written, before it is stored
    ("state.py", "flush"),  # the lock file
    ("training.py", "update"),  # a hash of the training data
    ("model.py", "update"),  # the memo of term columns
    ("model.py", "clear"),
}


def python_files() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_no_module_can_send_mail() -> None:
    for path in python_files():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            assert not {n.split(".")[0] for n in names} & FORBIDDEN_MODULES, path


def test_no_call_deletes_moves_or_rewrites_mail() -> None:
    offences = []
    for path in python_files():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and node.attr in FORBIDDEN_CALLS
                and (path.name, node.attr) not in ALLOWED
            ):
                offences.append(f"{path.name}:{node.lineno} .{node.attr}")
    assert offences == []


def test_the_only_writes_to_a_store_are_append_and_keywords() -> None:
    imap = (PACKAGE / "imap.py").read_text(encoding="utf-8")
    calls = {
        node.attr
        for node in ast.walk(ast.parse(imap))
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Attribute)
        and node.value.attr == "client"
    }
    # Reading: select, search, fetch, list; writing: append a draft, add a keyword.
    assert calls <= {
        "select_folder",
        "search",
        "fetch",
        "list_folders",
        "append",
        "add_flags",
        "starttls",
        "login",
        "logout",
        # The daemon: IDLE on the inbox, NOOP on a kept connection, closing a dead one.
        "has_capability",
        "idle",
        "idle_check",
        "idle_done",
        "noop",
        "shutdown",
        "socket",
    }, calls
