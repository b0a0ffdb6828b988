"""`triage train`, `triage eval` and `triage model`: the trained classifier's commands."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from triage import registry
from triage.errors import InputError, TriageError
from triage.evaluation import evaluate, render

if TYPE_CHECKING:
    from triage import training
    from triage.config import Config


def add_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    train = sub.add_parser(
        "train", parents=[common], help="retrain the classifier on your labelled past inquiries"
    )
    train.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help=".jsonl files, or directories named after labels (Maildirs or "
        "folders of messages), or a directory of such directories",
    )
    train.add_argument(
        "--no-shipped",
        action="store_true",
        help="do not merge the shipped examples (kept for labels you lack)",
    )
    train.add_argument(
        "--force", action="store_true", help="make the new model active even if it scores worse"
    )
    train.add_argument("--folds", type=int, help="cross-validation folds (default: 5)")
    train.add_argument("--ship", action="store_true", help=argparse.SUPPRESS)
    train.set_defaults(func=_train)

    ev = sub.add_parser("eval", parents=[common], help="measure the classifier on labelled data")
    ev.add_argument("--data", nargs="+", metavar="PATH", help="labelled .jsonl or directories")
    ev.add_argument("--dev", action="store_true", help="the shipped development split")
    ev.add_argument("--json", action="store_true", help="the report as one JSON object")
    ev.set_defaults(func=_eval)

    model = sub.add_parser("model", parents=[common], help="list or choose model versions")
    verbs = model.add_subparsers(dest="verb", required=True, metavar="VERB")
    verbs.add_parser("list", parents=[common], help="the versions, the active one marked")
    use = verbs.add_parser("use", parents=[common], help="make VERSION the active model")
    use.add_argument("version", metavar="VERSION", help="'shipped' or a version such as v2")
    model.set_defaults(func=_model)


def _config(args: argparse.Namespace) -> Config:
    from triage.cli import optional_config

    return optional_config(args.config)


def _say(message: str) -> None:
    print(f"triage: {message}", file=sys.stderr, flush=True)


def _train(args: argparse.Namespace) -> int:
    from triage import training

    cfg = _config(args)
    folds = args.folds or training.FOLDS
    train_split, dev = training.split(training.shipped())
    if args.ship:
        return _ship(train_split, dev, folds)
    user = training.from_paths(args.paths) + _imap_examples(cfg)
    if not user and args.no_shipped:
        raise InputError("nothing to train on: give labelled data (PATH or [training.folders])")
    examples = training.merge(user, train_split, not args.no_shipped, _say)
    pipeline, meta, predicted = training.train(examples, _say, folds=folds)
    print(render(meta["cross_validated"]))
    candidate, current = _compare(cfg, examples, predicted, pipeline, meta, user, dev)
    directory = registry.next_dir(cfg.state_path)
    meta["compared"] = {"candidate_macro_f1": candidate, "active_macro_f1": current}
    from triage import model

    model.save(pipeline, directory, meta)
    print(f"\nsaved as {directory.name} in {directory.parent}")
    if current is not None and candidate < current and not args.force:
        print(
            f"not activated: macro-F1 {candidate:.3f} is below the active model's "
            f"{current:.3f} on the same inquiries (use --force, or `triage model use "
            f"{directory.name}`)"
        )
        return 0
    registry.use(cfg.state_path, directory.name)
    print(f"active model: {directory.name}")
    return 0


def _compare(
    cfg: Config,
    examples: list[training.Example],
    predicted: list[str],
    pipeline: Any,
    meta: dict[str, Any],
    user: list[training.Example],
    dev: list[training.Example],
) -> tuple[float, float | None]:
    """Candidate and active model on the same inquiries: the user's (out of fold for the
    candidate), or the shipped development split when the user gave none."""
    from triage import model as model_module
    from triage import training

    try:
        active = model_module.load(registry.active(cfg.state_path).directory)
    except TriageError as exc:
        _say(f"no active model to compare with ({exc})")
        active = None
    if user:
        ids = {e.id for e in user}
        pairs = [(e, p) for e, p in zip(examples, predicted, strict=True) if e.id in ids]
        truth = [e.label for e, _ in pairs]
        candidate = evaluate(truth, [p for _, p in pairs])["macro_f1"]
        subset = [e for e, _ in pairs]
    else:
        candidate = evaluate(
            [e.label for e in dev], training.predict(pipeline, meta["thresholds"], dev)
        )["macro_f1"]
        subset, truth = dev, [e.label for e in dev]
    if active is None:
        return candidate, None
    current = evaluate(truth, training.predict(active.pipeline, active.thresholds, subset))
    return candidate, current["macro_f1"]


def _imap_examples(cfg: Config) -> list[training.Example]:
    if not cfg.training.folders:
        return []
    from triage import training
    from triage.runner import open_mailbox

    account = cfg.account(cfg.training.account) if cfg.training.account else cfg.accounts[0]
    mailbox = open_mailbox(account)
    try:
        examples: list[training.Example] = []
        for label, folder in cfg.training.folders.items():
            raws = mailbox.folder_messages(folder)
            _say(f"{label}: {len(raws)} message(s) in {account.name}:{folder}")
            examples.extend(training.from_raw(raws, label, f"{account.name}:{folder}"))
        return examples
    finally:
        mailbox.close()


def _ship(train_split: list[training.Example], dev: list[training.Example], folds: int) -> int:
    """Maintainers: rebuild the model shipped in models/ from the shipped corpus."""
    from triage import model, training

    pipeline, meta, _ = training.train(train_split, _say, folds=folds)
    predicted = training.predict(pipeline, meta["thresholds"], dev)
    meta["development_split"] = evaluate([e.label for e in dev], predicted, [e.lang for e in dev])
    model.save(pipeline, registry.shipped_dir(), meta)
    print(render(meta["development_split"]))
    return 0


def _eval(args: argparse.Namespace) -> int:
    from triage import model, training

    cfg = _config(args)
    if args.dev:
        examples = training.split(training.shipped())[1]
    elif args.data:
        examples = training.from_paths(args.data)
    else:
        raise InputError("eval needs --data PATH (labelled .jsonl or directories) or --dev")
    if not examples:
        raise InputError("no labelled inquiries found in the data given")
    version = registry.active(cfg.state_path)
    loaded = model.load(version.directory)
    predicted = training.predict(loaded.pipeline, loaded.thresholds, examples)
    result = evaluate([e.label for e in examples], predicted, [e.lang for e in examples])
    result["model"] = version.name
    if args.json:
        print(json.dumps(result))
    else:
        print(f"model {version.name} on {len(examples)} labelled inquiries\n")
        print(render(result))
    return 0


def _model(args: argparse.Namespace) -> int:
    cfg = _config(args)
    if args.verb == "use":
        version = registry.use(cfg.state_path, args.version)
        print(f"active model: {version.name} ({version.directory})")
        return 0
    active = registry.active(cfg.state_path).name
    for version in registry.versions(cfg.state_path):
        meta = version.meta
        cv = meta.get("cross_validated", {}).get("macro_f1")
        score = f"cross-validated macro-F1 {cv:.3f}" if isinstance(cv, float) else "no metrics"
        mark = "*" if version.name == active else " "
        print(
            f"{mark} {version.name:<8} {meta.get('trained_at', '?'):<26} "
            f"{meta.get('examples', '?')!s:>6} examples  {score}  {Path(version.directory)}"
        )
    return 0
