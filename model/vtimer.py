"""A vCPU's one-shot virtual timer (Xen's singleshot timer, a local APIC in one-shot mode).

Lifecycle
---------
A :class:`VirtualTimer` is in one of four states:

``idle``      nothing programmed (:attr:`~VirtualTimer.deadline` and
              :attr:`~VirtualTimer.deferred` are None)
``armed``     a deadline (absolute cycles) is set; a SimPy event fires at or before it
``deferred``  the guest programmed it in the part of a run segment that a preemption cut
              off: the vCPU has run ahead of the simulation, and the programming takes
              effect only when the pCPU's payment of the run-ahead debt reaches it
``fired``     the deadline passed: the timer is idle again and the owner (the
              hypervisor) raised the interrupt

Transitions:

- :meth:`~VirtualTimer.program` ``(at, when)``: the guest programs the timer at local time
  ``at`` (the vCPU's own clock, which may be ahead of ``env.now``) for absolute time
  ``when``; a new deadline replaces the old one. The SimPy event is lazy: while one is
  pending at or before the new deadline no new event is made, and an event that comes
  early re-arms itself for the real deadline (a tickless guest pushing its deadline
  forward costs no event each time).
- :meth:`~VirtualTimer.defer` ``(now, paid, paying)``: the pCPU cut the segment at
  ``now``; a timer programmed after ``now`` (local time) is cancelled and kept as
  ``(offset into the debt, delay)``.
- :meth:`~VirtualTimer.paid` / :meth:`~VirtualTimer.reached`: the pCPU pays the debt;
  when the payment reaches the offset, the deferred programming is returned to be done.
- at a HLT, :meth:`~VirtualTimer.due` ``(local now)`` says whether the deadline has passed
  by the vCPU's own clock; if so :meth:`~VirtualTimer.expire` fires it there (a pending
  interrupt), and its SimPy event, when it comes, finds no deadline and does nothing.
- the SimPy event fires the timer through the callback given to
  :meth:`~VirtualTimer.attach` with the deadline.

Invariants: at most one of ``deadline`` and ``deferred`` is set; while ``deadline`` is
set, :attr:`~VirtualTimer.event` is a pending SimPy event at or before it (else the
wake-up would be lost: :meth:`~VirtualTimer.stranded` says so); a deadline never fires
twice.

Examples
--------
>>> import simpy
>>> env = simpy.Environment()
>>> fired = []
>>> t = VirtualTimer()
>>> t.attach(env, fired.append)
>>> t.program(at=0, when=100)
>>> t.program(at=10, when=150)  # pushed forward: no new SimPy event
>>> env.run(until=200)
>>> fired, t.deadline
([150], None)
"""

from __future__ import annotations

from collections.abc import Callable

import simpy

from .errors import PvsimError


class VirtualTimer:
    """One vCPU's one-shot timer: see the module docstring for its lifecycle.

    Attributes
    ----------
    deadline : int or None
        When it fires (absolute cycles); None when idle or deferred.
    prog : int
        When the current deadline was programmed (the vCPU's local time).
    deferred : tuple of (int, int) or None
        A programming cut off by a preemption: (offset into the run-ahead debt, delay).
    event : simpy.Event or None
        The pending SimPy event that fires the timer (at or before the deadline).
    event_at : int
        When :attr:`event` fires.
    """

    __slots__ = ("deadline", "prog", "deferred", "event", "event_at", "_env", "_fire_cb")

    def __init__(self) -> None:
        self.deadline: int | None = None
        self.prog = -1
        self.deferred: tuple[int, int] | None = None
        self.event: simpy.Event | None = None
        self.event_at = 0
        self._env: simpy.Environment | None = None
        self._fire_cb: Callable[[int], None] | None = None

    def attach(self, env: simpy.Environment, fire: Callable[[int], None]) -> None:
        """Bind the timer to the simulation: ``fire(deadline)`` is called when its SimPy
        event fires it (at ``env.now == deadline``)."""
        if self._env is not None:
            raise PvsimError("a virtual timer is attached to one simulation only")
        self._env, self._fire_cb = env, fire

    # --- programming ------------------------------------------------------------------
    def program(self, at: int, when: int) -> None:
        """Program the timer at local time ``at`` to fire at absolute time ``when``."""
        self.prog = at
        self.deadline = when
        if self.event is None or when < self.event_at:
            self._arm(when)

    def _arm(self, when: int) -> None:
        env = self._env
        ev = env.timeout(max(when - env.now, 0))
        self.event, self.event_at = ev, when
        ev.callbacks.append(lambda _ev: self._on_event(ev))

    def _on_event(self, ev: simpy.Event) -> None:
        if self.event is not ev:
            return  # superseded by an earlier event
        self.event = None
        deadline = self.deadline
        if deadline is None:
            return
        if deadline > self._env.now:
            self._arm(deadline)
            return
        self.deadline = None
        self._fire_cb(deadline)

    # --- at a halt ----------------------------------------------------------------------
    def due(self, now: int) -> bool:
        """Whether the deadline has passed by the local clock ``now`` (the vCPU's own,
        ahead of the simulation's while it runs)."""
        return self.deadline is not None and self.deadline <= now

    def expire(self) -> int:
        """Fire the timer now, by the vCPU's clock (it is :meth:`due`); returns the
        deadline. Its SimPy event, if any, finds no deadline when it comes."""
        deadline = self.deadline
        self.deadline = None
        return deadline

    # --- run-ahead: deferral while a segment's debt is paid ---------------------------
    def defer(self, now: int, paid: int, paying: int) -> None:
        """The pCPU cut a segment at ``now``, ``paid`` cycles of the vCPU's own into it,
        while paying ``paying`` cycles of earlier debt: a programming made in the part
        that has not elapsed takes effect only when the debt reaches it."""
        if self.deferred is not None and paying:
            off, delay = self.deferred
            self.deferred = (off - min(paid, paying), delay)
        elif self.deadline is not None and self.prog > now:
            self.deferred = (self.prog - now, self.deadline - self.prog)
            self.deadline = None  # cancelled until then

    def paid(self, paying: int) -> None:
        """A payment of ``paying`` cycles of debt elapsed without reaching the deferred
        programming."""
        if self.deferred is not None:
            off, delay = self.deferred
            self.deferred = (off - paying, delay)

    def reached(self, start: int, paying: int) -> tuple[int, int] | None:
        """A payment of ``paying`` cycles starts at ``start``: if it reaches the deferred
        programming, return it as ``(at, when)`` for :meth:`program` (it is no longer
        deferred); else None."""
        d = self.deferred
        if d is None or d[0] > paying:
            return None
        self.deferred = None
        off, delay = d
        return start + off, start + off + delay

    # --- questions ------------------------------------------------------------------------
    @property
    def pending(self) -> bool:
        """Whether a deadline is armed or deferred (something may still fire)."""
        return self.deadline is not None or self.deferred is not None

    def stranded(self, now: int) -> bool:
        """Whether an armed deadline can never fire: it passed, or no event will reach
        it (a broken invariant: the vCPU would sleep for ever)."""
        d = self.deadline
        return d is not None and (d < now or self.event is None or self.event_at > d)
