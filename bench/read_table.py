"""The README's table of number readers (segmenter / seq / auto), from ``bench/read.py``'s JSON.

Reads ``bench/results/read.json`` (``--set bench``), ``read_dev.json`` (``--set dev``) and
``read_timing.json`` (``--timing-only``), prints the markdown, and with ``--write README.md``
replaces the text between the README's ``<!-- read-table:start -->`` and
``<!-- read-table:end -->`` markers, so the table follows the results whenever they are rerun:

    python bench/read.py --json bench/results/read.json --n 100 --n-conditions 30
    python bench/read.py --set dev --json bench/results/read_dev.json --n 100 --n-conditions 30
    python bench/read.py --timing-only 60 --json bench/results/read_timing.json
    python bench/read_table.py --write README.md
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import textwrap
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
START, END = "<!-- read-table:start -->", "<!-- read-table:end -->"
# Issue 15's targets: whole numbers right on the benchmark set (judged on auto, read's default),
# and time per 6-digit number.
TARGETS = {("bench", "mnist"): ">= 98.5%", ("bench", "fonts"): ">= 95%"}
TIME_LIMIT_MS = 50.0
SOURCES = {
    ("bench", "mnist"): "MNIST test digits",
    ("bench", "fonts"): "held-out handwriting fonts",
    ("dev", "mnist"): "MNIST validation digits",
    ("dev", "fonts"): "dev handwriting fonts",
}
FONT_NAMES: dict[str, str] = {
    "breip": "Breip",
    "stevehand": "Steve Hand",
    "dkg": "dkg",
    "delphine": "Delphine",
}


def pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def pooled(rows: list[dict], key: str) -> float:
    """Whole numbers right over ``rows``, each weighted by its size."""
    return sum(r[key] * r["n"] for r in rows) / sum(r["n"] for r in rows)


def table_rows(result: dict) -> list[str]:
    """Rows for one set: clean photos, then every page condition pooled, per kind of numbers."""
    out = []
    which = result["set"]
    for source in ("mnist", "fonts"):
        rows = [r for r in result["rows"] if r["numbers"] == source]
        clean = [r for r in rows if r["condition"] == "clean"]
        hard = [r for r in rows if r["condition"] != "clean"]
        name = SOURCES[(which, source)]
        if source == "fonts":
            name += " (" + ", ".join(FONT_NAMES.get(str(f), str(f)) for f in result["fonts"]) + ")"
        for part, label, target in (
            (clean, "clean photos", TARGETS.get((which, source), "")),
            (hard, f"{len(hard)} page conditions, pooled", ""),
        ):
            if not part:
                continue
            cells = [pct(pooled(part, k)) for k in ("after", "seq", "auto")]
            if target:  # judged on read's default reader, auto
                goal = float(target.split()[-1].rstrip("%")) / 100
                target += " (met)" if pooled(part, "auto") >= goal else " (not met)"
            best = max(cells, key=lambda c: float(c[:-1]))
            cells = [f"**{c}**" if c == best else c for c in cells]
            n = sum(r["n"] for r in part)
            out.append(
                f"| {which} | {name}, {label} | {n} | " + " | ".join(cells) + f" | {target} |"
            )
    return out


def markdown(bench: dict, dev: dict, timing: dict | None) -> str:
    """The whole block: table, time per number, the margin sweep, provenance."""
    lines = [
        "| set | numbers (phone photos) | n | segment | seq | auto | target |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- |",
        *table_rows(bench),
        *table_rows(dev),
    ]
    if timing:
        t = timing["timing"]
        cells = " | ".join(f"{t[m]['ms_6_digits']:.0f} ms" for m in ("segment", "seq", "auto"))
        met = [m for m in ("segment", "seq", "auto") if t[m]["ms_6_digits"] <= TIME_LIMIT_MS]
        status = f"met by {', '.join(met)}" if met else "not met"
        lines.append(
            f"| time | per 6-digit number, CPU, 1 thread ({timing['n']} numbers) | | {cells} | "
            f"<= {TIME_LIMIT_MS:.0f} ms ({status}) |"
        )
    m = bench["machine"]
    sizes = {r["condition"] == "clean": r["n"] for r in bench["rows"]}  # True: clean rows
    margins = ", ".join(f"{k} {pct(v)}" for k, v in dev["auto_by_margin"].items())
    lines += [
        "",
        f"Machine: {m['cores']}-core {m['cpu']}, torch {m['torch']}, {m['threads']} thread, "
        f"{m['date']}; digits model sha256 `{bench['checkpoint_sha256']}`, reader "
        f"`{bench['reader_sha256']}`; `auto` with margin {bench['auto_margin']} (bench) and "
        f"{dev['auto_margin']} (dev). Each row is one seeded set (`make_numbers` / "
        f"`make_font_numbers`, `python bench/read.py [--set dev] --n {sizes[True]} "
        f"--n-conditions {sizes[False]} --json ...`): one number is "
        f"{100 / sizes[True]:.1f} points of a clean row and {100 / sizes[False]:.1f} of a "
        "single condition's, so small differences between the readers are within the noise.",
    ]
    if timing:
        if timing.get("reader_sha256") != bench["reader_sha256"]:
            print("read_table: warning: read_timing.json timed another reader", file=sys.stderr)
        load = timing.get("load_1min")
        lines[-1] += (
            " Times: `python bench/read.py --timing-only "
            f"{timing['n']} --json bench/results/read_timing.json`"
            + (f", load average {load:.1f} from other jobs." if load is not None else ".")
        )
    total = sum(r["n"] for r in dev["rows"])
    lines += [
        "",
        f"`auto`'s margin, whole numbers right over every dev row ({total} numbers): {margins}.",
    ]
    # Prose wrapped at the README's 100 columns (table rows cannot be).
    return "\n".join(line if line.startswith("|") else textwrap.fill(line, 100) for line in lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--write", type=Path, help="replace the table between the markers here")
    args = parser.parse_args()
    bench = json.loads((args.results / "read.json").read_text())
    dev = json.loads((args.results / "read_dev.json").read_text())
    timing_file = args.results / "read_timing.json"
    timing = json.loads(timing_file.read_text()) if timing_file.exists() else None
    text = markdown(bench, dev, timing)
    if not args.write:
        print(text)
        return
    readme = args.write.read_text()
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.S)
    if not pattern.search(readme):
        raise SystemExit(f"read_table: no {START} ... {END} markers in {args.write}")
    args.write.write_text(pattern.sub(lambda _: f"{START}\n{text}\n{END}", readme))


if __name__ == "__main__":
    main()
