"""``digitrec serve``: the HTTP API and the draw-a-digit page on uvicorn."""

from __future__ import annotations

import argparse
import contextlib
import errno
import ipaddress
import json
import os
import socket
from pathlib import Path
from typing import Any

from digitrec.cli import options
from digitrec.cli.common import say
from digitrec.errors import DigitrecError

MODES = ("batch", "lock", "threads")  # digitrec.serve.runner.MODES; not imported: no fastapi here
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


def add_commands(sub: argparse._SubParsersAction) -> None:
    """``digitrec serve``."""
    p = sub.add_parser(
        "serve",
        help="serve the HTTP API and a draw-a-digit page (localhost by default)",
        description="Serve POST /api/predict, /api/predict/batch, /api/read, GET /api/model, "
        "/healthz, the API documentation at /docs and a draw-a-digit page at /.",
        parents=[
            options.COMMON,
            options.CHECKPOINT,
            options.DEVICE,
            options.TTA,
            options.THREADS,
        ],
    )
    p.add_argument(
        "model",
        nargs="?",
        metavar="CHECKPOINT_OR_ONNX",
        help="the model to serve, as for --checkpoint (an ensemble .json too; default: the "
        "model shipped with digitrec)",
    )
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default: 127.0.0.1, this machine only)",
    )
    p.add_argument("--port", type=int, default=8000, help="(default: 8000)")
    p.add_argument(
        "--workers",
        type=options.positive_int,
        default=1,
        help="server processes, each with its own copy of the model and, unless --threads "
        "says otherwise, an equal share of the cores (default: 1)",
    )
    p.add_argument(
        "--inference",
        choices=MODES,
        default="batch",
        help="how requests share the model: batch (on the event loop; requests that arrive "
        "together share one pass), lock (worker threads, one at a time) or threads (worker "
        "threads, concurrently) (default: batch)",
    )
    p.add_argument(
        "--log-level", choices=LOG_LEVELS, default="warning", help="uvicorn's (default: warning)"
    )
    p.add_argument(
        "--runs", default="runs", metavar="DIR", help="run reports served at /runs (default: runs)"
    )
    p.set_defaults(func=serve)


def _model_path(args: argparse.Namespace) -> str:
    """The one model to serve, as an absolute path (workers may start elsewhere)."""
    from digitrec.cli.common import checkpoint_or_default
    from digitrec.inference.checkpoint import resolve_checkpoint_path

    if args.model and args.checkpoint and args.model != args.checkpoint:
        raise DigitrecError("give the model once: as CHECKPOINT_OR_ONNX or with --checkpoint")
    path = Path(checkpoint_or_default(args.model or args.checkpoint))
    if path.suffix.lower() not in (".onnx", ".json"):  # .json: an ensemble file
        path = resolve_checkpoint_path(path)
    elif not path.is_file():
        raise DigitrecError(f"{path}: no such file")
    return str(path.resolve())


def _run_info(path: str) -> dict[str, Any]:
    """``GET /api/model`` extras: the test accuracy `digitrec train` left beside a checkpoint."""
    if Path(path).suffix.lower() == ".json":  # an ensemble records its own (--evaluate)
        return {}
    report = Path(path).parent / "test_metrics.json"
    try:
        accuracy = json.loads(report.read_text())["accuracy"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return {"test_accuracy": float(accuracy)} if isinstance(accuracy, int | float) else {}


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound before anything is loaded: a busy port is one clear line.

    Made here rather than by uvicorn: uvicorn's own socket for ``--workers`` has protocol 0, so
    asyncio leaves Nagle's algorithm on for its connections and every response waits ~40 ms for
    a delayed ACK. This one says TCP, and asyncio sets TCP_NODELAY.
    """
    if not 0 <= port <= 65535:
        raise DigitrecError(f"--port must be in 0..65535, got {port}")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise DigitrecError(f"port {port} on {host} is in use; pick another --port") from None
        raise DigitrecError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    except OverflowError:  # a port beyond 65535 slipped through
        sock.close()
        raise DigitrecError(f"--port must be in 0..65535, got {port}") from None
    sock.set_inheritable(True)  # --workers: the worker processes accept on it
    return sock


def run_uvicorn(target: Any, sock: socket.socket, args: argparse.Namespace) -> bool:
    """Serve ``target`` (an app, or an app-factory import string for workers) on ``sock``;
    False when a single server failed to start."""
    import uvicorn

    config = uvicorn.Config(
        target,
        host=args.host,
        port=sock.getsockname()[1],
        workers=args.workers,
        factory=isinstance(target, str),
        log_level=args.log_level,
        access_log=False,
        timeout_graceful_shutdown=5,
    )
    if args.workers > 1:
        from uvicorn.supervisors import Multiprocess

        Multiprocess(config, sockets=[sock]).run()
        return True
    server = uvicorn.Server(config)
    server.run(sockets=[sock])
    return server.started


def serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn  # noqa: F401  (the extra's presence, checked before any work)

        import digitrec.serve.main as server
    except ImportError as exc:
        raise DigitrecError(
            f"the server needs the 'serve' extra ({exc.name} is missing): "
            "pip install 'digitrec[serve]'"
        ) from None
    sock = _listen(args.host, args.port)
    try:
        return _serve(args, sock, server)
    finally:
        sock.close()


def _serve(args: argparse.Namespace, sock: socket.socket, server: Any) -> int:
    settings: dict[str, Any] = {
        "checkpoint": _model_path(args),
        "device": args.device,
        "tta": args.tta,
        # Several workers share the cores: torch's default (every core each) oversubscribes.
        "threads": args.threads
        or (max(1, (os.cpu_count() or 1) // args.workers) if args.workers > 1 else None),
        "mode": args.inference,
        "runs": str(Path(args.runs).resolve()),
    }
    settings["info"] = _run_info(settings["checkpoint"])
    if args.workers == 1:
        target: Any = server.load_app(settings)  # loads the model once, here
        name = target.title
    else:  # each worker process loads its own copy; check here that it loads at all
        from digitrec.inference.predictor import Predictor

        Predictor.from_checkpoint(settings["checkpoint"], device=args.device)
        os.environ[server.ENV] = json.dumps(settings)
        target = "digitrec.serve.main:app_from_env"
        name = "digitrec"
    shown = f"[{args.host}]" if ":" in args.host else args.host
    url = f"http://{shown}:{sock.getsockname()[1]}/"
    say(f"{name}: serving {Path(settings['checkpoint']).name} at {url} (API docs: {url}docs)")
    if not _is_loopback(args.host):
        say(
            f"digitrec: warning: listening on {args.host}, reachable from other machines; the "
            "API has no authentication: serve on 127.0.0.1 behind a proxy that adds it"
        )
    # uvicorn re-raises the Ctrl+C or SIGTERM it shut down on: a normal stop here.
    started = True
    with contextlib.suppress(KeyboardInterrupt):
        started = run_uvicorn(target, sock, args)
    if not started:
        raise DigitrecError("the server did not start (see uvicorn's message above)")
    say("digitrec: server stopped")
    return 0
