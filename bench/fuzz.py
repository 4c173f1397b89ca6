"""Fuzz every reader of untrusted files with many more examples than CI runs.

The targets and strategies are ``tests/fuzz_targets.py``'s (``tests/test_fuzz.py`` runs 200
seeded examples of each). Prints, per target: examples run, how many were refused with a
``DigitrecError``, how many gave a valid result, and other exceptions (must be 0), then the
total time. Exit status 1 if any other exception or hang occurred.

    python bench/fuzz.py [--examples 10000] [--seed 0] [--only checkpoint] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))  # one home for the strategies: tests/fuzz_targets.py

from hypothesis import HealthCheck, Phase, given, seed, settings  # noqa: E402

from fuzz_targets import REFUSED, VALID, Target, run_example, targets  # noqa: E402


def _site(exc: BaseException) -> str:
    """``ValueError at digitrec/images/normalise.py:132``: the deepest digitrec frame."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "/digitrec/" in f.filename]
    where = f"{frames[-1].filename.split('/src/')[-1]}:{frames[-1].lineno}" if frames else "?"
    return f"{type(exc).__name__} at {where}"


def fuzz(target: Target, examples: int, rng_seed: int, workdir: Path) -> dict:
    """Run ``examples`` generated examples; count outcomes instead of stopping at a failure."""
    counts = {"examples": 0, REFUSED: 0, VALID: 0, "other": 0}
    failures: dict[str, dict] = {}
    slowest = 0.0

    @seed(rng_seed)
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.generate],  # no shrinking: every failure is recorded as found
        suppress_health_check=list(HealthCheck),
    )
    @given(target.strategy())
    def run(example) -> None:
        nonlocal slowest
        counts["examples"] += 1
        start = time.perf_counter()
        try:
            counts[run_example(target, example, workdir)] += 1
        except Exception as exc:  # the point: any other exception is a finding
            counts["other"] += 1
            site = _site(exc)
            if site not in failures:  # one entry per kind of exception and place
                failures[site] = {
                    "count": 0,
                    "error": f"{type(exc).__name__}: {str(exc)[:200]}",
                    "traceback": traceback.format_exc(limit=-4)[-1200:],
                    "example": repr(example)[:300],
                }
            failures[site]["count"] += 1
        slowest = max(slowest, time.perf_counter() - start)

    start = time.perf_counter()
    run()
    return {
        **counts,
        "seconds": round(time.perf_counter() - start, 1),
        "slowest_example_s": round(slowest, 3),
        "failures": failures,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=10_000, help="per target (default 10000)")
    parser.add_argument("--seed", type=int, default=0, help="hypothesis seed (default 0)")
    parser.add_argument("--only", help="run only the target with this name")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args()
    if args.examples < 1:
        parser.error("--examples must be >= 1")
    results = {}
    total = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="digitrec-fuzz-") as tmp:
        chosen = [t for t in targets(Path(tmp)) if args.only in (None, t.name)]
        if not chosen:
            parser.error(f"no target named {args.only!r}")
        print(f"{'target':<12} {'examples':>9} {'DigitrecError':>14} {'valid':>7} {'other':>6} "
              f"{'seconds':>8} {'slowest':>8}", flush=True)  # fmt: skip
        for target in chosen:
            row = results[target.name] = fuzz(target, args.examples, args.seed, Path(tmp))
            print(f"{target.name:<12} {row['examples']:>9} {row[REFUSED]:>14} {row[VALID]:>7} "
                  f"{row['other']:>6} {row['seconds']:>8} {row['slowest_example_s']:>8}",
                  flush=True)  # fmt: skip
            for site, failure in row["failures"].items():
                print(f"  {failure['count']} x {site}: {failure['error']}")
                print(f"  first example: {failure['example']}\n{failure['traceback']}")
    elapsed = time.perf_counter() - total
    others = sum(r["other"] for r in results.values())
    print(f"total: {sum(r['examples'] for r in results.values())} examples in {elapsed:.0f} s; "
          f"other exceptions: {others} (must be 0)")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps({"seed": args.seed, "results": results}, indent=2))
    return 1 if others else 0


if __name__ == "__main__":
    sys.exit(main())
