from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path

import pytest

from tests.conftest import EN_ORDINARY, EN_REFUSAL, FR_REFUSAL, SHARED, make_mail
from triage.cli import main
from triage.labels import LABELS


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str], str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out.splitlines(), captured.err


def test_classify_files_directories_and_maildirs_as_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    one = tmp_path / "one.txt"
    one.write_bytes(make_mail(*EN_REFUSAL))
    nested = tmp_path / "dir" / "deeper"
    nested.mkdir(parents=True)
    (nested / "no-extension").write_bytes(make_mail(*FR_REFUSAL))
    (tmp_path / "dir" / "list.eml").write_bytes(
        make_mail(*EN_REFUSAL, headers={"List-Id": "<l.example>"})
    )
    md = tmp_path / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (md / sub).mkdir(parents=True)
    (md / "cur" / "1.x:2,S").write_bytes(make_mail(*EN_ORDINARY))
    (md / "tmp" / "partial").write_bytes(b"half a deliv")
    code, lines, _ = run(["classify", "--json", str(one), str(tmp_path / "dir"), str(md)], capsys)
    assert code == 0
    records = [json.loads(line) for line in lines]
    assert [r["id"] for r in records] == [
        str(one),
        str(tmp_path / "dir" / "list.eml"),
        str(tmp_path / "dir" / "deeper" / "no-extension"),
        str(md / "cur" / "1.x:2,S"),
    ]
    assert [r["label"] for r in records] == ["cannot_pay", "cannot_pay", "third_party", "none"]
    assert [r["lang"] for r in records] == ["en", "en", "fr", "en"]
    assert records[1]["screened"] == "mailing list (List-* header)"
    assert records[0]["screened"] is None
    assert list(records[0]["scores"]) == list(LABELS)
    assert "for free" in records[0]["evidence"]["cannot_pay"]


def test_classify_jsonl_and_stdin(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "inquiries.jsonl"
    data.write_text(
        json.dumps(
            {
                "id": "a",
                "subject": "Logo",
                "body": "Pas de budget, un échange de services ?",
                "label": "cannot_pay",
            },
            ensure_ascii=False,
        )
        + "\n\n"
        + json.dumps({"id": "b", "subject": "Quote", "body": "Could you send your rates?"})
        + "\n",
        encoding="utf-8",
    )
    code, lines, _ = run(["classify", "--json", str(data)], capsys)
    assert code == 0
    got = {json.loads(line)["id"]: json.loads(line) for line in lines}
    assert got["a"]["label"] == "cannot_pay" and got["a"]["lang"] == "fr"
    assert got["b"]["label"] == "none"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(make_mail(*EN_REFUSAL))))
    code, lines, _ = run(["classify", "-"], capsys)
    assert code == 0 and lines[0].startswith("-\tcannot_pay\ten\tcannot_pay: ")


def test_classify_bad_input_is_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "subject": "x", "body": "y"}\n{"id": "b"}\n')
    code, _, err = run(["classify", str(bad)], capsys)
    assert code == 2
    assert err == f"triage: {bad}:2: missing or non-string field(s): subject, body\n"
    code, _, err = run(["classify", str(tmp_path / "missing")], capsys)
    assert code == 2 and "no such file or directory" in err


def test_every_corpus_file_goes_through_classify_without_a_crash(
    capsys: pytest.CaptureFixture[str],
) -> None:
    corpus = SHARED / "corpus"
    if not corpus.is_dir():
        pytest.skip(f"{corpus} is absent: the shared corpus is not part of the project")
    files = [p for p in corpus.rglob("*") if p.is_file() and not p.is_symlink()]
    code, lines, err = run(["classify", "--json", str(corpus)], capsys)
    assert code == 0
    assert "Traceback" not in err
    records = [json.loads(line) for line in lines]
    assert len(records) == len(files)
    readable = [r for r in records if r["label"] is not None]
    assert len(readable) >= 0.99 * len(files)
    assert all(r["error"].startswith("unreadable message") for r in records if r["label"] is None)
    ham = [r for r in readable if os.sep + "spamassassin_ham" + os.sep in r["id"]]
    share = sum(r["label"] != "none" and r["screened"] is None for r in ham) / len(ham)
    print(f"spamassassin ham that would get a draft: {share:.1%}")
