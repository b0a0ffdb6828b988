"""The trained model: safe loading, fallback, context signals, lazy import."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from triage import model, registry
from triage.classify import HybridClassifier, RuleClassifier
from triage.context import Context, WorkingTime, similarity
from triage.errors import ConfigError, ModelError
from triage.labels import LABELS, NONE
from triage.parsing import from_fields

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def shipped() -> model.Model:
    return model.load(registry.shipped_dir())


def test_shipped_model_and_its_metadata(shipped: model.Model) -> None:
    meta = shipped.meta
    assert meta["labels"] == list(LABELS)
    assert set(shipped.labels) == set(LABELS)
    assert set(meta["thresholds"]) == set(LABELS) - {NONE}
    assert {"scikit-learn", "skops", "numpy"} <= set(meta["versions"])
    assert len(meta["data_sha256"]) == 64
    for report in ("cross_validated", "development_split"):
        assert 0 < meta[report]["macro_f1"] <= 1
        assert set(meta[report]["by_language"]) == {"en", "fr"}


def copy_model(tmp_path: Path) -> Path:
    target = tmp_path / "m"
    target.mkdir(parents=True)
    for name in ("model.skops", "model.json"):
        shutil.copy(registry.shipped_dir() / name, target / name)
    return target


def test_damaged_or_mismatched_model_is_one_clear_error(tmp_path: Path) -> None:
    target = copy_model(tmp_path)
    raw = bytearray((target / "model.skops").read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    (target / "model.skops").write_bytes(bytes(raw))
    with pytest.raises(ModelError, match="does not match its metadata"):
        model.load(target)
    target = copy_model(tmp_path / "2")
    meta = json.loads((target / "model.json").read_text())
    (target / "model.json").write_text(json.dumps({**meta, "features_version": 0}))
    with pytest.raises(ModelError, match="another version of triage"):
        model.load(target)
    (target / "model.skops").unlink()
    with pytest.raises(ModelError, match=r"model\.skops missing"):
        model.load(target)


def test_a_model_file_with_untrusted_types_is_not_loaded(tmp_path: Path) -> None:
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    evil = Pipeline([("f", FunctionTransformer(func=print))])
    model.save(evil, tmp_path, {})
    with pytest.raises(ModelError, match="types triage does not trust"):
        model.load(tmp_path)


def test_rules_decide_alone_when_the_model_cannot_load(caplog: pytest.LogCaptureFixture) -> None:
    def broken() -> model.Model:
        raise ModelError("no model at /nowhere")

    hybrid = HybridClassifier(RuleClassifier(), broken)
    inquiry = from_fields(subject="Logo", body="We have no budget, could you do it for free?")
    (decision,) = hybrid.decide([inquiry])
    assert decision.label == "cannot_pay"
    assert "deciding with the phrase rules alone" in caplog.text
    assert hybrid.decide([inquiry])[0].label == "cannot_pay"
    assert caplog.text.count("phrase rules alone") == 1


def test_model_catches_what_rules_miss_and_gives_evidence(shipped: model.Model) -> None:
    hybrid = HybridClassifier(RuleClassifier(), lambda: shipped)
    quiet = from_fields(
        subject="Sessions",
        body=(
            "Hello, my daughter has been struggling since she moved out. I would like to book "
            "coaching sessions for her; she does not know I'm writing to you. Thanks, Anne"
        ),
    )
    ordinary = from_fields(
        subject="Annual report",
        body=(
            "Dear Camille, we would like six illustrations for our annual report. Our budget is "
            "4,000 USD. Could you send your terms and availability? Kind regards, Grace"
        ),
    )
    third, none = hybrid.decide([quiet, ordinary])
    assert third.label == "third_party"
    assert any(e.startswith("model: ") for e in third.evidence["third_party"])
    assert none.label == NONE
    assert list(third.scores) == list(LABELS)


def test_working_time() -> None:
    wt = WorkingTime.parse("Europe/Paris", "09:00-18:00", ["mon", "tue", "wed", "thu", "fri"], "c")
    sunday_night = datetime(2026, 11, 22, 22, 30, tzinfo=UTC)  # 23:30 in Paris
    tuesday = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    assert wt.outside(sunday_night) == "sent on sun 23:30, not a working day"
    assert wt.outside(tuesday) == ""
    assert wt.outside(tuesday + timedelta(hours=10)) == "sent at 21:00, outside working hours"
    assert wt.outside(None) == ""
    for zone, hours, days, message in [
        ("Mars/Olympus", "09:00-18:00", ["mon"], "unknown timezone"),
        ("", "9h-18h", ["mon"], "must look like '09:00-18:00'"),
        ("", "09:00-18:00", ["monday", "someday"], "working_days has 'someday'"),
    ]:
        with pytest.raises(ConfigError, match=message):
            WorkingTime.parse(zone, hours, days, "c")


def test_send_time_supports_private_time_but_never_decides_alone(shipped: model.Model) -> None:
    wt = WorkingTime.parse("UTC", "09:00-18:00", ["mon", "tue", "wed", "thu", "fri"], "c")
    hybrid = HybridClassifier(RuleClassifier(), lambda: shipped, wt)
    night = "Sun, 22 Nov 2026 23:40:00 +0000"
    day = "Tue, 24 Nov 2026 10:00:00 +0000"
    ordinary = "Dear Camille, could you send your rates for a logo? Best, Grace"
    pushy = (
        "Hi, can we have a quick call tonight? I know it's late but I'd like to go "
        "through the last changes before tomorrow."
    )
    a, b, c, d = hybrid.decide(
        [
            from_fields(subject="Logo", body=ordinary, date=night),
            from_fields(subject="Logo", body=ordinary, date=day),
            from_fields(subject="Call", body=pushy, date=night),
            from_fields(subject="Call", body=pushy, date=day),
        ]
    )
    assert a.label == b.label == NONE
    assert c.scores["private_time"] > d.scores["private_time"]
    assert any("not a working day" in e for e in c.evidence["private_time"])


def test_history_similarity_separates_the_same_problem_from_a_new_need(
    shipped: model.Model,
) -> None:
    earlier = (
        "Re: Your CV\nHere is your revised CV with the changes we discussed: the "
        "summary, the experience section and the skills list for recruiters."
    )
    same = from_fields(
        subject="CV again",
        body=(
            "Hi Camille, recruiters still don't call back after the CV changes. Could we look at "
            "the experience section and the summary of my CV once more? Tom"
        ),
    )
    new = from_fields(
        subject="Logo",
        body=(
            "Hi Camille, I'm opening a bakery next spring and need a logo and a menu design. I "
            "have a budget of 2,000 euros. When could we talk? Tom"
        ),
    )
    assert similarity(same.new_text, [earlier]) >= 0.3
    assert similarity(new.new_text, [earlier]) < 0.1
    hybrid = HybridClassifier(RuleClassifier(), lambda: shipped)
    plain, with_history = hybrid.decide([same, same], [Context(), Context((earlier,))])
    assert with_history.scores["already_helped"] > plain.scores["already_helped"]
    assert any("earlier thread" in e for e in with_history.evidence["already_helped"])
    fresh, other = hybrid.decide([new, new], [Context(), Context((earlier,))])
    assert other.label == NONE
    assert other.scores["already_helped"] <= fresh.scores["already_helped"]


def test_help_and_an_idle_run_do_not_import_scikit_learn(tmp_path: Path) -> None:
    md = tmp_path / "Mail"
    for sub in ("cur", "new", "tmp", ".Drafts/cur", ".Drafts/new", ".Drafts/tmp"):
        (md / sub).mkdir(parents=True)
    config = tmp_path / "c.toml"
    config.write_text(
        f'state_dir = "{tmp_path / "s"}"\n[identity]\naddress = "c@example.com"\n'
        f'[[accounts]]\nname = "local"\nmaildir = "{md}"\n'
    )
    script = (
        "import sys, contextlib, io\n"
        "from triage.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n        main(['--help'])\n    except SystemExit:\n        pass\n"
        f"    code = main(['run', '--once', '--config', {str(config)!r}])\n"
        "print(code, 'sklearn' in sys.modules, 'skops' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert done.stdout.split() == ["0", "False", "False"]
