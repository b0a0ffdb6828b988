"""`triage train`, `eval` and `model` on JSONL, label directories and IMAP label folders."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_mail
from tests.dovecot import Dovecot
from triage import config, registry, training
from triage.cli import main
from triage.labels import LABELS

PER_LABEL = 24


def records(per_label: int = PER_LABEL, shuffle_labels: bool = False) -> list[dict[str, Any]]:
    """A small labelled set taken from the shipped development split (never trained on)."""
    _, dev = training.split(training.shipped())
    out: list[dict[str, Any]] = []
    for label in LABELS:
        chosen = [e for e in dev if e.label == label][:per_label]
        out += [
            {
                "id": f"u-{e.id}",
                "subject": e.inquiry.subject,
                "body": e.inquiry.text,
                "lang": e.lang,
                "label": label,
            }
            for e in chosen
        ]
    if shuffle_labels:
        labels = [r["label"] for r in out]
        random.Random(3).shuffle(labels)
        out = [{**r, "label": lab} for r, lab in zip(out, labels, strict=True)]
    return out


def write_config(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'state_dir = "{tmp_path / "state"}"\n{extra}', encoding="utf-8")
    return path


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_train_on_jsonl_then_list_use_and_eval(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "mine.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in records()), encoding="utf-8")
    cfg = str(write_config(tmp_path))
    code, out, err = run(
        ["train", str(data), "--no-shipped", "--folds", "3", "--force", "--config", cfg], capsys
    )
    assert code == 0, err
    assert "cross-validating: fold 3/3" in err
    assert "macro-F1" in out and "false-refusal rate" in out
    assert "active model: v1" in out
    state = tmp_path / "state"
    meta = json.loads((state / "models" / "v1" / "model.json").read_text())
    assert meta["examples"] == PER_LABEL * len(LABELS)
    assert registry.active(state).name == "v1"

    code, out, _ = run(["model", "list", "--config", cfg], capsys)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("  shipped") and lines[1].startswith("* v1")

    code, out, _ = run(["eval", "--data", str(data), "--json", "--config", cfg], capsys)
    report = json.loads(out)
    assert report["model"] == "v1" and report["count"] == PER_LABEL * len(LABELS)
    assert set(report["per_label"]) == set(LABELS)
    assert {
        "macro_f1",
        "confusion",
        "by_language",
        "false_refusal_rate",
        "refusal_precision",
    } <= set(report)

    assert run(["model", "use", "shipped", "--config", cfg], capsys)[0] == 0
    assert registry.active(state).name == "shipped"
    code, _, err = run(["model", "use", "v9", "--config", cfg], capsys)
    assert code == 1 and "no model version 'v9'" in err


def test_a_worse_model_is_kept_but_not_activated_unless_forced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "noise.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in records(shuffle_labels=True)))
    cfg = str(write_config(tmp_path))
    code, out, _ = run(
        ["train", str(data), "--no-shipped", "--folds", "3", "--config", cfg], capsys
    )
    assert code == 0
    assert "not activated" in out
    assert registry.active(tmp_path / "state").name == "shipped"
    code, out, _ = run(
        ["train", str(data), "--no-shipped", "--folds", "3", "--force", "--config", cfg], capsys
    )
    assert "active model: v2" in out


def test_train_on_label_directories_keeps_shipped_examples_for_thin_labels(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "labelled"
    for n, record in enumerate(records()):
        if record["label"] == "guarantee" and n % PER_LABEL >= 5:
            continue  # only 5 guarantee examples of the user's own
        folder = root / record["label"]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{n}.eml").write_bytes(make_mail(record["subject"], record["body"]))
    examples = training.from_paths([str(root)])
    assert len(examples) == PER_LABEL * (len(LABELS) - 1) + 5
    cfg = str(write_config(tmp_path))
    code, _, err = run(
        ["train", str(root), "--no-shipped", "--folds", "2", "--force", "--config", cfg], capsys
    )
    assert code == 0
    assert "guarantee: only 5 example(s) of yours (fewer than 20); keeping the shipped" in err
    meta = json.loads((tmp_path / "state" / "models" / "v1" / "model.json").read_text())
    assert meta["by_label"]["guarantee"] > 100
    assert meta["by_label"]["cannot_pay"] == PER_LABEL


def test_bad_training_input_is_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "a", "subject": "s", "body": "b", "label": "maybe"}))
    code, _, err = run(["train", str(bad), "--config", str(write_config(tmp_path))], capsys)
    assert code == 2
    assert err == "triage: a: label 'maybe' is not one of " + ", ".join(LABELS) + "\n"
    code, _, err = run(["eval", "--config", str(write_config(tmp_path))], capsys)
    assert code == 2 and "eval needs --data" in err


def test_train_on_imap_label_folders(
    dovecot: Dovecot,
    user: str,
    make_config: Callable[..., config.Config],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    client = dovecot.client(user)
    for label in LABELS:
        client.create_folder(f"Labelled/{label}")
    for record in records():
        client.append(f"Labelled/{record['label']}", make_mail(record["subject"], record["body"]))
    client.logout()
    base = make_config(user)
    folders = "\n".join(f'{label} = "Labelled/{label}"' for label in LABELS)
    account = base.accounts[0]
    path = tmp_path / "imap.toml"
    path.write_text(
        f'state_dir = "{base.state_dir}"\n[training]\naccount = "work"\n[training.folders]\n'
        f'{folders}\n[[accounts]]\nname = "work"\nhost = "127.0.0.1"\nport = {account.port}\n'
        f'security = "plain"\nusername = "{user}"\npassword_env = "TRIAGE_TEST_PASSWORD"\n'
    )
    code, _, err = run(
        ["train", "--no-shipped", "--folds", "2", "--force", "--config", str(path)], capsys
    )
    assert code == 0, err
    assert f"cannot_pay: {PER_LABEL} message(s) in work:Labelled/cannot_pay" in err
    meta = json.loads((Path(base.state_dir) / "models" / "v1" / "model.json").read_text())
    assert meta["examples"] == PER_LABEL * len(LABELS)


def test_thresholds_lower_the_precision_target_only_while_out_of_fold_decisions_stay_safe() -> None:
    """Two situations the model is sure of, and `none` mail whose scores creep up: lowering
    the target would draft for too much ordinary mail, so the thresholds stop before."""
    labels = list(LABELS)
    g, n = labels.index("guarantee"), labels.index("none")

    def row(k: int, p: float) -> list[float]:
        out = [(1 - p) / (len(labels) - 1)] * len(labels)
        out[k] = p
        return out

    # 100 guarantees at 0.9..0.99, 100 `none`: 96 sure, 4 that look like guarantees (0.5..0.8).
    probs = [row(g, 0.9 + i / 1000) for i in range(100)]
    truth = ["guarantee"] * 100
    probs += [row(n, 0.9)] * 96 + [row(g, p) for p in (0.5, 0.6, 0.7, 0.8)]
    truth += ["none"] * 100
    limits, target = training.thresholds(probs, labels, truth)
    predicted = training.decide(probs, labels, limits)
    precision, false_refusals = training.safety(truth, predicted)
    assert false_refusals <= training.SAFETY[1] and precision >= training.SAFETY[0]
    assert predicted[:100] == ["guarantee"] * 100  # every real one is still caught
    assert target in training.TARGETS
    # The most permissive target would have let all four look-alikes through.
    loose = training.label_thresholds(probs, labels, truth, training.TARGETS[-1])
    assert training.safety(truth, training.decide(probs, labels, loose))[1] > false_refusals


def test_safety_bounds_keep_a_margin_for_the_sample_size() -> None:
    """3 drafts for 100 ordinary mails is exactly the budget as measured, but not with the
    uncertainty of so small a sample; 30 for 1,000 is closer to it."""
    truth = ["none"] * 100 + ["guarantee"] * 10
    predicted = ["guarantee"] * 3 + ["none"] * 97 + ["guarantee"] * 10
    assert training.safety(truth, predicted)[1] == 0.03
    small = training.safety(truth, predicted, training.MARGIN)
    assert small[1] > training.SAFETY[1]
    assert small[0] < training.safety(truth, predicted)[0]
    large = training.safety(truth * 10, predicted * 10, training.MARGIN)
    assert training.SAFETY[1] < large[1] < small[1]
