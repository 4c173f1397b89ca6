"""The time-to-accuracy frontier table, on constructed benchmark results (no timing)."""

from __future__ import annotations

import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from digitrec.benchmarks.frontier import (
    format_frontier,
    frontier,
    frontier_json,
    min_seeds,
    peer_time_to,
)
from digitrec.cli import main


def _ours(accs: list[float], train_s: float, tta: bool = False) -> dict[str, Any]:
    def stats(values: list[float]) -> dict[str, float]:
        return {
            "mean": statistics.fmean(values),
            "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "median": statistics.median(values),
        }

    return {
        "tta": tta,
        "runs": [{"test_acc": a} for a in accs],
        "test_acc": stats(accs),
        "train_time_s": stats([train_s] * len(accs)),
        "eval_time_s": stats([0.1] * len(accs)),
    }


def _peer(*curves: list[tuple[float, float]]) -> dict[str, Any]:
    """Peer runs from (test_acc, cumulative train time) per epoch."""
    runs = [{"epochs": [{"test_acc": a, "train_time_s": t} for a, t in c]} for c in curves]
    return {"runs": runs}


def test_fastest_recipe_that_reaches_each_level_wins() -> None:
    result = {
        "ours": {
            "quick": _ours([0.9905] * 5, 1.0),
            "fast": _ours([0.9910] * 5, 2.0),
            "accurate": _ours([0.9955, 0.9950, 0.9960], 20.0, tta=True),
            "best": _ours([0.9962, 0.9964, 0.9966], 60.0),
        },
        "peer": _peer([(0.985, 100.0), (0.991, 200.0), (0.9915, 300.0)]),
    }
    rows = frontier(result)
    assert [(r.level, r.recipe) for r in rows] == [
        (0.990, "quick"),
        (0.995, "accurate"),
        (0.996, "best"),
        (0.997, None),  # the first unreached level says where the frontier stops
    ]
    assert rows[0].ratio == 200.0 / 1.0 and rows[0].peer is not None
    assert not rows[0].peer.lower_bound
    # The peer never reached 99.5% within its cap: its time, and the ratio, are lower bounds.
    assert rows[1].peer is not None and rows[1].peer.lower_bound
    assert rows[1].peer.seconds == 300.0
    assert rows[1].tta


def test_a_mean_below_the_level_does_not_count_even_with_one_good_seed() -> None:
    result = {"ours": {"lucky": _ours([0.9930, 0.9800, 0.9800, 0.9800, 0.9800], 0.5)}}
    rows = frontier(result)
    assert [r.recipe for r in rows] == [None]


def test_too_few_seeds_do_not_count() -> None:
    assert min_seeds(0.990) == 5 and min_seeds(0.995) == 3 and min_seeds(0.997) == 3
    result = {
        "ours": {
            "four-seeds": _ours([0.9950] * 4, 0.5),  # enough for 99.5, not for 99.0
            "five-seeds": _ours([0.9920] * 5, 3.0),
        }
    }
    rows = frontier(result)
    assert [(r.level, r.recipe) for r in rows][:2] == [(0.990, "five-seeds"), (0.995, "four-seeds")]


def test_a_level_short_of_seeds_does_not_hide_the_levels_above() -> None:
    result = {"ours": {"accurate": _ours([0.9955] * 3, 20.0, tta=True)}}
    rows = frontier(result)
    assert [(r.level, r.recipe) for r in rows] == [
        (0.990, None),  # 3 seeds: not enough at 99.0%
        (0.995, "accurate"),
        (0.996, None),
    ]


def test_peer_time_is_the_median_and_a_lower_bound_when_a_run_misses() -> None:
    peer = _peer([(0.991, 10.0)], [(0.989, 10.0), (0.990, 20.0)], [(0.99, 30.0)])["runs"]
    t = peer_time_to(peer, 0.990)
    assert t is not None and (t.seconds, t.lower_bound, t.runs) == (20.0, False, 3)
    t = peer_time_to(peer, 0.9905)
    assert t is not None and t.lower_bound and t.seconds == 20.0  # 10 (hit), 20, 30 (bounds)
    assert peer_time_to([], 0.99) is None


def test_table_marks_lower_bounds_and_unreached_levels() -> None:
    result = {
        "ours": {"fast": _ours([0.9910] * 5, 2.0)},
        "peer": _peer([(0.985, 100.0), (0.989, 200.0)]),
    }
    rows = frontier(result)
    text = format_frontier(rows)
    lines = text.splitlines()
    assert len(lines) == 2 + 2  # header, rule, 99.0 and the unreached 99.5
    assert "`fast`: 99.10% ± 0.00 (5 seeds)" in lines[2]
    assert ">= 200.0 s" in lines[2] and ">= 100.0x" in lines[2]
    assert "not reached" in lines[3] and "99.5%" in lines[3]
    as_json = frontier_json(rows)
    assert as_json[0]["peer_lower_bound"] is True and as_json[0]["ratio_peer_over_ours"] == 100.0
    assert as_json[1] == {"level": 0.995, "recipe": None, "min_seeds": 3, **_peer_json(200.0)}


