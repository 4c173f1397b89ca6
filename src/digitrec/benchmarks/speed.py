"""Benchmarks: our recipes against the PyTorch ``examples/mnist`` peer, in one process and run.

Timing lives here and in the README, never in test assertions.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import torch
import torch.nn.functional as F

from digitrec.benchmarks.frontier import format_frontier, frontier, frontier_json
from digitrec.benchmarks.machine import Log, machine_info, peak_rss_mb
from digitrec.data import load_mnist
from digitrec.inference.device import pick_device
from digitrec.inference.metrics import evaluate_tensors
from digitrec.models import Preprocessing, create_model, get_spec, to_input
from digitrec.training import TrainConfig, train_model


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_peer(
    seed: int,
    max_epochs: int,
    device: torch.device,
    data_dir: str | None,
    log: Log,
    max_steps: int | None = None,
    until: float = 0.99,
) -> dict[str, Any]:
    """The pytorch/examples mnist recipe, evaluated on the test set after every epoch.

    Adadelta lr 1.0, StepLR gamma 0.7, batch 64, a shuffling DataLoader over normalised
    tensors. Time to 99% is the training time up to the end of the first epoch whose test
    accuracy is >= 99.0%; if no epoch gets there within ``max_epochs``, it is reported as a
    lower bound (the time of all epochs run). Training goes on to the first epoch at or above
    ``until`` (the frontier's highest level), within the cap.
    """
    from torch.utils.data import DataLoader, TensorDataset

    pre = Preprocessing()
    torch.manual_seed(seed)
    tx, ty = load_mnist("train", data_dir)
    vx, vy = load_mnist("test", data_dir)
    train_x, train_y = to_input(tx, pre), torch.as_tensor(ty)
    test_x, test_y = to_input(vx, pre, device), torch.as_tensor(vy).to(device)
    loader = DataLoader(TensorDataset(train_x, train_y), batch_size=64, shuffle=True)
    model = create_model("pytorch-example").to(device)
    optimizer = torch.optim.Adadelta(model.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.7)
    epochs, train_time, reached = [], 0.0, None
    for epoch in range(1, max_epochs + 1):
        model.train()
        _sync(device)
        t0 = time.perf_counter()
        for step, (xb, yb) in enumerate(loader):
            if max_steps is not None and step >= max_steps:
                break
            xb, yb = xb.to(device), yb.to(device)
            optimizer.zero_grad()
            loss = F.nll_loss(F.log_softmax(model(xb), dim=1), yb)
            loss.backward()
            optimizer.step()
        scheduler.step()
        _sync(device)
        train_time += time.perf_counter() - t0
        acc = evaluate_tensors(model, test_x, test_y)["accuracy"]
        epochs.append({"epoch": epoch, "test_acc": acc, "train_time_s": train_time})
        log(f"  peer seed {seed} epoch {epoch}: test acc {acc:.4f}, {train_time:.1f}s so far")
        if acc >= 0.99 and reached is None:
            reached = train_time
        if acc >= until:
            break
    return {
        "seed": seed,
        "epochs": epochs,
        "time_to_99_s": reached if reached is not None else train_time,
        "reached_99": reached is not None,
        "epoch_time_s": train_time / len(epochs),
    }


def run_ours(
    model: str,
    seed: int,
    device: torch.device,
    data_dir: str | None,
    max_steps: int | None = None,
    tta: bool = False,
) -> dict[str, Any]:
    """Our fixed recipe on all 60k images (no validation, no early stopping), tested once.

    With ``tta`` the test pass averages 5 shifted views; its cost is in ``eval_time_s``.
    """
    t_start = time.perf_counter()
    cfg = TrainConfig(
        model=model,
        seed=seed,
        val_size=0,
        device=str(device),
        out=None,
        data_dir=data_dir,
        max_steps=max_steps,
    )
    result, net = train_model(cfg)
    images, labels = load_mnist("test", data_dir)
    pre = get_spec(model).preprocessing
    _sync(device)
    t0 = time.perf_counter()
    x, y = to_input(images, pre, device), torch.as_tensor(labels).to(device)
    test = evaluate_tensors(net, x, y, tta=tta)
    _sync(device)
    eval_time = time.perf_counter() - t0
    plain = evaluate_tensors(net, x, y)["accuracy"] if tta else test["accuracy"]
    return {
        "seed": seed,
        "test_acc": test["accuracy"],
        "test_acc_without_tta": plain,
        "train_time_s": result.train_time_s,
        "eval_time_s": eval_time,
        "end_to_end_s": time.perf_counter() - t_start,
    }


def _stats(values: list[float]) -> dict[str, float]:
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
    }


def bench_speed(
    models: dict[str, int],
    device: str = "cpu",
    peer_seeds: int = 1,
    peer_epochs: int = 4,
    data_dir: str | None = None,
    smoke: bool = False,
    tta: tuple[str, ...] = (),
    log: Log = lambda msg: None,
) -> dict[str, Any]:
    """Train each of our recipes over its number of seeds and the peer over ``peer_seeds``."""
    dev = pick_device(device)
    out: dict[str, Any] = {"machine": machine_info(dev), "ours": {}, "smoke": smoke}
    steps = 5 if smoke else None
    for name, seeds in models.items():
        runs = []
        for seed in range(seeds):
            run = run_ours(name, seed, dev, data_dir, max_steps=steps, tta=name in tta)
            log(
                f"  {name} seed {seed}: test acc {run['test_acc']:.4f}, train "
                f"{run['train_time_s']:.2f}s, eval {run['eval_time_s']:.2f}s, "
                f"end-to-end {run['end_to_end_s']:.2f}s"
            )
            runs.append(run)
        out["ours"][name] = {
            "tta": name in tta,
            "runs": runs,
            "test_acc": _stats([r["test_acc"] for r in runs]),
            "test_acc_without_tta": _stats([r["test_acc_without_tta"] for r in runs]),
            "train_time_s": _stats([r["train_time_s"] for r in runs]),
            "eval_time_s": _stats([r["eval_time_s"] for r in runs]),
            "end_to_end_s": _stats([r["end_to_end_s"] for r in runs]),
            "peak_rss_mb_so_far": peak_rss_mb(),
        }
    # The peer trains on to the highest frontier level one of ours reached (within its cap).
    reached = [r.level for r in frontier(out) if r.recipe is not None]
    until = max([0.99, *reached])
    peers = [
        run_peer(s, 1 if smoke else peer_epochs, dev, data_dir, log, max_steps=steps, until=until)
        for s in range(peer_seeds)
    ]
    peer_t = _stats([p["time_to_99_s"] for p in peers])
    out["peer"] = {
        "runs": peers,
        "time_to_99_s": peer_t,
        "all_reached_99": all(p["reached_99"] for p in peers),
    }
    for ours in out["ours"].values():
        ours["ratio_peer_over_ours"] = peer_t["median"] / ours["train_time_s"]["median"]
    out["frontier"] = frontier_json(frontier(out))
    return out


def format_speed(result: dict[str, Any]) -> str:
    """The benchmark as a small text report."""
    m = result["machine"]
    lines = [
        f"machine: {m['cpu']}, {m['cores']} cores, torch {m['torch']}, "
        f"{m['threads']} threads, device {m['device']}{', ' + m['gpu'] if 'gpu' in m else ''}"
    ]
    peer = result["peer"]
    bound = "" if peer["all_reached_99"] else " (LOWER BOUND: 99% not reached within the cap)"
    t = peer["time_to_99_s"]
    lines.append(
        f"peer pytorch-example: time to 99% median {t['median']:.1f}s "
        f"(min {t['min']:.1f}, max {t['max']:.1f}){bound}"
    )
    for name, ours in result["ours"].items():
        acc, tt = ours["test_acc"], ours["train_time_s"]
        lines.append(
            f"{name}{' + TTA' if ours['tta'] else ''}: test acc {acc['mean'] * 100:.2f}% "
            f"± {acc['std'] * 100:.2f} "
            f"(min {acc['min'] * 100:.2f}, max {acc['max'] * 100:.2f}) over {len(ours['runs'])} "
            f"seeds; train {tt['median']:.2f}s median (min {tt['min']:.2f}, max {tt['max']:.2f}); "
            f"eval {ours['eval_time_s']['median']:.2f}s; end-to-end "
            f"{ours['end_to_end_s']['median']:.2f}s; peak RSS {ours['peak_rss_mb_so_far']:.0f} MB"
        )
        if ours["tta"]:
            plain = ours["test_acc_without_tta"]
            lines.append(f"  without TTA: {plain['mean'] * 100:.2f}% ± {plain['std'] * 100:.2f}")
        if acc["mean"] < 0.99:  # no time to 99% of ours to compare with
            lines.append("  ratio peer/ours (time to 99%): none, our mean is below 99.0%")
            continue
        prefix = ">= " if not peer["all_reached_99"] else ""
        lines.append(
            f"  ratio peer/ours (time to 99%): {prefix}{ours['ratio_peer_over_ours']:.1f}x"
        )
    lines += ["", "time-to-accuracy frontier (test set; >= marks a lower bound):"]
    lines.append(format_frontier(frontier(result)))
    return "\n".join(lines)
