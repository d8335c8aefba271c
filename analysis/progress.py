"""Progress of long calls, with the time left, in a terminal or a Jupyter notebook.

:func:`progress_bar` is what ``pvsim run``, ``compare`` and ``sweep`` show on a terminal,
and what :func:`analysis.run.simulate`, :func:`analysis.sweep.sweep` and
:func:`analysis.plan.plan` show when called with ``progress=True`` (rich draws it in a
terminal or, in Jupyter, in the cell's output). The time left is estimated from the work
done since the bar started, so work that was done at once (runs read from a sweep's
cache) does not make it look faster than it is. :func:`remaining_values` bounds the
values a capacity search still has to decide, for its estimate.

Examples
--------
>>> with progress_bar("runs", 4, "runs", show=False) as update:
...     update(2)
>>> format_left(None), format_left(42.0), format_left(9000.0)
('', '~42 s left', '~2.5 h left')
>>> remaining_values(good=8, bad=None, limit=64), remaining_values(good=8, bad=16, limit=64)
(8, 3)
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["format_left", "in_jupyter", "plan_progress", "progress_bar", "remaining_values"]


def in_jupyter() -> bool:
    """Whether the code runs in a Jupyter kernel (an IPython kernel with a front end)."""
    shell = sys.modules.get("IPython")
    ip = shell.get_ipython() if shell is not None else None
    return ip is not None and type(ip).__name__ == "ZMQInteractiveShell"


def format_left(seconds: float | None) -> str:
    """``~42 s left``, ``~3 min left``, ``~1.1 h left`` (empty while unknown)."""
    if seconds is None or not math.isfinite(seconds):
        return ""
    if seconds < 90:
        return f"~{seconds:.0f} s left"
    if seconds < 5400:
        return f"~{seconds / 60:.0f} min left"
    return f"~{seconds / 3600:.1f} h left"


@contextmanager
def progress_bar(label: str, total: float, unit: str,
                 show: bool | None = None) -> Iterator[Callable[..., None]]:
    """A bar of ``total`` units; yields ``update(done, note="")``.

    Parameters
    ----------
    label : str
        What is being done.
    total : float
        The units of work (0 or less: unknown, a pulsing bar).
    unit : str
        Their name, as shown (``runs``, ``s simulated``).
    show : bool, optional
        Draw it; by default when standard error is a terminal or in Jupyter.
    """
    if show is None:
        show = sys.stderr.isatty() or in_jupyter()
    if not show:
        yield lambda done, note="": None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    known = total > 0
    columns = (TextColumn("{task.description}"), BarColumn(),
               TextColumn(("{task.completed:.3g}/{task.total:.3g} " if known else
                           "{task.completed:.3g} ") + unit),
               TimeElapsedColumn(), TextColumn("{task.fields[left]}"))
    console = Console() if in_jupyter() else Console(stderr=True)
    first: list[float] = []  # when the bar first heard, and the work done by then

    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(label, total=total if known else None, left="")

        def update(done: float, note: str = "") -> None:
            now = time.perf_counter()
            if not first:
                first.extend((now, done))
            elapsed, since = now - first[0], done - first[1]
            left = (total - done) * elapsed / since if known and since > 0 else None
            bar.update(task, completed=done, left=note or format_left(left))

        yield update


def remaining_values(good: int, bad: int | None, limit: int) -> int:
    """The most values a capacity search (:func:`analysis.plan.plan`) still decides when
    ``good`` holds and ``bad`` fails (None: no failure yet): while it gallops (doubling
    up to ``limit``), the worst over the doubling that could fail first of the doublings
    to it and the bisection after; then the bisection of ``[good, bad)``."""
    def bisect(width: int) -> int:
        return max(0, math.ceil(math.log2(max(width, 1))))

    if bad is not None:
        return bisect(bad - good)
    worst, steps, at = 0, 0, max(good, 1)
    while at < limit:
        nxt = min(at * 2, limit)
        steps += 1
        worst = max(worst, steps + bisect(nxt - at))  # nxt fails: bisect (at, nxt)
        at = nxt
    return max(worst, steps)


def plan_progress(path: str, limit: int, update: Callable[..., None],
                  say: Callable[[str], None] | None = None) -> Callable[[int, object], None]:
    """``progress(value, verdict)`` for :func:`analysis.plan.plan`: on the bar
    (``update`` of :func:`progress_bar`) the values decided, the most still to decide
    (:func:`remaining_values`) and the time that leaves at the mean time per value so
    far; ``say`` gets a line per value decided."""
    start, decided = time.perf_counter(), {}

    def report(value: int, v) -> None:
        decided[value] = v.holds
        if say is not None:
            say(f"  {path} = {value}: {'holds' if v.holds else 'fails'}"
                + ("" if v.holds else f" ({'; '.join(v.reasons)})"))
        held = [x for x, ok in decided.items() if ok]
        if not held:  # the start fails: the search is over
            update(len(decided), "done")
            return
        good = max(held)
        bad = min((x for x, ok in decided.items() if not ok and x > good), default=None)
        more = remaining_values(good, bad, limit)
        per = (time.perf_counter() - start) / len(decided)
        update(len(decided), f"at most {more} more {format_left(more * per)}".rstrip())

    return report