def _peer_json(seconds: float) -> dict[str, Any]:
    return {"peer_time_s": seconds, "peer_lower_bound": True}


def test_no_peer_run_says_so() -> None:
    rows = frontier({"ours": {"fast": _ours([0.9910] * 5, 2.0)}})
    assert rows[0].ratio is None
    assert "not run" in format_frontier(rows).splitlines()[2]


def test_training_does_not_import_the_compiler_stack(mnist_dir: Path) -> None:
    """Cold start: torch._dynamo costs about as much as importing torch. torch.optim (its step
    and the methods wrapped in torch._disable_dynamo) and the deterministic-algorithms setter
    import it; a training run must not."""
    code = (
        "import sys\n"
        "from digitrec.training import TrainConfig, train_model\n"
        "cfg = TrainConfig(model='fast', max_steps=2, train_limit=300, val_size=100, out=None,\n"
        f"                 threads=1, device='cpu', data_dir={str(mnist_dir)!r})\n"
        "train_model(cfg)\n"
        "print(sorted(m for m in ('torch._dynamo', 'torch._inductor') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("name", ["sgd", "adam", "adadelta"])
def test_optimizer_step_matches_torch_step(name: str) -> None:
    """The undecorated step that skips the torch._dynamo import computes the same update."""
    import torch

    from digitrec.models import create_model
    from digitrec.training.optim import build_optimizer, optimizer_step
    from digitrec.training.recipes import FAST

    recipe = FAST.replace(optimizer=name, lr=0.05)
    nets, opts = [], []
    for _ in range(2):
        torch.manual_seed(0)
        net = create_model("fast")
        nets.append(net)
        opts.append(build_optimizer(recipe, net))
    x, y = torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8,))
    for _ in range(3):
        for net, opt, step in zip(nets, opts, (optimizer_step, lambda o: o.step()), strict=True):
            loss = torch.nn.functional.cross_entropy(net(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            step(opt)
    for a, b in zip(nets[0].state_dict().values(), nets[1].state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert torch.is_grad_enabled()


def test_train_evaluates_the_test_split_once(
    tmp_path: Path, mnist_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """The report reuses the evaluation `train` just printed instead of running it again."""
    import digitrec.inference.evaluate as evaluate
    import digitrec.report.run_report as run_report

    calls = []
    real = evaluate.evaluate_checkpoint

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(evaluate, "evaluate_checkpoint", counting)
    monkeypatch.setattr(run_report, "evaluate_checkpoint", counting)
    run = tmp_path / "run"
    args = ["train", "--model", "fast", "--max-steps", "3", "--val-size", "100", "--threads", "1"]
    assert main([*args, "--data-dir", str(mnist_dir), "--out", str(run)]) == 0
    assert "test accuracy:" in capsys.readouterr().out
    assert (run / "report.html").is_file() and (run / "test_metrics.json").is_file()
    assert len(calls) == 1


def test_the_process_entry_point_freezes_gc_before_exit(monkeypatch: pytest.MonkeyPatch) -> None:
    """``main()`` (argv None: the process's own command line) spares the interpreter's final
    collection; ``main([...])`` called in-process, as here, leaves the collector alone."""
    import gc

    gc.unfreeze()
    try:
        assert main(["models"]) == 0
        assert gc.get_freeze_count() == 0
        monkeypatch.setattr(sys, "argv", ["digitrec", "models"])
        assert main() == 0
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


def test_format_speed_appends_the_frontier_and_no_ratio_below_99() -> None:
    from digitrec.benchmarks.speed import format_speed

    machine = {"cpu": "x", "cores": 2, "torch": "t", "threads": 2, "device": "cpu"}
    below = _ours([0.9890] * 5, 1.0)
    above = _ours([0.9906] * 5, 3.0)
    for ours, ratio in ((below, 100.0), (above, 33.3)):
        ours.update(
            test_acc_without_tta=ours["test_acc"],
            end_to_end_s={"median": 4.0},
            peak_rss_mb_so_far=500.0,
            ratio_peer_over_ours=ratio,
        )
        for key in ("test_acc", "train_time_s"):
            ours[key].update(min=ours[key]["mean"], max=ours[key]["mean"])
    peer = _peer([(0.985, 50.0), (0.991, 100.0)])
    peer.update(time_to_99_s={"median": 100.0, "min": 100.0, "max": 100.0}, all_reached_99=True)
    text = format_speed({"machine": machine, "ours": {"quick": below, "fast": above}, "peer": peer})
    assert "none, our mean is below 99.0%" in text and "100.0x" not in text
    assert "ratio peer/ours (time to 99%): 33.3x" in text
    assert "| 99.0% | `fast`: 99.06% ± 0.00 (5 seeds) | 3.00 s | 0.10 s | 100.0 s | 33.3x |" in text
