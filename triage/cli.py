"""The command line: the only place that configures logging and turns errors into exit codes."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from triage import __version__
from triage.errors import ConfigError, InputError, TriageError

if TYPE_CHECKING:
    from triage.config import Config

log = logging.getLogger("triage")


COMMON_DEFAULTS = {"config": None, "verbose": False, "quiet": False, "debug": False}


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    for name, default in COMMON_DEFAULTS.items():
        if not hasattr(args, name):
            setattr(args, name, default)
    _logging(args)
    try:
        result: int = args.func(args)
        return result
    except TriageError as exc:
        if args.debug:
            raise
        print(f"triage: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `triage classify ... | head`
        sys.stderr.close()
        return 0


def _parser() -> argparse.ArgumentParser:
    # SUPPRESS: a sub-command's defaults must not undo `triage -q run` (see main()).
    common = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    common.add_argument(
        "--config",
        metavar="PATH",
        type=Path,
        help="config file (default: $TRIAGE_CONFIG or the user config dir)",
    )
    common.add_argument("-v", "--verbose", action="store_true", help="log each message")
    common.add_argument("-q", "--quiet", action="store_true", help="log only problems")
    common.add_argument(
        "--debug",
        action="store_true",
        help="log everything, addresses and subjects included; show tracebacks",
    )
    parser = argparse.ArgumentParser(
        prog="triage",
        parents=[common],
        description="Drafts polite refusals for the inquiries you should say no to. "
        "It never sends mail and never changes your messages.",
    )
    parser.add_argument("--version", action="version", version=f"triage {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", parents=[common], help="one pass over the accounts")
    run.add_argument(
        "--once",
        action="store_true",
        required=True,
        help="one pass, then exit (required; `triage daemon` keeps running)",
    )
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="decide and render, but write nothing to the server or the state",
    )
    run.add_argument("--account", metavar="NAME", help="only this account")
    run.set_defaults(func=_run, default_level=logging.INFO)

    classify = sub.add_parser(
        "classify", parents=[common], help="classify message files, directories, Maildirs or .jsonl"
    )
    classify.add_argument("paths", nargs="+", metavar="PATH", help="'-' reads stdin")
    classify.add_argument("--json", action="store_true", help="one JSON object per line")
    classify.set_defaults(func=_classify)

    check = sub.add_parser("check", parents=[common], help="validate config, connect, find folders")
    check.set_defaults(func=_check)

    demo = sub.add_parser("demo", parents=[common], help="run one pass on a bundled demo Maildir")
    demo.set_defaults(func=_demo)
    _service_parsers(sub, common)
    from triage import cli_model

    cli_model.add_commands(sub, common)
    return parser


def _service_parsers(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    daemon = sub.add_parser(
        "daemon", parents=[common], help="keep running: poll and IDLE; SIGHUP reloads the config"
    )
    daemon.add_argument("--account", metavar="NAME", help="only this account")
    daemon.set_defaults(func=_daemon, default_level=logging.INFO)

    status = sub.add_parser(
        "status", parents=[common], help="per account: last pass, last error, day and week"
    )
    status.set_defaults(func=_status)

    decisions = sub.add_parser(
        "log", parents=[common], help="the recent decisions, their evidence, where the drafts are"
    )
    decisions.add_argument("--account", metavar="NAME", help="only this account")
    decisions.add_argument("-n", type=int, default=20, metavar="N", help="how many (default: 20)")
    decisions.set_defaults(func=_log)


def _logging(args: argparse.Namespace) -> None:
    level = getattr(args, "default_level", logging.WARNING)
    if args.verbose:
        level = logging.INFO
    if args.quiet:
        level = logging.WARNING
    if args.debug:
        level = logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_FORMAT)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    log.setLevel(level)
    # A run skipped while a long pass still runs is the point of max_instances=1, not news.
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    if args.debug:  # the IMAP protocol trace; imapclient hides LOGIN and AUTHENTICATE
        logging.getLogger("imapclient").setLevel(logging.DEBUG)
        logging.getLogger("imapclient.imaplib").addFilter(_no_message_data)


def _no_message_data(record: logging.LogRecord) -> bool:
    """imaplib's trace repeats every response with its literals, message bodies included."""
    return not str(record.msg).startswith("untagged_responses[")


_FORMAT = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S")


