"""Password sources and OAuth2 against the test Dovecot, and no secret in any log or trace.

The test Dovecot accepts XOAUTH2 with the token "secret" (its static passdb checks the token
as a password), so the whole XOAUTH2 exchange runs for real.
"""

from __future__ import annotations

import base64
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import EN_REFUSAL, make_mail
from tests.daemon_helpers import write_config
from tests.dovecot import PASSWORD, Dovecot
from triage import config, credentials, runner
from triage.errors import AuthError, ConfigError

MakeConfig = Callable[..., config.Config]


@pytest.fixture(autouse=True)
def no_cached_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(credentials, "_tokens", {})


def token_command(tmp_path: Path, *tokens: str) -> tuple[str, Path]:
    """A command printing `tokens` in turn (the last one from then on), and its call log."""
    calls = tmp_path / "calls"
    script = tmp_path / "token.sh"
    lines = [f'echo x >> "{calls}"', f'n=$(wc -l < "{calls}")']
    for i, token in enumerate(tokens[:-1], 1):
        lines.append(f'[ "$n" -eq {i} ] && {{ echo {token}; exit 0; }}')
    lines.append(f"echo {tokens[-1]}")
    script.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return f"sh {script}", calls


def calls(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_xoauth2_runs_the_token_command_again_when_the_token_is_refused(
    dovecot: Dovecot, user: str, make_config: MakeConfig, tmp_path: Path
) -> None:
    dovecot.deliver(user, make_mail(*EN_REFUSAL))
    command, log = token_command(tmp_path, "expired-token", PASSWORD)
    cfg = make_config(user, password_env="", oauth2_token_command=command)

    (summary,) = runner.run_once(cfg)
    assert not summary.failure, summary.failure
    assert summary.drafted == {"cannot_pay": 1}
    assert calls(log) == 2  # the stale token, then a fresh one
    (summary,) = runner.run_once(cfg)
    assert not summary.failure
    assert calls(log) == 2  # the accepted token is reused while the server takes it


def test_a_token_refused_even_fresh_is_one_clear_auth_error(
    dovecot: Dovecot, user: str, make_config: MakeConfig, tmp_path: Path
) -> None:
    command, log = token_command(tmp_path, "wrong")
    cfg = make_config(user, password_env="", oauth2_token_command=command)
    with pytest.raises(
        AuthError, match="refused the OAuth2 access token from oauth2_token_command"
    ):
        runner.open_mailbox(cfg.accounts[0])
    assert calls(log) == 2


def test_keyring_password(dovecot: Dovecot, user: str, make_config: MakeConfig) -> None:
    keyring = pytest.importorskip("keyring")
    from keyring.backend import KeyringBackend

    class Memory(KeyringBackend):
        """A real keyring backend that keeps its secrets in memory (not the user's keyring)."""

        priority = 1  # type: ignore[assignment]

        def __init__(self) -> None:
            super().__init__()
            self.items: dict[tuple[str, str], str] = {}

        def get_password(self, service: str, username: str) -> str | None:
            return self.items.get((service, username))

        def set_password(self, service: str, username: str, password: str) -> None:
            self.items[(service, username)] = password

        def delete_password(self, service: str, username: str) -> None:
            del self.items[(service, username)]

    keyring.set_keyring(Memory())
    cfg = make_config(user, password_env="", password_keyring="triage-test")
    with pytest.raises(ConfigError, match=f"no password stored for '{user}'; store it with: "):
        credentials.password(cfg.accounts[0])
    keyring.set_password("triage-test", user, PASSWORD)
    dovecot.deliver(user, make_mail(*EN_REFUSAL))
    (summary,) = runner.run_once(cfg)
    assert not summary.failure and summary.drafted == {"cannot_pay": 1}


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"password_command": "pass x"}, "sets password_env and password_command: keep only one"),
        ({"password_env": "", "oauth2_token_command": "t", "username": ""}, "needs 'username'"),
        ({"password_env": ""}, "no password source: set password_env, password_command, "),
        ({"idle_refresh": 1800}, "idle_refresh must be between 1 and 1740 seconds"),
        ({"poll_every": 0}, "poll_every and timeout must be > 0 seconds"),
    ],
)
def test_new_account_keys_are_checked(
    make_config: MakeConfig, user: str, keys: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        make_config(user, **keys)


def test_example_config_documents_every_key() -> None:
    import dataclasses

    text = (Path(__file__).resolve().parent.parent / "config.example.toml").read_text()
    for cls in (config.Account, config.Daemon):
        for f in dataclasses.fields(cls):
            assert f"{f.name} = " in text, f"{cls.__name__}.{f.name} is not in config.example.toml"


@pytest.mark.parametrize("source", ["password", "oauth2"])
def test_no_secret_in_debug_protocol_traces(
    source: str, dovecot: Dovecot, user: str, tmp_path: Path
) -> None:
    dovecot.deliver(user, make_mail(*EN_REFUSAL))
    if source == "password":
        keys: dict[str, Any] = {}
    else:
        keys = {"password_env": "", "oauth2_token_command": f"echo {PASSWORD}"}
    path = write_config(tmp_path / "config.toml", dovecot, {"work": user}, **keys)
    done = subprocess.run(
        [sys.executable, "-m", "triage", "run", "--once", "--debug", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        env={"TRIAGE_TEST_PASSWORD": PASSWORD, "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    trace = done.stdout + done.stderr
    assert "**REDACTED**" in trace  # the trace is on, and the login line was hidden
    assert "< b'* OK" in trace or "< b'" in trace
    assert PASSWORD not in trace
    assert "no budget at all" not in trace  # nor a message body (imaplib logs literals)
    sasl = f"user={user}\1auth=Bearer {PASSWORD}\1\1".encode()
    assert base64.b64encode(sasl).decode() not in trace
