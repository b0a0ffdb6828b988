"""Secrets by indirection: the config names where the password is, never the password."""

from __future__ import annotations

import os
import shlex
import subprocess

from triage.config import Account
from triage.errors import ConfigError


def password(account: Account) -> str:
    if account.password_env:
        value = os.environ.get(account.password_env)
        if value is None:
            raise ConfigError(
                f"account {account.name!r}: environment variable {account.password_env} "
                "is not set (password_env)"
            )
        return value
    if account.password_command:
        return _run(account.password_command, account.name, "password_command")
    raise ConfigError(f"account {account.name!r}: no password source configured")


def _run(command: str, account: str, key: str) -> str:
    try:
        done = subprocess.run(
            shlex.split(command), capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, ValueError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(f"account {account!r}: {key} could not run: {exc}") from None
    if done.returncode != 0:
        raise ConfigError(
            f"account {account!r}: {key} exited with status {done.returncode}; "
            "run it by hand to see why"
        )
    value = done.stdout.splitlines()[0] if done.stdout else ""
    if not value:
        raise ConfigError(f"account {account!r}: {key} printed nothing")
    return value
