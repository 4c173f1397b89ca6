"""Load test of ``POST /api/predict`` (JSON pixels) on 127.0.0.1: torch and ONNX Runtime.

For each back end, starts ``digitrec serve`` on the shipped model (the ONNX one is exported to a
temporary folder), warms it up, then runs two phases of REQUESTS requests from CLIENTS concurrent
keep-alive connections, and reports errors, latency percentiles and throughput:

- paced: the requests are offered at RATE per second (default 1,000), latency counted from when
  each was due; the README's targets: 0 errors, p50 <= 5 ms, p99 <= 20 ms, and it keeps up;
- max: each client sends again as soon as it has its answer: the throughput ceiling
  (target >= 1,000 requests/s). Its latency is queueing: clients / throughput (Little's law).

    python bench/load.py                               # both back ends, 16 clients, 5,000 requests
    python bench/load.py --modes batch,lock,threads    # also compare how requests share the model
    python bench/load.py --json bench/results/load.json

The load generator shares the machine with the server; the server's CPU per request is reported.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from loadlib import Conn, cpu_s, machine, mnist_pixel_bodies, request_bytes, server

TARGETS = {"p50_ms": 5.0, "p99_ms": 20.0, "rps": 1000.0}


async def run_load(
    host: str,
    port: int,
    bodies: list[tuple[bytes, int]],
    total: int,
    clients: int,
    rate: float | None = None,
):
    """Send ``total`` requests over ``clients`` keep-alive connections.

    ``rate`` None: closed loop, each client sends its next request as soon as the last one is
    answered (the throughput ceiling). ``rate`` R: open loop, request k is due at k / R seconds;
    its latency counts from when it was due, so a server that falls behind is charged for the
    queue (no coordinated omission).

    Returns ``(wall_s, latencies_s, errors, wrong_digits)``.
    """
    payloads = [
        (request_bytes("POST", "/api/predict", b, "application/json"), y) for b, y in bodies
    ]
    latencies: list[float] = []
    errors: list[str] = []
    wrong = 0
    loop = asyncio.get_running_loop()
    t0 = loop.time() + 0.05

    async def client(first: int) -> None:
        nonlocal wrong
        conn = Conn(host, port)
        for i in range(first, total, clients):
            payload, label = payloads[i % len(payloads)]
            if rate is not None:
                due = t0 + i / rate
                if due > loop.time():
                    await asyncio.sleep(due - loop.time())
                start = due
            else:
                start = loop.time()
            try:
                status, body = await conn.request(payload)
            except (OSError, asyncio.IncompleteReadError) as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                continue
            latencies.append(loop.time() - start)
            if status != 200:
                errors.append(f"HTTP {status}: {body[:100]!r}")
            elif json.loads(body)["digit"] != label:
                wrong += 1
        await conn.close()

    begin = time.perf_counter()
    await asyncio.gather(*(client(c) for c in range(clients)))
    return time.perf_counter() - begin, latencies, errors, wrong


def summary(lat: list[float], errors: list[str], wrong: int, wall: float, n: int) -> dict:
    ms = np.asarray(lat) * 1000
    return {
        "errors": len(errors),
        "wrong_digits": wrong,
        "p50_ms": float(np.percentile(ms, 50)),
        "p90_ms": float(np.percentile(ms, 90)),
        "p99_ms": float(np.percentile(ms, 99)),
        "max_ms": float(ms.max()),
        "rps": n / wall,
        "wall_s": wall,
        "first_errors": errors[:5],
    }


def phase(args: argparse.Namespace, host: str, port: int, pid: int, rate: float | None) -> dict:
    """One phase on a running server: ``--requests`` requests, paced at ``rate`` or unpaced."""
    bodies = mnist_pixel_bodies(500)
    cpu0 = cpu_s(pid)
    wall, lat, errors, wrong = asyncio.run(
        run_load(host, port, bodies, args.requests, args.clients, rate)
    )
    out = summary(lat, errors, wrong, wall, args.requests)
    out["server_cpu_ms_per_request"] = (cpu_s(pid) - cpu0) / args.requests * 1e3
    out["loadavg_1min"] = os.getloadavg()[0]
    return out


def median_of(runs: list[dict]) -> dict:
    """Per metric, the median over the repeats (errors: the total)."""
    keys = ["p50_ms", "p90_ms", "p99_ms", "max_ms", "rps", "server_cpu_ms_per_request"]
    out = {k: float(np.median([r[k] for r in runs])) for k in keys}
    out["errors"] = sum(r["errors"] for r in runs)
    out["wrong_digits"] = sum(r["wrong_digits"] for r in runs)
    return out


def measure(args: argparse.Namespace, configs: list[tuple[str, str, str]], log_dir: Path) -> list:
    """Start a server per (backend, mode, model); warm each up; then ``--repeat`` rounds, each
    running both phases on every server in turn, so a busy spell on the machine hits them all."""
    runs: dict[tuple[str, str], dict[str, list]] = {}
    with contextlib.ExitStack() as stack:
        servers = {}
        for name, mode, model in configs:
            serve_args = [model, "--threads", str(args.threads), "--inference", mode]
            serve_args += ["--workers", str(args.workers)]
            log = log_dir / f"{name}-{mode}.log"
            servers[name, mode] = stack.enter_context(server(serve_args, log))
            host, port, _ = servers[name, mode]
            asyncio.run(run_load(host, port, mnist_pixel_bodies(500), args.warmup, args.clients))
            runs[name, mode] = {"paced": [], "max": []}
        for _ in range(args.repeat):
            for key, (host, port, pid) in servers.items():
                runs[key]["paced"].append(phase(args, host, port, pid, args.rate))
                runs[key]["max"].append(phase(args, host, port, pid, None))
    rows = []
    for (name, mode), phases in runs.items():
        row = {"backend": name, "mode": mode, "requests": args.requests, "clients": args.clients}
        row["workers"], row["repeats"] = args.workers, args.repeat
        row["paced"], row["max"] = median_of(phases["paced"]), median_of(phases["max"])
        row["runs"] = phases
        paced, peak = row["paced"], row["max"]
        row["meets_targets"] = (
            paced["errors"] == 0
            and peak["errors"] == 0
            and paced["p50_ms"] <= TARGETS["p50_ms"]
            and paced["p99_ms"] <= TARGETS["p99_ms"]
            and paced["rps"] >= 0.98 * args.rate  # it kept up with the offered rate
            and peak["rps"] >= TARGETS["rps"]
        )
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=5000)
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--warmup", type=int, default=300, help="requests before measuring")
    p.add_argument(
        "--rate", type=float, default=1000.0, help="offered load of the paced phase, requests/s"
    )
    p.add_argument("--backends", default="torch,onnx", help="(default: torch,onnx)")
    p.add_argument("--modes", default="batch", help="serve --inference modes (default: batch)")
    p.add_argument("--threads", type=int, default=1, help="serve --threads (default: 1)")
    p.add_argument(
        "--workers", type=int, default=2, help="serve --workers (default: 2, one per core here)"
    )
    p.add_argument(
        "--repeat", type=int, default=3, help="rounds; the medians are reported (default: 3)"
    )
    p.add_argument("--checkpoint", help="model to serve (default: the shipped one)")
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args(argv)

    from digitrec.inference.checkpoint import default_checkpoint

    ckpt = Path(args.checkpoint or default_checkpoint())
    info = {
        **machine(),
        "checkpoint": str(ckpt),
        "command": " ".join(["bench/load.py", *sys.argv[1:]]),
    }
    with tempfile.TemporaryDirectory() as tmp:
        models = {"torch": str(ckpt)}
        if "onnx" in args.backends.split(","):
            from digitrec.inference.onnx import export_onnx

            models["onnx"] = str(export_onnx(ckpt, Path(tmp) / "digits.onnx"))
        configs = [
            (name, mode, models[name])
            for name in args.backends.split(",")
            for mode in args.modes.split(",")
        ]
        rows = measure(args, configs, Path(tmp))
        for row in rows:
            print(_line(row), flush=True)
    info["loadavg_after"] = os.getloadavg()
    print(
        f"machine: {info['cpu']}, {info['cores']} cores; load average before "
        f"{info['loadavg_before'][0]:.2f}, after {info['loadavg_after'][0]:.2f}"
    )
    print(
        f"targets: 0 errors; paced at {args.rate:,.0f} req/s: p50 <= 5 ms, p99 <= 20 ms, and it "
        "keeps up; max (closed loop): >= 1,000 requests/s"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"machine": info, "results": rows}, indent=2) + "\n")
    return 0 if all(r["meets_targets"] for r in rows) else 1


def _line(r: dict) -> str:
    out = []
    for kind in ("paced", "max"):
        x = r[kind]
        out.append(
            f"{r['backend']:5s} {r['mode']:7s} {kind:5s} median of {r['repeats']} x "
            f"{r['requests']} req, {r['clients']} "
            f"clients: errors {x['errors']}, p50 {x['p50_ms']:.2f} ms, p90 {x['p90_ms']:.2f} ms, "
            f"p99 {x['p99_ms']:.2f} ms, max {x['max_ms']:.1f} ms, {x['rps']:,.0f} req/s, "
            f"server CPU {x['server_cpu_ms_per_request']:.2f} ms/req, wrong {x['wrong_digits']}"
        )
    return "\n".join(out) + ("  OK" if r["meets_targets"] else "  MISSES TARGETS")


if __name__ == "__main__":
    sys.exit(main())
