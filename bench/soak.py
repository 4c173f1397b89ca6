"""Soak test of ``digitrec serve`` on 127.0.0.1: mixed good and bad requests under load.

DURATION seconds (default 60) of CLIENTS concurrent clients (default 32), each sending a random
mix: good predictions (pixels, uploads, batches, numbers), malformed JSON and base64, wrong pixel
shapes, blank drawings, non-images, a decompression bomb, oversized uploads (declared and
streamed), slow clients that trickle a valid body in, and clients that stall mid-body. Meanwhile
``/healthz`` is polled every 0.5 s. Pass: zero 5xx, the server alive, ``/healthz`` always
answering, and the resident memory before and after reported (bounded growth).

    python bench/soak.py                      # 60 s, 32 clients, the shipped model
    python bench/soak.py --json bench/results/soak.json
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import random
import struct
import sys
import tempfile
import time
import zlib
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from loadlib import (
    HOST,
    Conn,
    alive,
    machine,
    read_response,
    request_bytes,
    rss_mb,
    server,
)

BOUNDARY = "soakboundary"


def multipart(field: str, files: list[bytes]) -> bytes:
    parts = b"".join(
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{field}"; '
        f'filename="{i}.png"\r\nContent-Type: image/png\r\n\r\n'.encode()
        + data
        + b"\r\n"
        for i, data in enumerate(files)
    )
    return parts + f"--{BOUNDARY}--\r\n".encode()


def png(image: np.ndarray) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def bomb() -> bytes:
    """A PNG whose header claims 100,000 x 100,000 pixels."""
    ihdr = b"IHDR" + struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)
    idat = b"IDAT" + zlib.compress(b"\0" * 100)
    chunks = (ihdr, idat)
    return b"\x89PNG\r\n\x1a\n" + b"".join(
        struct.pack(">I", len(c) - 4) + c + struct.pack(">I", zlib.crc32(c)) for c in chunks
    )


def build_requests() -> dict[str, tuple[list[bytes], set[int]]]:
    """Each kind: ready-made request payloads and the statuses that are right for it."""
    from digitrec.data import load_mnist

    images, _ = load_mnist("test")
    photos = [png(255 - np.kron(images[i], np.ones((6, 6), np.uint8))) for i in range(20)]
    number = png(np.hstack([255 - np.kron(images[i], np.ones((3, 3), np.uint8)) for i in range(4)]))
    js = "application/json"
    mp = f"multipart/form-data; boundary={BOUNDARY}"

    def post(path: str, body: bytes, kind: str = js) -> bytes:
        return request_bytes("POST", path, body, kind)

    pixels = [json.dumps({"pixels": images[i].tolist()}).encode() for i in range(50)]
    batch = json.dumps({"images": [{"pixels": images[i].tolist()} for i in range(8)]}).encode()
    return {
        "predict_pixels": ([post("/api/predict", b) for b in pixels], {200}),
        "predict_upload": (
            [post("/api/predict", multipart("file", [p]), mp) for p in photos],
            {200},
        ),
        "predict_base64": (
            [
                post("/api/predict", json.dumps({"image": base64.b64encode(p).decode()}).encode())
                for p in photos[:5]
            ],
            {200},
        ),
        "batch": ([post("/api/predict/batch", batch)], {200}),
        "read": ([post("/api/read", multipart("file", [number]), mp)], {200}),
        "model_info": ([request_bytes("GET", "/api/model")], {200}),
        "page": ([request_bytes("GET", "/")], {200}),
        "bad_json": ([post("/api/predict", b'{"pixels": [[1, 2')], {422}),
        "bad_base64": ([post("/api/predict", b'{"image": "@@@@"}')], {422}),
        "bad_shape": (
            [post("/api/predict", json.dumps({"pixels": [[0] * 27] * 28}).encode())],
            {422},
        ),
        "bad_range": (
            [post("/api/predict", json.dumps({"pixels": [[999] * 28] * 28}).encode())],
            {422},
        ),
        "blank": ([post("/api/predict", json.dumps({"pixels": [[0] * 28] * 28}).encode())], {422}),
        "not_image": (
            [
                post(
                    "/api/predict",
                    json.dumps({"image": base64.b64encode(b"hello" * 50).decode()}).encode(),
                )
            ],
            {422},
        ),
        "wrong_type": ([post("/api/predict", b"7", "text/plain")], {415}),
        "bomb": ([post("/api/predict", multipart("file", [bomb()]), mp)], {413}),
        "unknown_route": ([request_bytes("GET", "/nothing/here")], {404}),
    }


# How often each kind is picked (the rest of the mix is the abusive clients below).
WEIGHTS = {
    "predict_pixels": 30, "predict_upload": 8, "predict_base64": 3, "batch": 4, "read": 3,
    "model_info": 2, "page": 2, "bad_json": 4, "bad_base64": 3, "bad_shape": 3, "bad_range": 3,
    "blank": 3, "not_image": 3, "wrong_type": 2, "bomb": 2, "unknown_route": 2,
    "oversized_declared": 4, "oversized_streamed": 2, "slow_client": 4, "stalled_client": 2,
}  # fmt: skip


async def raw_exchange(port: int, parts: list[tuple[bytes, float]], stop_early: bool = False):
    """Send ``parts`` (bytes, pause after) on a fresh connection; ``(status or None, note)``.

    ``stop_early``: stop sending as soon as the server answers (an oversized upload).
    """
    reader, writer = await asyncio.open_connection(HOST, port)
    answer = asyncio.ensure_future(read_response(reader))
    try:
        for data, pause in parts:
            if stop_early and answer.done():
                break
            writer.write(data)
            await writer.drain()
            if pause:
                await asyncio.sleep(pause)
        status, _, _ = await asyncio.wait_for(answer, 30)
        return status, ""
    except (ConnectionError, asyncio.IncompleteReadError, OSError) as exc:
        if answer.done() and not answer.cancelled() and answer.exception() is None:
            return answer.result()[0], ""
        return None, type(exc).__name__
    finally:
        answer.cancel()
        writer.close()


def abusive(kind: str, pixels_body: bytes) -> tuple[list[tuple[bytes, float]], set, bool]:
    head = "POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    if kind == "oversized_declared":  # says 50 MB; sends a little of it
        return (
            [((head + "Content-Length: 50000000\r\n\r\n").encode(), 0.0), (b"x" * 65536, 0.0)],
            {413},
            True,
        )
    if kind == "oversized_streamed":  # chunked, no length: cut off at the cap
        chunk = b"x" * 262_144
        parts = [((head + "Transfer-Encoding: chunked\r\n\r\n").encode(), 0.0)]
        parts += [(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n", 0.0)] * 60  # 15.7 MB
        return parts, {413}, True
    if kind == "slow_client":  # a valid body, trickled in over ~2 s
        body = pixels_body
        parts = [((head + f"Content-Length: {len(body)}\r\n\r\n").encode(), 0.25)]
        step = -(-len(body) // 8)
        parts += [(body[i : i + step], 0.25) for i in range(0, len(body), step)]
        return parts, {200}, False
    # stalled_client: half a body, then nothing (the server's body timeout answers)
    body = pixels_body
    start = (head + f"Content-Length: {len(body)}\r\n\r\n").encode()
    return [(start + body[: len(body) // 2], 0.0)], {408}, False


async def soak(port: int, pid: int, args: argparse.Namespace, requests: dict) -> dict:
    stats: dict[str, Counter] = defaultdict(Counter)
    rss: list[float] = []
    latency: dict[str, list[float]] = defaultdict(list)
    health: list[float] = []
    health_failures: list[str] = []
    deadline = time.monotonic() + args.duration
    kinds = list(WEIGHTS)
    weights = [WEIGHTS[k] for k in kinds]
    pixels_body = requests["predict_pixels"][0][0].split(b"\r\n\r\n", 1)[1]
    rng = random.Random(0)

    async def client() -> None:
        conn = Conn(HOST, port)
        while time.monotonic() < deadline:
            kind = rng.choices(kinds, weights)[0]
            start = time.perf_counter()
            if kind in requests:
                payloads, ok = requests[kind]
                try:
                    status, _ = await asyncio.wait_for(conn.request(rng.choice(payloads)), 30)
                    note = ""
                except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError) as exc:
                    status, note = None, type(exc).__name__
            else:
                parts, ok, early = abusive(kind, pixels_body)
                status, note = await raw_exchange(port, parts, early)
                if kind.startswith("oversized") and status is None:
                    ok, status, note = {None}, None, f"refused ({note})"  # a reset is a refusal
            latency[kind].append(time.perf_counter() - start)
            stats[kind]["total"] += 1
            stats[kind][str(status) if status is not None else note] += 1
            if status not in ok:
                stats[kind]["unexpected"] += 1
        await conn.close()

    async def healthcheck() -> None:
        hc = Conn(HOST, port)
        while time.monotonic() < deadline:
            start = time.perf_counter()
            try:
                status, _ = await asyncio.wait_for(hc.request(request_bytes("GET", "/healthz")), 2)
                if status != 200:
                    health_failures.append(f"HTTP {status}")
            except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError) as exc:
                health_failures.append(type(exc).__name__)
                await hc.close()
            health.append(time.perf_counter() - start)
            if len(health) % 10 == 1:  # every ~5 s: does memory level off?
                rss.append(round(rss_mb(pid), 1))
            await asyncio.sleep(0.5)
        await hc.close()

    await asyncio.gather(healthcheck(), *(client() for _ in range(args.clients)))
    out = {
        kind: {
            **dict(counts),
            "p50_ms": float(np.percentile(latency[kind], 50) * 1e3),
            "p99_ms": float(np.percentile(latency[kind], 99) * 1e3),
        }
        for kind, counts in sorted(stats.items())
    }
    return {
        "kinds": out,
        "health_checks": len(health),
        "health_failures": health_failures,
        "health_max_ms": max(health) * 1e3 if health else None,
        "rss_every_5s_mb": rss,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--duration", type=float, default=60.0, help="seconds (default: 60)")
    p.add_argument("--clients", type=int, default=32, help="(default: 32)")
    p.add_argument("--checkpoint", help="model to serve (default: the shipped one)")
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args(argv)
    requests = build_requests()
    serve_args = [args.checkpoint] if args.checkpoint else []
    info: dict = {**machine(), "command": " ".join(["bench/soak.py", *sys.argv[1:]])}
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "server.log"
        with server([*serve_args, "--threads", "1"], log) as (_, port, pid):
            # Warm up (first requests allocate caches), then measure memory before and after.
            asyncio.run(soak(port, pid, argparse.Namespace(duration=3.0, clients=4), requests))
            info["rss_before_mb"] = rss_mb(pid)
            result = asyncio.run(soak(port, pid, args, requests))
            info["rss_after_mb"] = rss_mb(pid)
            info["server_alive"] = alive(pid)
        info["server_log_tracebacks"] = log.read_text().count("Traceback")
    fives = {k: n for k, v in result["kinds"].items() for s, n in v.items() if s.startswith("5")}
    unexpected = {k: v["unexpected"] for k, v in result["kinds"].items() if v.get("unexpected")}
    total = sum(v["total"] for v in result["kinds"].values())
    growth = info["rss_after_mb"] - info["rss_before_mb"]
    for kind, v in result["kinds"].items():
        statuses = {s: n for s, n in v.items() if s not in ("total", "p50_ms", "p99_ms")}
        times = f"p50 {v['p50_ms']:.1f} ms  p99 {v['p99_ms']:.1f} ms"
        print(f"{kind:20s} {v['total']:6d}  {statuses}  {times}")
    print(
        f"{total} requests in {args.duration:.0f} s from {args.clients} clients; "
        f"5xx: {sum(fives.values())}; unexpected statuses: {unexpected or 0}; "
        f"server alive: {info['server_alive']}; "
        f"tracebacks in its log: {info['server_log_tracebacks']}"
    )
    print(
        f"/healthz: {result['health_checks']} checks, {len(result['health_failures'])} failures, "
        f"slowest {result['health_max_ms']:.1f} ms; RSS {info['rss_before_mb']:.0f} MB before, "
        f"{info['rss_after_mb']:.0f} MB after ({growth:+.0f} MB); every 5 s: "
        f"{', '.join(f'{x:.0f}' for x in result['rss_every_5s_mb'])} MB"
    )
    load = info["loadavg_before"][0]
    print(f"machine: {info['cpu']}, {info['cores']} cores, load average before {load:.2f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"machine": info, **result}, indent=2) + "\n")
    ok = (
        not fives
        and info["server_alive"]
        and not result["health_failures"]
        and not info["server_log_tracebacks"]
        and info["rss_after_mb"] <= 2 * info["rss_before_mb"]  # bounded growth
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
