"""Issue 3's figures: classifier cost beside parsing, training time, peak memory of a pass,
and start-up time. Prints figures; asserts nothing. Run: python benchmarks/bench_classify.py
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from triage import training  # noqa: E402
from triage.classify import HybridClassifier, RuleClassifier  # noqa: E402
from triage.parsing import parse  # noqa: E402


def messages(count: int) -> list[bytes]:
    """MIME messages built from the shipped corpus (repeated to reach `count`)."""
    examples = training.shipped()
    out = []
    for n in range(count):
        e = examples[n % len(examples)]
        msg = EmailMessage()
        msg["From"] = f"{e.inquiry.sender_name or 'Client'} <c{n}@client.example>"
        msg["To"] = "camille@example.com"
        msg["Subject"] = e.inquiry.subject
        msg["Date"] = (
            format_datetime(e.inquiry.date) if e.inquiry.date else "Mon, 2 Nov 2026 10:00:00 +0000"
        )
        msg["Message-ID"] = make_msgid(domain="client.example")
        msg.set_content(e.inquiry.text)
        out.append(msg.as_bytes())
    return out


def throughput(repeats: int = 5) -> None:
    """Each figure is the best of `repeats` runs: on a shared machine, one run of a few
    seconds can vary by a quarter, and the best run is the one least disturbed."""
    raws = messages(3000)  # the corpus in file order: every label, both languages
    from triage import model, registry

    loaded = model.load(registry.shipped_dir())
    parse_s, classify_s, rules_s = [], [], []
    for _ in range(repeats):
        start = time.perf_counter()
        parsed = [parse(raw) for raw in raws]
        parse_s.append(time.perf_counter() - start)
        hybrid = HybridClassifier(RuleClassifier(), lambda: loaded)
        hybrid.decide(parsed[:10])  # warm up
        start = time.perf_counter()
        for i in range(0, len(parsed), 256):
            hybrid.decide(parsed[i : i + 256])
        classify_s.append(time.perf_counter() - start)
        start = time.perf_counter()
        RuleClassifier().decide(parsed)
        rules_s.append(time.perf_counter() - start)
    n, parse_t, classify_t = len(raws), min(parse_s), min(classify_s)
    print(f"best of {repeats} runs over {n} messages:")
    print(f"parse alone:            {n / parse_t:8.0f} msg/s")
    print(
        f"classify alone (hybrid):{n / classify_t:8.0f} msg/s  (rules alone {n / min(rules_s):.0f})"
    )
    print(
        f"parse + classify:       {n / (parse_t + classify_t):8.0f} msg/s; classifying costs "
        f"{classify_t / parse_t:.2f}x parsing"
    )


def training_time() -> None:
    base = training.shuffled(training.shipped())
    for size in (2000, 10000):
        examples = [
            training.Example(f"{e.id}#{k}", e.inquiry, e.label)
            for k in range(size // len(base) + 1)
            for e in base
        ][:size]
        start = time.perf_counter()
        training.train(examples, lambda _m: None, folds=5)
        print(
            f"train (5-fold CV + final fit) on {size:>6} inquiries: "
            f"{time.perf_counter() - start:6.1f} s"
        )


def pass_memory() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        md = Path(tmp) / "Mail"
        for sub in ("cur", "new", "tmp", ".Drafts/cur", ".Drafts/new", ".Drafts/tmp"):
            (md / sub).mkdir(parents=True)
        for n, raw in enumerate(messages(2000)):
            (md / "new" / f"{n}.bench").write_bytes(raw)
        config = Path(tmp) / "c.toml"
        config.write_text(
            f'state_dir = "{tmp}/state"\n[identity]\naddress = "c@example.com"\n'
            f'[[accounts]]\nname = "bench"\nmaildir = "{md}"\n'
        )
        peak_import = _peak(["triage", "--version"])
        start = time.perf_counter()
        peak = _peak(["triage", "-q", "run", "--once", "--config", str(config)])
        took = time.perf_counter() - start
        drafts = len(os.listdir(md / ".Drafts" / "cur"))
        print(
            f"peak memory of a pass over 2,000 messages ({drafts} drafts, {took:.1f} s): "
            f"{peak:.0f} MiB (`triage --version` alone: {peak_import:.0f} MiB)"
        )


PEAK = (
    "import atexit, re, runpy, sys\n"
    "def peak():\n"
    "    status = open('/proc/self/status').read()\n"
    "    sys.stderr.write('PEAK ' + re.search(r'VmHWM:\\s+(\\d+)', status).group(1) + '\\n')\n"
    "atexit.register(peak)\n"
    "sys.argv = sys.argv[1:]\n"
    "runpy.run_module(sys.argv[0], run_name='__main__', alter_sys=True)\n"
)


def _peak(args: list[str]) -> float:
    """Peak RSS of a fresh interpreter running `python -m ARGS`, in MiB. VmHWM belongs to the
    exec'd image (ru_maxrss would count the forking parent too)."""
    done = subprocess.run(
        [sys.executable, "-c", PEAK, *args], cwd=ROOT, capture_output=True, text=True, check=False
    )
    found = [line for line in done.stderr.splitlines() if line.startswith("PEAK ")]
    return int(found[-1].split()[1]) / 1024 if found else float("nan")


def startup() -> None:
    def median(command: list[str]) -> float:
        times = []
        for _ in range(10):
            start = time.perf_counter()
            subprocess.run(command, cwd=ROOT, stdout=subprocess.DEVNULL, check=True)
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    bare = median([sys.executable, "-c", "pass"])
    helped = median([sys.executable, "-m", "triage", "--help"])
    print(
        f"start-up: python -c pass {bare * 1000:.0f} ms; triage --help {helped * 1000:.0f} ms "
        f"({helped / bare:.1f}x)"
    )


if __name__ == "__main__":
    throughput()
    startup()
    pass_memory()
    training_time()
