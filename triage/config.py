"""TOML -> frozen dataclasses, validated once at start so no bad key surfaces mid-pass."""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import os
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from triage.errors import ConfigError
from triage.labels import LABELS, LANGUAGES

APP = "triage"


@dataclass(frozen=True)
class Identity:
    name: str = ""
    address: str = ""
    #: Other addresses of the user: mail from them is never answered.
    aliases: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Resource:
    title: str
    url: str = ""


@dataclass(frozen=True)
class Drafting:
    explain_reason: bool = True
    signature: str = ""
    resources: list[Resource] = field(default_factory=list)
    referrals: list[str] = field(default_factory=list)
    templates_dir: str = ""
    #: Tag each refused inquiry with an IMAP keyword such as `$triage_cannot_pay`.
    tag_keywords: bool = False
    #: Unread drafts stand out in clients that count unread mail per folder.
    mark_drafts_seen: bool = False


@dataclass(frozen=True)
class Screening:
    #: Addresses or @domains never to refuse (people you always answer yourself).
    allow: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Rules:
    """Extra phrases per language and label, added to the bundled ones."""

    en: dict[str, list[str]] = field(default_factory=dict)
    fr: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelSettings:
    #: false: decide with the phrase rules alone (no scikit-learn needed).
    enabled: bool = True


@dataclass(frozen=True)
class Training:
    #: The account whose folders hold labelled past inquiries; empty: the first account.
    account: str = ""
    #: Label -> folder, e.g. cannot_pay = "Clients/Refused/Budget", none = "Clients/Accepted".
    folders: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Account:
    name: str
    host: str = ""
    port: int = 0
    security: str = "tls"
    username: str = ""
    password_env: str = ""
    password_command: str = ""
    #: A service name in the system keyring (optional `keyring` extra); the user is `username`.
    password_keyring: str = ""
    #: A command printing a fresh OAuth2 access token (XOAUTH2, Gmail and Microsoft 365).
    oauth2_token_command: str = ""
    tls_ca_file: str = ""
    inbox: str = "INBOX"
    drafts_folder: str = ""
    first_run_days: int = 7
    max_message_bytes: int = 10_000_000
    fetch_batch: int = 50
    timeout: float = 60.0
    #: A local Maildir instead of an IMAP server.
    maildir: str = ""
    #: The daemon's polling interval, in seconds (IDLE, when on, brings new mail sooner).
    poll_every: float = 300.0
    #: IMAP IDLE push in the daemon, where the server offers it.
    idle: bool = True
    #: Seconds before an IDLE command is renewed; RFC 2177 asks for less than 29 minutes.
    idle_refresh: float = 540.0

    @property
    def is_maildir(self) -> bool:
        return bool(self.maildir)


@dataclass(frozen=True)
class Daemon:
    #: Also log to this file (reopened when rotated); empty: standard error only.
    log_file: str = ""
    #: After a network fault, retries start after about a second and double up to this.
    backoff_max: float = 300.0
    #: After the server refuses the credentials, seconds before trying again (or SIGHUP).
    auth_retry: float = 3600.0


@dataclass(frozen=True)
class Config:
    path: str = ""
    state_dir: str = ""
    identity: Identity = field(default_factory=Identity)
    drafting: Drafting = field(default_factory=Drafting)
    screening: Screening = field(default_factory=Screening)
    rules: Rules = field(default_factory=Rules)
    accounts: list[Account] = field(default_factory=list)
    daemon: Daemon = field(default_factory=Daemon)
    #: Your time zone (e.g. "Europe/Paris"); empty: this computer's.
    timezone: str = ""
    #: Mail sent outside these hours and days supports the private-time situation.
    working_hours: str = "09:00-18:00"
    working_days: list[str] = field(default_factory=lambda: ["mon", "tue", "wed", "thu", "fri"])
    model: ModelSettings = field(default_factory=lambda: ModelSettings())
    training: Training = field(default_factory=lambda: Training())

    @property
    def state_path(self) -> Path:
        base = self.state_dir or platformdirs.user_data_dir(APP)
        return Path(os.path.expanduser(base))

    def account(self, name: str) -> Account:
        for account in self.accounts:
            if account.name == name:
                return account
        known = ", ".join(a.name for a in self.accounts) or "none"
        raise ConfigError(f"no account named {name!r} in {self.path} (accounts: {known})")


def default_path() -> Path:
    env = os.environ.get("TRIAGE_CONFIG")
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_config_dir(APP)) / "config.toml"


def load(path: Path | None = None) -> Config:
    path = path or default_path()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"no config file at {path}: copy config.example.toml there, or pass --config PATH"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse(data, str(path))


