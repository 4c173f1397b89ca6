"""What every benchmark records about the machine and the code that produced it."""

from __future__ import annotations

import os
import platform
import resource
import time
from collections.abc import Callable
from typing import Any

import torch

Log = Callable[[str], None]


def machine_info(device: torch.device) -> dict[str, Any]:
    """CPU model, core count, torch version and thread setting (plus the GPU, if used)."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if "model name" in line)
    except (OSError, StopIteration):
        pass
    info = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "device": str(device),
        "date": time.strftime("%Y-%m-%d"),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
