"""What memory is free, read where an analysis plans its work: every analysis refuses up front,
in one line, work that will not fit (module attributes read at call time, so a test can shrink
them)."""

from __future__ import annotations

import torch

#: Largest attention payload (float16 patterns for a widget) one result will collect.
MAX_ATTENTION_BYTES = 32 * 2**20


def available_memory() -> int:
    """Bytes of RAM free for new allocations now."""
    import psutil  # a dependency of accelerate, which loading needs

    return int(psutil.virtual_memory().available)


def free_bytes(device: torch.device) -> int:
    """Bytes free for new allocations on ``device`` (a CUDA device's own free memory, else RAM)."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    return available_memory()