def parse(data: dict[str, Any], path: str = "<config>") -> Config:
    if "path" in data:
        raise ConfigError(f"{path}: unknown key 'path'")
    config: Config = _build(Config, {**data, "path": path}, path, "")
    _check(config)
    return config


def _build(cls: type[Any], data: Any, path: str, where: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: [{where}] must be a table")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in fields:
            close = difflib.get_close_matches(key, list(fields), n=1)
            hint = (
                f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(fields)}"
            )
            raise ConfigError(f"{path}: unknown key {_dotted(where, key)!r}{hint}")
    values: dict[str, Any] = {}
    for name, f in fields.items():
        if name in data:
            values[name] = _convert(hints[name], data[name], path, _dotted(where, name))
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{path}: missing key {_dotted(where, name)!r}")
    return cls(**values)


def _convert(hint: Any, value: Any, path: str, key: str) -> Any:
    origin = typing.get_origin(hint)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _build(hint, value, path, key)
    if origin is list:
        (item,) = typing.get_args(hint)
        if not isinstance(value, list):
            raise ConfigError(f"{path}: {key!r} must be a list")
        return [_convert(item, v, path, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        _, item = typing.get_args(hint)
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: {key!r} must be a table")
        return {k: _convert(item, v, path, f"{key}.{k}") for k, v in value.items()}
    if origin in (types.UnionType, typing.Union):  # pragma: no cover - no optional keys yet
        raise AssertionError(hint)
    expected = {str: "a string", int: "an integer", bool: "true or false", float: "a number"}
    ok = isinstance(value, hint) and not (hint is int and isinstance(value, bool))
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not ok:
        raise ConfigError(f"{path}: {key!r} must be {expected.get(hint, hint)}, not {value!r}")
    return value


def _dotted(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _check(config: Config) -> None:
    path = config.path
    from triage.context import WorkingTime

    WorkingTime.parse(config.timezone, config.working_hours, config.working_days, path)
    for label in config.training.folders:
        if label not in LABELS:
            raise ConfigError(f"{path}: [training.folders] has unknown label {label!r}")
    for lang in LANGUAGES:
        for label in getattr(config.rules, lang):
            if label not in LABELS or label == "none":
                raise ConfigError(f"{path}: [rules.{lang}] has unknown label {label!r}")
    names: set[str] = set()
    for i, account in enumerate(config.accounts):
        key = f"accounts[{i}]"
        if not account.name.strip():
            raise ConfigError(f"{path}: {key}.name must not be empty")
        if account.name in names:
            raise ConfigError(f"{path}: two accounts are named {account.name!r}")
        names.add(account.name)
        if account.is_maildir:
            continue
        if not account.host:
            raise ConfigError(f"{path}: {key} needs 'host' (or 'maildir' for a local Maildir)")
        if account.security not in ("tls", "starttls", "plain"):
            raise ConfigError(f"{path}: {key}.security must be tls, starttls or plain")
        if account.security == "plain" and not _is_loopback(account.host):
            raise ConfigError(
                f"{path}: {key}.security = 'plain' sends the password in clear; it is allowed "
                f"only to a loopback host, not {account.host!r}: use 'tls' or 'starttls'"
            )
        _check_secrets(path, key, account)
        if account.first_run_days < 0 or account.max_message_bytes <= 0:
            raise ConfigError(f"{path}: {key}: first_run_days and max_message_bytes must be >= 0")
        if not 1 <= account.idle_refresh <= 29 * 60:
            raise ConfigError(
                f"{path}: {key}.idle_refresh must be between 1 and 1740 seconds (29 minutes)"
            )
    for i, account in enumerate(config.accounts):
        if account.poll_every <= 0 or account.timeout <= 0:
            raise ConfigError(f"{path}: accounts[{i}]: poll_every and timeout must be > 0 seconds")
    if config.daemon.backoff_max < 1 or config.daemon.auth_retry < 1:
        raise ConfigError(f"{path}: [daemon] backoff_max and auth_retry must be >= 1 second")


SECRET_KEYS = ("password_env", "password_command", "password_keyring", "oauth2_token_command")


def _check_secrets(path: str, key: str, account: Account) -> None:
    sources = [name for name in SECRET_KEYS if getattr(account, name)]
    if not sources:
        raise ConfigError(
            f"{path}: {key} has no password source: set password_env, password_command, "
            "password_keyring or oauth2_token_command"
        )
    if len(sources) > 1:
        raise ConfigError(f"{path}: {key} sets {' and '.join(sources)}: keep only one")
    if (account.password_keyring or account.oauth2_token_command) and not account.username:
        raise ConfigError(f"{path}: {key}.{sources[0]} needs 'username'")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def account_port(account: Account) -> int:
    if account.port:
        return account.port
    return 993 if account.security == "tls" else 143
