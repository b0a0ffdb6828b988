"""Metrics on labelled inquiries, in plain Python: what `triage eval` and `train` report."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from triage.labels import LABELS, NONE, REFUSALS


def per_label(truth: Sequence[str], predicted: Sequence[str]) -> dict[str, dict[str, float]]:
    report: dict[str, dict[str, float]] = {}
    for label in LABELS:
        tp = sum(1 for t, p in zip(truth, predicted, strict=True) if t == p == label)
        fp = sum(1 for t, p in zip(truth, predicted, strict=True) if p == label != t)
        fn = sum(1 for t, p in zip(truth, predicted, strict=True) if t == label != p)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        report[label] = {
            "precision": round(precision, 4),
            "recall": round(recall, 4),
            "f1": round(f1, 4),
            "support": tp + fn,
        }
    return report


def macro_f1(report: dict[str, dict[str, float]]) -> float:
    present = [r["f1"] for r in report.values() if r["support"]]
    return round(sum(present) / len(present), 4) if present else 0.0


def evaluate(
    truth: Sequence[str], predicted: Sequence[str], langs: Sequence[str] | None = None
) -> dict[str, Any]:
    """Everything the issue asks for in one dict: per label, macro-F1, confusion, by language,
    refusal precision, and the false-refusal rate (share of `none` that would get a draft)."""
    report = per_label(truth, predicted)
    refused = [(t, p) for t, p in zip(truth, predicted, strict=True) if p in REFUSALS]
    right = sum(1 for t, p in refused if t == p)
    nones = [p for t, p in zip(truth, predicted, strict=True) if t == NONE]
    result: dict[str, Any] = {
        "count": len(truth),
        "per_label": report,
        "macro_f1": macro_f1(report),
        "refusal_precision": round(right / len(refused), 4) if refused else 0.0,
        "false_refusal_rate": round(sum(p != NONE for p in nones) / len(nones), 4)
        if nones
        else 0.0,
        "confusion": {
            t: {
                p: sum(1 for a, b in zip(truth, predicted, strict=True) if a == t and b == p)
                for p in LABELS
            }
            for t in LABELS
        },
    }
    if langs is not None:
        result["by_language"] = {}
        for lang in sorted(set(langs)):
            idx = [i for i, lg in enumerate(langs) if lg == lang]
            sub = per_label([truth[i] for i in idx], [predicted[i] for i in idx])
            result["by_language"][lang] = {"count": len(idx), "macro_f1": macro_f1(sub)}
    return result


def render(result: dict[str, Any]) -> str:
    """The report as a readable table."""
    lines = [f"{'label':<16}{'precision':>10}{'recall':>8}{'f1':>8}{'support':>9}"]
    for label, r in result["per_label"].items():
        lines.append(
            f"{label:<16}{r['precision']:>10.3f}{r['recall']:>8.3f}{r['f1']:>8.3f}{r['support']:>9}"
        )
    lines.append(f"\nmacro-F1 {result['macro_f1']:.3f} over {result['count']} inquiries")
    for lang, sub in result.get("by_language", {}).items():
        lines.append(f"  {lang}: macro-F1 {sub['macro_f1']:.3f} ({sub['count']})")
    lines.append(f"precision on the refusal labels {result['refusal_precision']:.3f}")
    lines.append(
        f"false-refusal rate {result['false_refusal_rate']:.1%} "
        "(share of `none` that would get a draft)"
    )
    short = {label: label[:6] for label in LABELS}
    lines.append("\nconfusion (rows: truth, columns: predicted)")
    lines.append(" " * 16 + "".join(f"{short[p]:>8}" for p in LABELS))
    for t, row in result["confusion"].items():
        lines.append(f"{t:<16}" + "".join(f"{row[p]:>8}" for p in LABELS))
    return "\n".join(lines)
