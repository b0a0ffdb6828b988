from __future__ import annotations

from pathlib import Path

import pytest

from triage import config
from triage.cli import main
from triage.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent

GOOD = """
[identity]
name = "C"
address = "c@example.com"
[[accounts]]
name = "work"
host = "imap.example.com"
username = "c@example.com"
password_env = "X"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_example_config_parses_with_every_documented_key() -> None:
    cfg = config.load(ROOT / "config.example.toml")
    assert cfg.accounts[0].security == "tls"
    assert config.account_port(cfg.accounts[0]) == 993


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("state_dir = [", "not valid TOML"),
        (
            GOOD.replace('name = "C"', 'nmae = "C"'),
            "unknown key 'identity.nmae'; did you mean 'name'?",
        ),
        (GOOD + "first_run_days = 'x'\n", "'accounts[0].first_run_days' must be an integer"),
        (GOOD.replace('password_env = "X"', ""), "no password source"),
        (
            GOOD.replace(
                'host = "imap.example.com"', 'host = "imap.example.com"\nsecurity = "plain"'
            ),
            "allowed only to a loopback host",
        ),
        (
            GOOD.replace('host = "imap.example.com"', 'host = "x"\nsecurity = "ssl"'),
            "security must be tls, starttls or plain",
        ),
        ("[rules.en]\nwhatever = ['x']\n", "unknown label 'whatever'"),
        ("[drafting]\nexplain_reason = 'yes'\n", "must be true or false"),
    ],
)
def test_config_errors_name_the_file_the_key_and_the_fix(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        config.load(path)
    assert message in str(info.value)
    assert str(path) in str(info.value)


def test_cli_prints_one_line_and_exits_2_on_a_config_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, GOOD.replace("username", "usrname"))
    assert main(["run", "--once", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"triage: {path}: unknown key 'accounts[0].usrname'; did you mean")
    assert "Traceback" not in err


def test_missing_config_says_where_to_put_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TRIAGE_CONFIG", str(tmp_path / "nope.toml"))
    assert main(["check"]) == 2
    assert "no config file at" in capsys.readouterr().err


def test_password_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from triage import credentials

    account = config.Account(name="a", host="h", password_env="TRIAGE_PW")
    monkeypatch.delenv("TRIAGE_PW", raising=False)
    with pytest.raises(ConfigError, match="TRIAGE_PW is not set"):
        credentials.password(account)
    monkeypatch.setenv("TRIAGE_PW", "s3cret")
    assert credentials.password(account) == "s3cret"
    command = config.Account(name="a", host="h", password_command="printf 'from-command\\nx'")
    assert credentials.password(command) == "from-command"
    failing = config.Account(name="a", host="h", password_command="false")
    with pytest.raises(ConfigError, match="exited with status 1"):
        credentials.password(failing)
