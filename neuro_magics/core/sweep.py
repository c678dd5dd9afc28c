"""One interrupt-safe loop for every analysis that fills a map batch by batch.

A sweep can take minutes: it shows a progress bar with an ETA, and Ctrl-C keeps what
has finished (the caller's map keeps NaN where nothing ran) and says so. The model is
never touched here; every run of the runner removes its hooks on the way out, also on
an interrupt.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

from .progress import ProgressBar

Item = TypeVar("Item")


def sweep(
    items: Iterable[Item],
    work: Callable[[Item], int],
    *,
    total: int,
    desc: str,
    unit: str = "cell",
    progress: bool = True,
) -> bool:
    """Call ``work(item)`` for every item; ``work`` returns how many cells it finished.

    Returns whether the sweep was interrupted (KeyboardInterrupt); the cells finished before
    the interrupt stay where ``work`` wrote them.
    """
    finished = 0
    bar = ProgressBar(total, desc, unit, enabled=progress)
    try:
        for item in items:
            done = work(item)
            finished += done
            bar.update(done)
    except KeyboardInterrupt:
        print(f"Interrupted: kept the {finished} finished {unit}s of {total}; the rest are NaN.")
        return True
    finally:
        bar.close()
    return False
