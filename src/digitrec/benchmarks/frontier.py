"""The time-to-accuracy frontier: for each accuracy level, the fastest recipe that reaches it.

Pure functions over the result dictionary of :func:`digitrec.benchmarks.speed.bench_speed` (no
torch, no timing here), so the table logic is tested on constructed results.

A recipe *reaches* a level when the mean of its test accuracies over its seeds is at least the
level, and it ran enough seeds (5 for 99.0%, 3 above). Its time is the median training time over
its seeds (evaluation, TTA included, is reported beside it, not added). The peer's time to a level
is the training time up to the end of its first epoch at or above the level; a peer run that never
got there within its epoch cap gives a lower bound (its total time), and so does the ratio.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

LEVELS = (0.990, 0.995, 0.996, 0.997)


def min_seeds(level: float) -> int:
    """Seeds a recipe needs before its mean counts at ``level``: 5 at 99.0%, 3 above."""
    return 5 if level < 0.9905 else 3


@dataclass(frozen=True)
class PeerTime:
    """The peer's training time to a level; ``lower_bound`` when some run never reached it."""

    seconds: float
    lower_bound: bool
    runs: int


@dataclass(frozen=True)
class FrontierRow:
    """One level of the frontier. ``recipe`` is None when no recipe of ours reached it."""

    level: float
    recipe: str | None = None
    tta: bool = False
    seeds: int = 0
    acc_mean: float = 0.0
    acc_std: float = 0.0
    train_s: float = 0.0
    eval_s: float = 0.0
    peer: PeerTime | None = None

    @property
    def ratio(self) -> float | None:
        """Peer time over ours (a lower bound when the peer's time is one)."""
        if self.recipe is None or self.peer is None or self.train_s <= 0:
            return None
        return self.peer.seconds / self.train_s


def peer_time_to(peer_runs: Sequence[Mapping[str, Any]], level: float) -> PeerTime | None:
    """Median over the peer's runs of the time to ``level``; None without peer runs.

    Each run has ``epochs``: ``[{"test_acc", "train_time_s"}, ...]`` with cumulative times.
    """
    times, bound = [], False
    for run in peer_runs:
        epochs = run.get("epochs") or []
        hit = next((e for e in epochs if e["test_acc"] >= level), None)
        if hit is None:  # never reached within the cap: all its time is a lower bound
            bound = True
            times.append(epochs[-1]["train_time_s"] if epochs else 0.0)
        else:
            times.append(hit["train_time_s"])
    if not times:
        return None
    return PeerTime(statistics.median(times), bound, len(times))


def frontier(result: Mapping[str, Any], levels: Sequence[float] = LEVELS) -> list[FrontierRow]:
    """The frontier rows of a ``bench_speed`` result, one per level.

    Levels above the highest one reached are left out, except the next (shown as "not
    reached"), so the table says where the frontier stops. A lower level can be unreached while
    a higher one is reached: it needs more seeds (5 at 99.0%).
    """
    peer_runs = (result.get("peer") or {}).get("runs") or []
    rows: list[FrontierRow] = []
    for level in sorted(levels):
        best: FrontierRow | None = None
        for name, ours in result.get("ours", {}).items():
            runs = ours.get("runs") or []
            acc = ours["test_acc"]
            if len(runs) < min_seeds(level) or acc["mean"] < level:
                continue
            row = FrontierRow(
                level=level,
                recipe=name,
                tta=bool(ours.get("tta")),
                seeds=len(runs),
                acc_mean=acc["mean"],
                acc_std=acc["std"],
                train_s=ours["train_time_s"]["median"],
                eval_s=ours["eval_time_s"]["median"],
                peer=peer_time_to(peer_runs, level),
            )
            if best is None or row.train_s < best.train_s:
                best = row
        rows.append(best or FrontierRow(level=level, peer=peer_time_to(peer_runs, level)))
    reached = [i for i, r in enumerate(rows) if r.recipe is not None]
    return rows[: (reached[-1] if reached else -1) + 2]  # one unreached level past the last


def frontier_json(rows: Sequence[FrontierRow]) -> list[dict[str, Any]]:
    """The rows as JSON-ready dictionaries (the ratio included)."""
    out = []
    for r in rows:
        item: dict[str, Any] = {
            "level": r.level,
            "recipe": r.recipe,
            "min_seeds": min_seeds(r.level),
        }
        if r.recipe is not None:
            item.update(
                tta=r.tta,
                seeds=r.seeds,
                test_acc_mean=r.acc_mean,
                test_acc_std=r.acc_std,
                train_time_s=r.train_s,
                eval_time_s=r.eval_s,
                ratio_peer_over_ours=r.ratio,
            )
        if r.peer is not None:
            item.update(peer_time_s=r.peer.seconds, peer_lower_bound=r.peer.lower_bound)
        out.append(item)
    return out


def format_frontier(rows: Sequence[FrontierRow]) -> str:
    """A Markdown table; ``>=`` marks a peer time (and ratio) that is only a lower bound."""
    lines = [
        "| accuracy | fastest recipe (mean of seeds) | train | eval | peer | peer / ours |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        level = f"{r.level * 100:.1f}%"
        if r.recipe is None:
            need = min_seeds(r.level)
            peer = "" if r.peer is None else _peer_text(r.peer)
            lines.append(f"| {level} | not reached (mean of >= {need} seeds) | | | {peer} | |")
            continue
        name = r.recipe + (" + TTA" if r.tta else "")
        what = f"`{name}`: {r.acc_mean * 100:.2f}% ± {r.acc_std * 100:.2f} ({r.seeds} seeds)"
        peer, ratio = "not run", ""
        if r.peer is not None:
            peer = _peer_text(r.peer)
            mark = ">= " if r.peer.lower_bound else ""
            ratio = f"{mark}{r.ratio:.1f}x" if r.ratio is not None else ""
        lines.append(
            f"| {level} | {what} | {r.train_s:.2f} s | {r.eval_s:.2f} s | {peer} | {ratio} |"
        )
    return "\n".join(lines)


def _peer_text(peer: PeerTime) -> str:
    return f"{'>= ' if peer.lower_bound else ''}{peer.seconds:.1f} s"
