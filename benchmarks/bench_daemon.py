"""The daemon's three figures, on a Dovecot of its own (tests/dovecot.py):

1. delivery to draft with IDLE: median and 95th percentile over 20 messages (Dovecot waits
   about 0.5 s before it tells an idling client, so that is the floor);
2. a poll that finds nothing on a 20,000-message inbox, as the daemon runs it (kept
   connection, `run_account`, the pass recorded), against a bare imapclient SELECT + UID
   SEARCH in the same run, as a ratio, and the same on a 100-message inbox: it must not grow;
3. the daemon's resident memory at the start and after a few thousand passes (polling every
   0.02 s, with mail arriving).

Run from the repository root: python benchmarks/bench_daemon.py [--only latency|poll|memory]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import EN_REFUSAL, make_mail  # noqa: E402
from tests.daemon_helpers import wait_until, write_config  # noqa: E402
from tests.dovecot import PASSWORD, Dovecot  # noqa: E402


def start_daemon(config: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "TRIAGE_TEST_PASSWORD": PASSWORD}
    with log.open("ab") as handle:
        return subprocess.Popen(
            [sys.executable, "-m", "triage", "daemon", "--config", str(config)],
            stderr=handle,
            stdout=subprocess.DEVNULL,
            env=env,
            cwd=ROOT,
        )


def passes(config: Path) -> int:
    path = config.parent / "state" / "state.sqlite3"
    if not path.exists():
        return 0
    db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=30)
    try:
        return int(db.execute("SELECT COUNT(*) FROM passes").fetchone()[0])
    except sqlite3.OperationalError:
        return 0
    finally:
        db.close()


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    process.wait(30)


def latency(server: Dovecot, work: Path) -> None:
    user = server.new_user()
    config = write_config(work / "latency.toml", server, {"work": user}, poll_every=3600.0)
    log = work / "latency.log"
    daemon = start_daemon(config, log)
    watcher = server.client(user)
    try:
        wait_until(lambda: "IDLE on INBOX" in log.read_text(), what="IDLE")
        wait_until(lambda: passes(config) >= 2, what="the catch-up pass")

        def drafts() -> int:
            return int(watcher.folder_status("Drafts", [b"MESSAGES"])[b"MESSAGES"])

        times = []
        for i in range(21):  # the first one warms up (imports, templates, model)
            subject, body = EN_REFUSAL
            raw = make_mail(f"{subject} {i}", body)
            started = time.perf_counter()
            server.deliver(user, raw)
            wait_until(lambda n=i + 1: drafts() >= n, timeout=60, what="a draft")
            times.append(time.perf_counter() - started)
    finally:
        watcher.logout()
        stop(daemon)
    first, times = times[0], times[1:]
    median, p95 = statistics.median(times), statistics.quantiles(times, n=20)[-1]
    print(
        f"IDLE delivery -> draft over 20 messages: median {median * 1000:.0f} ms, "
        f"p95 {p95 * 1000:.0f} ms (Dovecot's own notification delay is about 500 ms; "
        f"the first message after start, not counted: {first * 1000:.0f} ms)"
    )


def fill(server: Dovecot, user: str, count: int) -> None:
    """`count` old messages (older than first_run_days) and one recent one at the end."""
    old = datetime.now(UTC) - timedelta(days=60)
    client = server.client(user)
    try:
        for start in range(0, count - 1, 500):
            batch = [
                {"msg": make_mail(f"old {i}", "an old message\n", date=old), "date": old}
                for i in range(start, min(start + 500, count - 1))
            ]
            client.multiappend("INBOX", batch)
        client.append("INBOX", make_mail("Hello", "Just saying hello.\n"))
    finally:
        client.logout()


def timed(fn: Callable[[], object], rounds: int) -> float:
    """Median seconds per call, after a warm-up."""
    for _ in range(20):
        fn()
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def empty_poll(server: Dovecot, work: Path, size: int) -> dict[str, float]:
    """Median seconds, on a `size` inbox, of an empty poll: the daemon's pass, and bare
    imapclient commands on a session alone on the mailbox (the protocol's own cost)."""
    from triage import config as configuration
    from triage import runner
    from triage.drafting import Drafter
    from triage.imap import ImapMailbox
    from triage.worker import Worker

    user = server.new_user()
    fill(server, user, size)
    client = server.client(user)
    # As the user's mail client would: one read-write SELECT moves the messages from the
    # Maildir's new/ to cur/ (read-only sessions never do, and rescan new/ on every SELECT).
    client.select_folder("INBOX")
    last = size

    def bare_select() -> None:
        client.select_folder("INBOX", readonly=True)
        [u for u in client.search(["UID", f"{last + 1}:*"]) if u > last]

    def bare_noop() -> None:
        client.noop()
        [u for u in client.search(["UID", f"{last + 1}:*"]) if u > last]

    figures = {"select": timed(bare_select, 500), "noop": timed(bare_noop, 500)}
    client.logout()
    os.environ["TRIAGE_TEST_PASSWORD"] = PASSWORD
    folder = work / f"poll{size}"
    folder.mkdir()
    cfg = configuration.load(write_config(folder / "config.toml", server, {"work": user}))
    worker = Worker(
        cfg,
        cfg.accounts[0],
        runner.build_classifier(cfg),
        Drafter(cfg.identity, cfg.drafting),
        schedule=lambda delay: None,
    )
    worker.run()  # the first pass: records the one recent message
    cursor = worker.state.cursor("work", "INBOX")
    mailbox = ImapMailbox(cfg.accounts[0])
    try:
        figures["daemon"] = timed(worker.run, 500)
        figures["reselect"] = timed(lambda: mailbox.list_new(cursor, datetime.now(UTC)), 100)
    finally:
        mailbox.close()
        worker.stop()
        worker.close(timeout=5)
    return figures


def poll_cost(server: Dovecot, work: Path) -> None:
    for size in (100, 20_000):
        started = time.perf_counter()
        f = {k: v * 1000 for k, v in empty_poll(server, work, size).items()}
        print(
            f"empty poll, {size:>6} messages: daemon pass {f['daemon']:.2f} ms; bare SELECT + "
            f"UID SEARCH {f['select']:.2f} ms (ratio {f['daemon'] / f['select']:.1f}); bare "
            f"NOOP + UID SEARCH {f['noop']:.2f} ms (ratio {f['daemon'] / f['noop']:.1f}); "
            f"a re-SELECT as `run --once` does, beside other sessions: {f['reselect']:.2f} ms "
            f"(setup {time.perf_counter() - started:.0f} s)"
        )


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def memory(server: Dovecot, work: Path, total: int) -> None:
    user = server.new_user()
    config = write_config(work / "memory.toml", server, {"work": user}, poll_every=0.02)
    log = work / "memory.log"
    daemon = start_daemon(config, log)
    done = threading.Event()

    def mail() -> None:
        subject, body = EN_REFUSAL
        i = 0
        while not done.wait(0.2):
            server.deliver(user, make_mail(f"{subject} {i}", body))
            i += 1

    sender = threading.Thread(target=mail, daemon=True)
    try:
        wait_until(lambda: "IDLE on INBOX" in log.read_text(), what="IDLE")
        idle = rss_kib(daemon.pid)
        server.deliver(user, make_mail(*EN_REFUSAL))  # loads what a decision needs
        wait_until(lambda: ": drafted " in log.read_text(), timeout=60, what="the first draft")
        sender.start()
        marks = [(passes(config), rss_kib(daemon.pid))]
        for target in range(total // 4, total + 1, total // 4):
            wait_until(lambda t=target: passes(config) >= t, timeout=600, what=f"{target} passes")
            marks.append((passes(config), rss_kib(daemon.pid)))
    finally:
        done.set()
        stop(daemon)
    drafted = log.read_text().count(": drafted cannot_pay")
    steps = ", ".join(f"{n} passes {kib / 1024:.1f} MiB" for n, kib in marks)
    growth = (marks[-1][1] - marks[0][1]) / 1024
    print(
        f"daemon RSS: {idle / 1024:.1f} MiB idle before any message; after the first draft: "
        f"{steps}; growth {growth:+.1f} MiB ({drafted} drafts written, polling every 0.02 s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["latency", "poll", "memory"])
    parser.add_argument("--passes", type=int, default=4000, help="for the memory figure")
    args = parser.parse_args()
    server = Dovecot()
    server.start()
    work = Path(tempfile.mkdtemp(prefix="triage-bench-"))
    try:
        if args.only in (None, "latency"):
            latency(server, work)
        if args.only in (None, "poll"):
            poll_cost(server, work)
        if args.only in (None, "memory"):
            memory(server, work, args.passes)
    finally:
        server.cleanup()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
