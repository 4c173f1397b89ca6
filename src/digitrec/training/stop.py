"""Stopping a run cleanly: SIGINT/SIGTERM become a flag that the loop polls once per step.

The loop never reads the signal itself; it calls a stop function, ``should_stop() -> bool``, once
before every optimizer step. The default is :meth:`SignalStop.requested`. A distributed run
passes a function that all-reduces each rank's flag, so that every rank stops after the same step
and saves once, instead of some ranks waiting forever in the next all-reduce::

    with SignalStop() as local:
        train(cfg, should_stop=lambda: any_rank(local.requested()), writer=RunWriter(out, rank0))
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import Any

StopFn = Callable[[], bool]


class SignalStop:
    """Turns SIGINT/SIGTERM into a flag while the ``with`` block runs (main thread only)."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self) -> SignalStop:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, _frame: object) -> None:
        self.signal = signum

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old.clear()

    def requested(self) -> bool:
        """True once SIGINT or SIGTERM has arrived."""
        return self.signal is not None
