"""The bad-input matrix: every case of ``bench/bad_input_cases.py`` in its own process.

Trains one tiny ``fast`` model (5 steps), writes every bad input into a temporary folder, runs
``python -m digitrec ...`` once per case and records the exit code, the last line of stderr and
whether a traceback appeared. Prints a markdown table and the traceback count (must be 0).

    python bench/bad_input_matrix.py [--json FILE] [--jobs 2] [--only TEXT] [--readme]

Running as root, each command runs without the capabilities that let root read any file
(``setpriv``), so the "unreadable" and "read-only" rows test what a normal user meets.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bad_input_cases import CASES, Case, check
from bad_input_fixtures import make_fixtures, unlock

DROP_ROOT = ["setpriv", "--inh-caps", "-dac_override,-dac_read_search",
             "--bounding-set", "-dac_override,-dac_read_search", "--"]  # fmt: skip
TIMEOUT = 300  # seconds per case: an accepted bad training flag still finishes on tiny data


def _prefix() -> list[str]:
    if os.geteuid() == 0 and shutil.which("setpriv"):
        return DROP_ROOT
    return []


def run_case(case: Case, fx: dict[str, str], env: dict[str, str]) -> dict:
    """Run one case in a fresh process; return its row."""
    cmd = [*_prefix(), sys.executable, "-m", "digitrec", *case.args(fx)]
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=fx["root"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    if case.sigterm:
        deadline = time.monotonic() + 120
        while not list(Path(fx["root"]).glob(case.sigterm)) and time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            time.sleep(0.05)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
        rc = proc.returncode
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        rc = None
    return row(case, fx, rc, out, err, time.perf_counter() - start)


def row(case: Case, fx: dict[str, str], rc: int | None, out: str, err: str, secs: float) -> dict:
    """Judge one run: the exit code, the traceback, the message and the post-condition."""
    lines = [line for line in err.splitlines() if line.strip()]
    last = lines[-1] if lines else ""
    problems = []
    if rc not in case.rc:
        problems.append(f"exit {rc}, expected {'/'.join(map(str, case.rc))}")
    if "Traceback" in err:
        problems.append("traceback")
    if case.says and case.says.lower() not in last.lower():
        problems.append(f"last line lacks {case.says!r}")
    if rc not in (0, None) and not last.startswith("digitrec"):
        problems.append("the last line is not digitrec's one-line error")
    if case.check and rc is not None and (why := check(case.check, fx, out, err)):
        problems.append(why)
    return {
        "group": case.group,
        "case": case.name,
        "command": "digitrec " + " ".join(case.args(fx)).replace(fx["root"], "$TMP"),
        "exit": rc,
        "last_line": last.replace(fx["root"], "$TMP"),
        "traceback": "Traceback" in err,
        "tracebacks": err.count("Traceback"),
        "ok": not problems,
        "problems": problems,
        "seconds": round(secs, 2),
    }


def train_tiny(root: Path, data_dir: str) -> Path:
    """The one small checkpoint the cases need: ``fast``, 5 steps, 500 validation images."""
    from digitrec.training import TrainConfig, train

    out = root / "tiny-run"
    cfg = TrainConfig(
        model="fast", max_steps=5, val_size=500, threads=1, out=str(out), data_dir=data_dir
    )
    train(cfg)
    return out


def markdown(rows: list[dict]) -> str:
    head = (
        "| input class | case | exit | last line of stderr | ok |\n| --- | --- | --- | --- | --- |"
    )
    body = []
    for r in rows:
        ok = "yes" if r["ok"] else "NO: " + "; ".join(r["problems"])
        line = r["last_line"][:110].replace("|", "/")
        body.append(f"| {r['group']} | {r['case']} | {r['exit']} | {line} | {ok} |")
    return "\n".join([head, *body])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", metavar="FILE", help="also write the rows to this JSON file")
    parser.add_argument("--jobs", type=int, default=2, help="cases run at once (default: 2)")
    parser.add_argument("--only", default="", help="only cases whose group or name has TEXT")
    args = parser.parse_args()

    env = dict(os.environ)
    env.setdefault("DIGITREC_DATA", str(Path(__file__).resolve().parents[2] / "shared/data/mnist"))
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(__file__).resolve().parents[1] / "src"), env.get("PYTHONPATH", "")]
    )
    from digitrec.data.specs import load_mnist
    from digitrec.io import atomic_write

    with tempfile.TemporaryDirectory(prefix="digitrec-bad-input-") as tmp:
        root = Path(tmp) / "cases"
        root.mkdir()
        os.chmod(tmp, 0o755)
        run = train_tiny(Path(tmp), env["DIGITREC_DATA"])
        fx = make_fixtures(root, run, load_mnist("test", env["DIGITREC_DATA"]))
        cases = [c for c in CASES if args.only.lower() in c.id.lower()]
        signals = [c for c in cases if c.sigterm]  # alone: they watch the folder for a file
        with ThreadPoolExecutor(max(1, args.jobs)) as pool:
            rows = list(
                pool.map(lambda c: run_case(c, fx, env), [c for c in cases if not c.sigterm])
            )
        rows += [run_case(c, fx, env) for c in signals]
        unlock(root)
    order = {c.id: i for i, c in enumerate(CASES)}
    rows.sort(key=lambda r: order[f"{r['group']}: {r['case']}"])
    print(markdown(rows))
    tracebacks = sum(r["tracebacks"] for r in rows)
    bad = [r for r in rows if not r["ok"]]
    print(f"\n{len(rows)} cases; Traceback count: {tracebacks}; misbehaving rows: {len(bad)}")
    if args.json:
        atomic_write(args.json, json.dumps({"rows": rows, "tracebacks": tracebacks}, indent=2))
    return 1 if tracebacks or bad else 0


if __name__ == "__main__":
    sys.exit(main())
