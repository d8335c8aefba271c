"""The simulation's clock: SimPy's environment, counting its events, and able to move
time forward without an event when nothing else is due meanwhile.

A pCPU waits out each run segment of a vCPU (:mod:`model.hypervisor`). When no other
event is due before the segment ends, nothing can kick the pCPU or observe the host in
between, so waiting for a timeout is the same as moving the clock to the segment's end
at once: :meth:`Environment.advance` does that, saving the timeout, its place in the
event queue and the process's resumption. Which events happen, in which order and at
which times, is unchanged (events scheduled afterwards keep their relative order); only
the count of events scheduled falls.

Examples
--------
>>> env = Environment()
>>> _ = env.timeout(10)
>>> env.advance(9), env.now           # nothing is due until 9: the clock moves there
(True, 9)
>>> env.advance(10), env.now          # the timeout at 10 is due then: it must run first
(False, 9)
>>> env.run(); env.now, env.scheduled
(10, 1)
"""

from __future__ import annotations

from collections.abc import Callable
from heapq import heappush

import simpy
from simpy.events import NORMAL

__all__ = ["Environment"]


class _Call:
    """The least an event in SimPy's queue needs: its callbacks, and that it succeeded
    (:meth:`Environment.call_later`)."""

    __slots__ = ("callbacks", "_ok")

    def __init__(self, callback: Callable) -> None:
        self.callbacks = [callback]
        self._ok = True


class Environment(simpy.Environment):
    """SimPy's environment, counting the events it schedules (:attr:`scheduled`, the
    engine's ``events`` figure), with :meth:`advance`.

    Examples
    --------
    >>> env = Environment()
    >>> _ = env.timeout(5); env.run()
    >>> env.scheduled
    1
    """

    def __init__(self, initial_time: int = 0) -> None:
        super().__init__(initial_time)
        #: events scheduled so far
        self.scheduled = 0

    def schedule(self, event: simpy.Event, priority: int = NORMAL, delay: int = 0) -> None:
        self.scheduled += 1
        super().schedule(event, priority, delay)

    def call_later(self, delay: int, callback: Callable) -> _Call:
        """Call ``callback(event)`` after ``delay``, as if it were the callback of a
        ``timeout(delay)``: the same place in the event queue (the same order among
        events due at the same time), without making a :class:`simpy.Timeout`. Returns
        the event (the argument the callback gets). Like :meth:`advance`, it relies on
        SimPy's event queue.

        Examples
        --------
        >>> env, seen = Environment(), []
        >>> _ = env.call_later(5, lambda _e: seen.append(env.now))
        >>> env.run(); seen, env.scheduled
        ([5], 1)
        """
        if delay < 0:
            raise ValueError(f"negative delay {delay}")
        self.scheduled += 1
        ev = _Call(callback)
        heappush(self._queue, (self._now + delay, NORMAL, next(self._eid), ev))
        return ev

    def advance(self, to: int) -> bool:
        """Move the clock to ``to`` (not before now) if no event is due until then, ``to``
        included (one due at ``to`` itself was scheduled first, so it must run first);
        returns whether the clock moved. The caller goes on as if a timeout it had
        yielded had fired at ``to``. It relies on SimPy's event queue (``_queue``, a heap
        of ``(time, priority, id, event)``) and clock (``_now``): pyproject.toml pins
        simpy below 5, and tests/test_clock.py checks runs with and without it agree."""
        if to < self._now:
            raise ValueError(f"the clock does not move back (from {self._now} to {to})")
        queue = self._queue
        if queue and queue[0][0] <= to:
            return False
        self._now = to
        return True


def run_to(env: simpy.Environment, limit: int, progress=None) -> None:
    """Run ``env`` until ``limit``; with ``progress``, stop a hundred times on the way and
    call it with the fraction done (both fidelity levels' hosts run this way).

    Examples
    --------
    >>> env, done = Environment(), []
    >>> run_to(env, 200, done.append)
    >>> env.now, len(done), done[-1]
    (200, 100, 1.0)
    """
    if progress is None:
        env.run(until=limit)
        return
    for k in range(1, 101):
        until = limit * k // 100
        if until > env.now:
            env.run(until=until)
        progress(k / 100)
