"""Run every ``fuzz/fuzz_*.py`` harness for a while; fail if any crashed.

    python fuzz/run_all.py --seconds 60

Each harness runs as its own process with ``-max_total_time``, over the
corpus directory ``<corpus-root>/<name>/`` (created first and seeded with what
the harness's ``seeds()`` returns; libFuzzer adds new inputs there as it
finds them).
Crash inputs and the log of a failed run go to ``<crash-root>/<name>/``.
Prints one line per harness; the exit status is 1 if any harness failed.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import pkgutil
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import chhaya

FUZZ_DIR = Path(__file__).resolve().parent
_RUNS_RE = re.compile(r"Done (\d+) runs in|stat::number_of_executed_units: (\d+)")
_GRACE_SECONDS = 120  # start-up plus replaying the corpus, beyond the budget


@dataclass(frozen=True)
class Result:
    name: str
    returncode: int
    runs: int | None
    wall_seconds: float
    log: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def harnesses() -> list[str]:
    """Harness names: ``fuzz_<name>.py`` gives ``<name>``."""
    return sorted(p.stem.removeprefix("fuzz_") for p in FUZZ_DIR.glob("fuzz_*.py"))


def import_all_of_chhaya() -> None:
    """Import every chhaya module now, so that loading a harness here (for its
    seeds) finds them imported and its ``instrument_imports()`` does nothing."""
    for info in pkgutil.walk_packages(chhaya.__path__, "chhaya."):
        importlib.import_module(info.name)


def harness_seeds(name: str) -> list[bytes]:
    module = importlib.import_module(f"fuzz_{name}")
    seeds = getattr(module, "seeds", None)
    return [bytes(s) for s in seeds()] if callable(seeds) else []


def seed_corpus(corpus: Path, seeds: list[bytes]) -> int:
    """Write ``seeds`` into ``corpus``, named by SHA-1 like libFuzzer does."""
    corpus.mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        path = corpus / hashlib.sha1(seed, usedforsecurity=False).hexdigest()
        if not path.exists():
            path.write_bytes(seed)
    return len(seeds)


def run_one(name: str, seconds: int, corpus_root: Path, crash_root: Path) -> Result:
    corpus = corpus_root / name
    crashes = crash_root / name
    corpus.mkdir(parents=True, exist_ok=True)
    crashes.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        str(FUZZ_DIR / f"fuzz_{name}.py"),
        str(corpus),
        f"-max_total_time={seconds}",
        f"-artifact_prefix={crashes}/",
        "-timeout=60",
        "-rss_limit_mb=4096",
        "-print_final_stats=1",
    ]
    start = time.monotonic()
    try:
        proc = subprocess.run(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            timeout=seconds + _GRACE_SECONDS,
            check=False,
        )
        returncode, log = proc.returncode, proc.stdout
    except subprocess.TimeoutExpired as exc:
        returncode = -1
        log = f"harness did not stop within {seconds + _GRACE_SECONDS}s\n{exc.stdout!r}"
    wall = time.monotonic() - start
    matches = _RUNS_RE.findall(log)
    runs = int(matches[-1][0] or matches[-1][1]) if matches else None
    if returncode != 0:
        (crashes / "last-run.log").write_text(log)
    return Result(name, returncode, runs, wall, log)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=int, default=10, help="budget per harness")
    parser.add_argument("--jobs", type=int, default=2, help="harnesses run at once")
    parser.add_argument("--corpus-root", type=Path, default=FUZZ_DIR / "corpus")
    parser.add_argument("--crash-root", type=Path, default=FUZZ_DIR / "crashes")
    parser.add_argument("--only", nargs="*", help="harness names to run (default: all)")
    args = parser.parse_args(argv)
    if args.seconds < 1:
        parser.error("--seconds must be at least 1 (libFuzzer reads 0 as no limit)")
    names = args.only or harnesses()
    unknown = sorted(set(names) - set(harnesses()))
    if unknown:
        parser.error(f"unknown harness(es): {', '.join(unknown)}")

    import_all_of_chhaya()
    failed_seeding: list[Result] = []
    for name in names:
        try:
            seed_corpus(args.corpus_root / name, harness_seeds(name))
        except Exception as exc:  # a broken harness is reported, not fatal here
            failed_seeding.append(Result(name, -2, None, 0.0, f"seeding failed: {exc!r}"))
    broken = {r.name for r in failed_seeding}

    def job(name: str) -> Result:
        return run_one(name, args.seconds, args.corpus_root, args.crash_root)

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        ran = list(pool.map(job, [n for n in names if n not in broken]))
    order = {n: i for i, n in enumerate(names)}
    results = sorted(ran + failed_seeding, key=lambda r: order[r.name])
    width = max(len(n) for n in names)
    for r in results:
        runs = f"{r.runs} runs" if r.runs is not None else "runs unknown"
        status = "ok" if r.ok else f"FAILED (exit {r.returncode})"
        print(f"{r.name:<{width}}  {status:<18} {runs:>16} in {r.wall_seconds:5.1f}s", flush=True)
        if not r.ok:
            lines = [x for x in r.log.splitlines() if not x.startswith("INFO: Instrumenting")]
            tail = "\n".join(lines[-40:])
            print(f"--- {r.name}: last lines (full log in {args.crash_root / r.name}) ---")
            print(tail)
    failed = [r.name for r in results if not r.ok]
    if failed:
        print(f"{len(failed)} harness(es) failed: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
