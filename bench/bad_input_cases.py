"""The bad-input matrix's cases, shared by ``bench/bad_input_matrix.py`` (every case, each in its
own ``python -m digitrec`` process) and ``tests/test_bad_input.py`` (in-process).

A case is one row: an input class, what is wrong with the input, the command line, the exit codes
that are right and a fragment that the last line of stderr must hold. ``{name}`` in a command is
a fixture path from ``bad_input_fixtures.make_fixtures``; ``@predict`` and the like are the
shorthands in :data:`MACROS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Case:
    """One row of the matrix.

    Attributes:
        group: the input class (IDX, CSV, image, checkpoint, ONNX, CLI flag, output path, signal).
        name: what is wrong with the input.
        argv: the command line after ``digitrec``, with ``{fixture}`` placeholders.
        rc: exit codes that are right for this input.
        says: a fragment the last stderr line must contain (case-insensitive); "" for none.
        check: a post-condition for :func:`check` ("" for none).
        inprocess: run by the in-process test (False: it trains, or needs a real process).
        sigterm: send SIGTERM once a file matching this glob (under the fixture root) appears.
    """

    group: str
    name: str
    argv: tuple[str, ...]
    rc: tuple[int, ...]
    says: str = ""
    check: str = ""
    inprocess: bool = True
    sigterm: str = ""

    @property
    def id(self) -> str:
        return f"{self.group}: {self.name}"

    def args(self, fx: dict[str, str]) -> list[str]:
        """The command line with the fixture paths filled in."""
        return [a.format(**fx) for a in self.argv]


MACROS = {
    "@predict": "predict -c {run}",
    "@submit": "submit -c {run} --out {root}/s.csv --test",
    "@show": "data show --out {root}/o.png --data-dir",
    # Tiny data and 2 steps: a bad flag that is accepted still finishes in seconds.
    "@train": "train --data-dir {idx_ok} --max-steps 2 --no-eval --threads 1 --val-size 50",
}

# group | case | command | exit codes | last line holds | options (check=, subprocess, sigterm=)
TABLE = """
IDX | truncated images | @show {idx_truncated} | 1 | truncated
IDX | bad magic number | @show {idx_magic} | 1 | bad magic number
IDX | wrong image size (28x27) | @show {idx_dims} | 1 | expected 28x28
IDX | corrupt gzip | @show {idx_gz} | 1 | truncated or corrupt
IDX | missing file | @show {idx_missing} | 1 | not found
IDX | images and labels disagree in count | @show {idx_count} | 1 | labels
CSV | bad header | @submit {csv_header} | 1 | header
CSV | ragged row | @submit {csv_ragged} | 1 | line 3
CSV | non-integer cell | @submit {csv_float} | 1 | line 2
CSV | pixel out of range | @submit {csv_range} | 1 | 0..255
CSV | UTF-8 BOM (accepted) | @submit {csv_bom} | 0 |
CSV | gzip file | @submit {csv_gzip} | 1 | gzip
CSV | zip file | @submit {csv_zip} | 1 | zip
CSV | header only | @submit {csv_empty} | 1 | no rows
CSV | blank lines (skipped) | @submit {csv_blank} | 0 |
CSV | a directory | @submit {root} | 1 | directory
CSV | unreadable | @submit {csv_unreadable} | 1 | permission denied
CSV | missing | @submit {root}/nope.csv | 1 | no such file
CSV | score: label 42 | score {sub_label42} --labels {labels} | 1 | 42
CSV | score: missing ImageId | score {sub_missing_id} --labels {labels} | 1 | imageid
CSV | score: unreadable | score {csv_unreadable} --labels {labels} | 1 | permission denied
image | missing | @predict {root}/nope.png | 1 | no such file
image | empty file | @predict {img_empty} | 1 | empty
image | truncated PNG | @predict {img_truncated} | 1 | cannot read image
image | not an image | @predict {img_text} | 1 | not a recognised image
image | a directory (read) | read -c {run} {img_dir} | 1 | is a directory
image | symlink loop | @predict {img_loop} | 1 | symlink loop
image | dangling symlink | @predict {img_dangling} | 1 | symlink to a missing file
image | unreadable | @predict {img_unreadable} | 1 | permission denied
image | unreadable file in a folder | @predict {img_folder} | 1 | permission denied | check=good_line
image | huge dimensions in the header | @predict {img_huge} | 1 | too large
image | blank page | @predict {img_blank} | 1 | no digit
image | random noise | @predict {img_noise} | 1 | no digit
image | folder without images | @predict {img_dir} | 1 | no image files
checkpoint | missing | predict -c {root}/nope.safetensors {img_good} | 1 | no such checkpoint
checkpoint | pickle (.pt) | predict -c {ckpt_pickle} {img_good} | 1 | pickle
checkpoint | zip (torch.save) | predict -c {ckpt_zip} {img_good} | 1 | pickle
checkpoint | truncated | predict -c {ckpt_truncated} {img_good} | 1 | corrupt
checkpoint | bad JSON header | predict -c {ckpt_badjson} {img_good} | 1 | corrupt
checkpoint | foreign safetensors | predict -c {ckpt_foreign} {img_good} | 1 | digitrec
checkpoint | newer format | predict -c {ckpt_newer} {img_good} | 1 | newer
checkpoint | unknown architecture | predict -c {ckpt_arch} {img_good} | 1 | unknown model
checkpoint | weights of another model | predict -c {ckpt_shape} {img_good} | 1 | do not fit
checkpoint | metadata: extra preprocessing key | predict -c {ckpt_prekey} {img_good} | 1 | colour
checkpoint | metadata: arch_kwargs not a dict | predict -c {ckpt_kwargs} {img_good} | 1 | arch_kwargs
checkpoint | metadata: recipe not a dict | predict -c {ckpt_recipe} {img_good} | 1 | recipe
checkpoint | metadata: input_size 32 | predict -c {ckpt_size} {img_good} | 1 | input_size
checkpoint | metadata: std 0 | predict -c {ckpt_std} {img_good} | 1 | std
checkpoint | valid, header length ending in 0x80 | predict -c {ckpt_x80} {img_good} | 0 |
checkpoint | run folder without best | predict -c {run_lastonly} {img_good} | 0 | | check=note_last
checkpoint | empty run folder | predict -c {img_dir} {img_good} | 1 | no best.safetensors
checkpoint | 11-class model: digits only | predict -c {splitter} {img_good} | 0 | | check=digits
checkpoint | submit: 10- and 11-class models | @submit {csv_good} -c {splitter} --out {root}/mixed.csv | 0 | | check=sub09
ONNX | foreign model | predict -c {onnx_foreign} {img_good} | 1 | not a digitrec onnx export
ONNX | corrupt file | predict -c {onnx_junk} {img_good} | 1 | not a readable onnx
ONNX | on a GPU device | predict -c {onnx_junk} --device cuda {img_good} | 1 | cuda
CLI flag | unknown model | summary --model nope | 1 | unknown model
CLI flag | unknown device | @predict --device foo {img_good} | 1 | unknown device
CLI flag | absent device (mps) | evaluate -c {run} --device mps | 1 | mps
CLI flag | submit: unknown device | @submit {csv_good} --device foo | 1 | unknown device
CLI flag | read: unknown device | read -c {run} --device foo {img_good} | 1 | unknown device
CLI flag | bench: unknown device | bench speed --device foo --smoke | 1 | unknown device
CLI flag | predict --top 0 | @predict --top 0 {img_good} | 2 | at least 1
CLI flag | predict --top x | @predict --top x {img_good} | 2 | whole number
CLI flag | predict --index -1 | @predict --split test --index -1 | 1 | --index
CLI flag | data show --index 70000 | data show --index 70000 --out {root}/o.png | 1 | --index
CLI flag | predict --split and files | @predict --split test {img_good} | 1 | not both
CLI flag | predict --threads 0 | @predict --threads 0 {img_good} | 2 | at least 1
CLI flag | data fetch --timeout -1 | data fetch --timeout -1 --data-dir {root}/f | 2 | above 0
CLI flag | data fetch --timeout nan | data fetch --timeout nan --data-dir {root}/f | 2 | above 0
CLI flag | bench speed --seeds 0 | bench speed --seeds 0 --smoke | 2 | at least 1
CLI flag | bench speed --peer-epochs 0 | bench speed --peer-epochs 0 --smoke | 2 | at least 1
CLI flag | train --model nope | @train --model nope | 1 | unknown model | subprocess
CLI flag | train --seed -1 | @train --seed -1 | 1,2 | seed | subprocess
CLI flag | train --seed 2**70 | @train --seed 1180591620717411303424 | 1,2 | seed | subprocess
CLI flag | train --threads -1 | @train --threads -1 | 1,2 | threads | subprocess
CLI flag | train --epochs 0 | @train --epochs 0 | 1,2 | epochs | subprocess
CLI flag | train --steps 0 | @train --steps 0 | 1,2 | steps | subprocess
CLI flag | train --batch-size 0 | @train --batch-size 0 | 1,2 | batch | subprocess
CLI flag | train --lr -1 | @train --lr -1 | 1,2 | lr | subprocess
CLI flag | train --lr inf | @train --lr inf | 1,2 | lr | subprocess
CLI flag | train --lr nan | @train --lr nan | 1,2 | lr | subprocess
CLI flag | train --max-steps 0 | @train --max-steps 0 | 1,2 | max-steps | subprocess
CLI flag | train --set momentum=-5 | @train --set momentum=-5 | 1,2 | momentum | subprocess
CLI flag | train --set lr=inf | @train --set lr=inf | 1,2 | lr | subprocess
CLI flag | train --val-size -1 | @train --val-size -1 | 1,2 | val | subprocess
CLI flag | train --val-size above the data | @train --val-size 60000 | 1,2 | val | subprocess
output path | predict --csv a directory | @predict {img_good} --csv {outdir} | 1 | is a directory
output path | predict --show a directory | @predict {img_good} --show {outdir} | 1 | is a directory
output path | data show --out a directory | data show --out {outdir} | 1 | is a directory
output path | submit --out a directory | @submit {csv_good} --out {outdir} | 1 | is a directory
output path | export --out a directory | export -c {run} --out {outdir_onnx} | 1 | is a directory
output path | train --out a file | @train --out {img_good} | 1,2 | is a file | subprocess
output path | predict --csv, read-only folder | @predict {img_good} --csv {rodir}/p.csv | 1 | permission denied
output path | submit --out, read-only folder | @submit {csv_good} --out {rodir}/s.csv | 1 | permission denied
output path | export-kaggle, read-only folder | data export-kaggle --out {rodir}/k | 1 | permission denied
output path | train --out, read-only folder | @train --out {rodir}/run | 1 | permission denied | subprocess
output path | a parent is a file | @predict {img_good} --csv {img_good}/p.csv | 1 | not a directory
output path | missing parent folders (made) | @predict {img_good} --csv {root}/new/p.csv | 0 | | check=csv_made
output path | submit --out is --test | @submit {csv_good} --out {csv_good} | 1 | is the input | check=intact
output path | ... via a symlink | @submit {csv_good} --out {csv_link} | 1 | is the input | check=intact
output path | ... via a relative path | @submit {csv_good} --out sub/../test.csv | 1 | is the input | check=intact
signal | SIGTERM in data export-kaggle | data export-kaggle --out {root}/kaggle | 130 | interrupted | check=no_tmp sigterm=kaggle/.*.tmp
"""  # noqa: E501 (one row a line reads best)


def _parse(table: str) -> list[Case]:
    cases = []
    for line in filter(str.strip, table.splitlines()):
        group, name, command, rc, says, *rest = (cell.strip() for cell in line.split("|"))
        for macro, text in MACROS.items():
            command = command.replace(macro, text)
        opts = dict(o.partition("=")[::2] for o in (rest[0].split() if rest else []))
        cases.append(
            Case(
                group,
                name,
                tuple(command.split()),
                tuple(int(c) for c in rc.split(",")),
                says,
                check=opts.get("check", ""),
                inprocess="subprocess" not in opts and "sigterm" not in opts,
                sigterm=opts.get("sigterm", ""),
            )
        )
    return cases


CASES: list[Case] = _parse(TABLE)


def check(name: str, fx: dict[str, str], out: str, err: str) -> str:
    """Run a case's post-condition; return "" when it holds, else what is wrong."""
    root = Path(fx["root"])
    if name == "good_line":
        return "" if "good.png\t" in out else "the readable file was not predicted"
    if name == "note_last":
        return "" if "using last.safetensors" in err else "no note that last.safetensors is used"
    if name == "digits":
        digits = [line.split("\t")[1] for line in out.splitlines() if "\t" in line]
        ok = digits and all(d in list("0123456789") for d in digits)
        return "" if ok else f"printed {digits}"
    if name == "sub09":
        labels = np.loadtxt(root / "mixed.csv", delimiter=",", skiprows=1, dtype=int)[:, 1]
        return "" if labels.max() <= 9 else "a label 10 in the submission"
    if name == "csv_made":
        return "" if (root / "new/p.csv").is_file() else "the CSV was not written"
    if name == "intact":
        same = Path(fx["csv_good"]).read_bytes() == Path(fx["csv_copy"]).read_bytes()
        return "" if same else "the input was overwritten"
    if name == "no_tmp":
        left = [p.name for p in root.rglob(".*.tmp")]
        return f"left {left}" if left else ""
    raise ValueError(f"unknown check {name!r}")
