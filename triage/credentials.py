"""Secrets by indirection: the config names where the password is, never the password.

Nothing here logs a secret: errors name the config key and the account, never the value.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import threading

from triage.config import Account
from triage.errors import ConfigError

#: The last OAuth2 access token per account: token commands can be slow (a network round
#: trip), so one is reused until the server refuses it.
_tokens: dict[str, str] = {}
_tokens_guard = threading.Lock()


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
    if account.password_keyring:
        return _keyring(account)
    raise ConfigError(f"account {account.name!r}: no password source configured")


def oauth2_token(account: Account, *, fresh: bool = False) -> str:
    """The access token for XOAUTH2; `fresh` runs the command again (the last was refused)."""
    key = f"{account.name}\n{account.oauth2_token_command}"
    with _tokens_guard:
        if not fresh and _tokens.get(key):
            return _tokens[key]
    token = _run(account.oauth2_token_command, account.name, "oauth2_token_command")
    with _tokens_guard:
        _tokens[key] = token
    return token


def _keyring(account: Account) -> str:
    try:
        import keyring
        from keyring.errors import KeyringError
    except ImportError:
        raise ConfigError(
            f"account {account.name!r}: password_keyring needs the keyring package: "
            "pip install 'triage[keyring]'"
        ) from None
    where = f"account {account.name!r}: password_keyring {account.password_keyring!r}"
    try:
        value = keyring.get_password(account.password_keyring, account.username)
    except KeyringError as exc:
        raise ConfigError(f"{where}: the system keyring cannot be used: {exc}") from None
    if value is None:
        raise ConfigError(
            f"{where}: no password stored for {account.username!r}; store it with: "
            f"keyring set {shlex.quote(account.password_keyring)} "
            f"{shlex.quote(account.username)}"
        )
    return str(value)


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
