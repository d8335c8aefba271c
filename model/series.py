"""Time series accumulated as a run goes: amounts per fixed-width interval of simulated
time, so what a run keeps for its graphs grows with its length in intervals, not with
its events.

A :class:`Bins` row adds up, per interval ``[k * width, (k + 1) * width)``, the overlap
of each interval with the spans it is given (a vCPU's run segments: its busy cycles per
interval). A :class:`Level` integrates a step function (a device's queue length) over
time, in total and, with bins, per interval. Everything is integer cycles, so a series
equals exactly what the same sums over the recorded spans would give afterwards.

Examples
--------
>>> b = Bins(10)
>>> b.add(5, 25)            # 5 cycles in [0, 10), 10 in [10, 20), 5 in [20, 30)
>>> b.add(28, 31, weight=2)
>>> b.values(4).tolist()
[5, 10, 9, 2]
>>> q = Level(Bins(10))
>>> q.set(4, 1); q.set(12, 3); q.set(15, 0)
>>> q.area_at(20), q.advance(20), q.bins.values(2).tolist()
(17, None, [6, 11])
"""

from __future__ import annotations

from array import array

import numpy as np

__all__ = ["Bins", "Level"]


class Bins:
    """Integer amounts per interval of ``width`` cycles, from time 0.

    Parameters
    ----------
    width : int
        The interval, cycles (at least 1).

    Examples
    --------
    >>> b = Bins(100)
    >>> b.add(0, 250)
    >>> b.values(3).tolist(), b.values(1).tolist()
    ([100, 100, 50], [100])
    """

    __slots__ = ("width", "_a")

    def __init__(self, width: int) -> None:
        if width < 1:
            raise ValueError(f"an interval of {width} cycles; it must be at least 1")
        self.width = width
        self._a = array("q")

    def add(self, t0: int, t1: int, weight: int = 1) -> None:
        """Add ``weight`` times the overlap of ``[t0, t1)`` with each interval."""
        if t1 <= t0:
            return
        w, a = self.width, self._a
        k0, k1 = t0 // w, (t1 - 1) // w
        if k1 >= len(a):
            a.frombytes(bytes(8 * (k1 + 1 - len(a))))
        if k0 == k1:
            a[k0] += (t1 - t0) * weight
            return
        a[k0] += ((k0 + 1) * w - t0) * weight
        for k in range(k0 + 1, k1):
            a[k] += w * weight
        a[k1] += (t1 - k1 * w) * weight

    def put(self, k: int, amount: int) -> None:
        """Add ``amount`` to interval ``k``.

        Examples
        --------
        >>> b = Bins(10); b.put(2, 7); b.values(3).tolist()
        [0, 0, 7]
        """
        a = self._a
        if k >= len(a):
            a.frombytes(bytes(8 * (k + 1 - len(a))))
        a[k] += amount

    def values(self, n: int) -> np.ndarray:
        """The first ``n`` intervals' amounts (zeros past the last one added), a copy."""
        out = np.zeros(n, np.int64)
        m = min(n, len(self._a))
        out[:m] = np.frombuffer(self._a, dtype=np.int64, count=m) if m else 0
        return out


class Level:
    """The time integral of a step function that starts at 0 at time 0: in total
    (:meth:`area_at`) and, given ``bins``, per interval.

    Parameters
    ----------
    bins : Bins, optional
        Where the integral per interval goes (None: the total only).

    Notes
    -----
    A change within the interval under way only integrates; the interval's amount goes
    into the bins once a change falls past its end (or at :meth:`advance`), so a level
    that changes many times per interval costs one write per interval.

    Examples
    --------
    >>> q = Level()
    >>> q.set(10, 2); q.set(15, 2); q.set(20, 1)
    >>> q.value, q.area_at(30)
    (1, 30)
    """

    __slots__ = ("bins", "value", "_t", "_area", "_k", "_end", "_binned")

    def __init__(self, bins: Bins | None = None) -> None:
        self.bins = bins
        #: the level now
        self.value = 0
        self._t = 0  # since when it has held
        self._area = 0  # the integral up to _t
        self._k = 0  # the interval under way (with bins)
        self._end = bins.width if bins is not None else -1  # where it ends (-1: no bins)
        self._binned = 0  # the integral written to the bins so far

    def set(self, now: int, value: int) -> None:
        """The level is ``value`` from ``now`` on (``now`` never decreases)."""
        if value != self.value:
            self._integrate(now)
            self.value = value

    def _integrate(self, now: int) -> None:
        """Integrate up to ``now``; the intervals that ended by then go into the bins."""
        t = self._t
        if now > t:
            if 0 <= self._end <= now:
                self._bin(now)
            self._area += self.value * (now - t)
            self._t = now

    def _bin(self, now: int) -> None:
        """The interval under way ended at or before ``now`` (the level held since
        ``_t``): its amount, and that of every whole interval up to ``now``'s, go into
        the bins."""
        v, t, w, end = self.value, self._t, self.bins.width, self._end
        at_end = self._area + v * (end - t)
        self.bins.put(self._k, at_end - self._binned)
        k = now // w
        if v and k > self._k + 1:
            self.bins.add(end, k * w, v)
        self._k, self._end = k, (k + 1) * w
        self._binned = self._area + v * (k * w - t)

    def advance(self, now: int) -> None:
        """Integrate up to ``now`` (the bins are then complete up to it)."""
        self._integrate(now)
        if self._end >= 0 and self._area > self._binned:
            self.bins.put(self._k, self._area - self._binned)
            self._binned = self._area

    def area_at(self, now: int) -> int:
        """The integral from time 0 to ``now`` (not before the last change)."""
        return self._area + self.value * (now - self._t)