def _log_file(cfg: Config) -> None:
    """The daemon's optional log file, beside standard error; reopened after rotation."""
    import logging.handlers
    import os

    if not cfg.daemon.log_file:
        return
    path = Path(os.path.expanduser(cfg.daemon.log_file))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.WatchedFileHandler(path, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{cfg.path}: [daemon] log_file: cannot write {path}: {exc}") from None
    handler.setFormatter(_FORMAT)
    logging.getLogger().addHandler(handler)


def _run(args: argparse.Namespace) -> int:
    from triage import config, runner

    cfg = config.load(args.config)
    summaries = runner.run_once(cfg, account=args.account, dry_run=args.dry_run)
    if args.dry_run:
        print("dry run: nothing was written to the server or the state")
    for line in runner.summarize(summaries):
        print(line)
    return 1 if any(s.failure for s in summaries) else 0


def _daemon(args: argparse.Namespace) -> int:
    from triage import config, scheduler

    cfg = config.load(args.config)
    _log_file(cfg)
    return scheduler.serve(cfg, account=args.account)


def _status(args: argparse.Namespace) -> int:
    from triage import config, report
    from triage.state import State

    cfg = config.load(args.config)
    state = State(cfg.state_path, readonly=True)
    try:
        for line in report.status(cfg, state):
            print(line)
    finally:
        state.close()
    return 0


def _log(args: argparse.Namespace) -> int:
    from triage import config, report
    from triage.state import State

    cfg = config.load(args.config)
    if args.account:
        cfg.account(args.account)
    if args.n < 1:
        raise InputError("-n must be at least 1")
    state = State(cfg.state_path, readonly=True)
    try:
        lines = report.decisions(cfg, state, args.account, args.n)
    finally:
        state.close()
    print("\n".join(lines) if lines else "nothing handled yet")
    return 0


def _classify(args: argparse.Namespace) -> int:
    from triage import runner, sources
    from triage.screening import screen

    cfg = optional_config(args.config)
    classifier = runner.build_classifier(cfg)
    own = {cfg.identity.address, *cfg.identity.aliases} - {""}
    unreadable = 0
    batch: list[sources.Item] = []

    def flush() -> None:
        ready = [item for item in batch if item.inquiry is not None]
        decisions = iter(classifier.decide([i.inquiry for i in ready if i.inquiry]))
        for item in batch:
            if item.inquiry is None:
                _emit_error(item, args.json)
                continue
            decision = next(decisions)
            screened = screen(item.inquiry, own_addresses=own, allow=cfg.screening.allow)
            if args.json:
                print(
                    json.dumps(
                        {
                            "id": item.id,
                            "label": decision.label,
                            "scores": decision.scores,
                            "evidence": decision.evidence,
                            "lang": decision.lang,
                            "screened": screened,
                        },
                        ensure_ascii=False,
                    )
                )
            else:
                extra = f"  [no draft: {screened}]" if screened else ""
                evidence = "; ".join(f"{k}: {', '.join(v)}" for k, v in decision.evidence.items())
                print(f"{item.id}\t{decision.label}\t{decision.lang}\t{evidence}{extra}")
        batch.clear()

    for item in sources.read(args.paths):
        unreadable += item.inquiry is None
        batch.append(item)
        if len(batch) >= 256:
            flush()
    flush()
    if unreadable:
        print(f"triage: {unreadable} message(s) could not be read", file=sys.stderr)
    return 0


def _emit_error(item: object, as_json: bool) -> None:
    ident, error = getattr(item, "id", ""), getattr(item, "error", "")
    if as_json:
        print(json.dumps({"id": ident, "label": None, "error": error}, ensure_ascii=False))
    else:
        print(f"{ident}\terror\t{error}")


def optional_config(path: Path | None) -> Config:
    from triage import config

    if path is not None or config.default_path().exists():
        return config.load(path)
    return config.Config()


def _check(args: argparse.Namespace) -> int:
    from triage import config, runner

    cfg = config.load(args.config)
    print(f"config {cfg.path}: ok ({len(cfg.accounts)} account(s)); state in {cfg.state_path}")
    failed = 0
    for account in cfg.accounts:
        try:
            mailbox = runner.open_mailbox(account)
        except TriageError as exc:
            failed += 1
            print(f"{account.name}: {exc}")
            continue
        try:
            folders = ", ".join(f"{role} = {name}" for role, name in mailbox.folders().items())
            print(f"{account.name}: ok; {folders}")
        finally:
            mailbox.close()
    return 1 if failed else 0


def _demo(args: argparse.Namespace) -> int:
    from triage import demo

    return demo.run(sys.stdout)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
