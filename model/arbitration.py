"""Arbitration policies: which waiting request a device serves next.

Each policy is a strategy class with ``push``, ``pop`` and ``__len__``;
``pop(now)`` may return None while requests wait (a rate cap holds them back),
and ``next_eligible(now)`` then says when to ask again. Adding a policy means
adding one class here and one line in :data:`POLICIES`.

Examples
--------
>>> from model.iorequest import IORequest
>>> q = WeightedFair({1: 2, 2: 1})
>>> for i in range(6):
...     q.push(IORequest(i, guest=1 + i % 2, device=0, size=4096, write=False, issued=0))
>>> [q.pop(0).guest for _ in range(6)]
[1, 1, 2, 1, 2, 2]
"""

from __future__ import annotations

from collections import deque

from .errors import ConfigError, UnknownNameError
from .iorequest import IORequest


class Policy:
    """Base class: a queue of waiting requests."""

    name = "base"

    def push(self, req: IORequest) -> None:
        raise NotImplementedError

    def pop(self, now: int) -> IORequest | None:
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError

    def next_eligible(self, now: int) -> int | None:
        """When a held-back request becomes eligible (None: nothing is held back)."""
        return None


class Fifo(Policy):
    """First come, first served across all guests."""

    name = "fifo"

    def __init__(self) -> None:
        self.q: deque[IORequest] = deque()

    def push(self, req):
        self.q.append(req)

    def pop(self, now):
        return self.q.popleft() if self.q else None

    def __len__(self):
        return len(self.q)


class _PerGuest(Policy):
    def __init__(self) -> None:
        self.queues: dict[int, deque[IORequest]] = {}
        self.n = 0

    def push(self, req):
        self.queues.setdefault(req.guest, deque()).append(req)
        self.n += 1

    def __len__(self):
        return self.n

    def _take(self, guest: int) -> IORequest:
        self.n -= 1
        return self.queues[guest].popleft()


class RoundRobin(_PerGuest):
    """One request per guest in turn (guests in order of first arrival)."""

    name = "round_robin"

    def __init__(self) -> None:
        super().__init__()
        self.turn = 0

    def pop(self, now):
        if not self.n:
            return None
        guests = list(self.queues)
        for k in range(len(guests)):
            g = guests[(self.turn + k) % len(guests)]
            if self.queues[g]:
                self.turn = (self.turn + k + 1) % len(guests)
                return self._take(g)
        return None


class WeightedFair(_PerGuest):
    """Deficit round robin (Shreedhar & Varghese 1995): each turn a guest's deficit grows
    by ``weight x quantum`` bytes and it sends requests while the deficit covers them,
    so backlogged guests share the device's bytes in proportion to their weights."""

    name = "weighted_fair"

    def __init__(self, weights: dict[int, float] | None = None, quantum: int = 4096) -> None:
        super().__init__()
        self.weights = weights or {}
        self.quantum = quantum
        self.deficit: dict[int, float] = {}
        self.active: deque[int] = deque()
        self._turn: int | None = None  # the guest whose turn it is (credited already)

    def push(self, req):
        if not self.queues.get(req.guest):
            self.active.append(req.guest)
            self.deficit.setdefault(req.guest, 0.0)
        super().push(req)

    def pop(self, now):
        while self.active:
            g = self.active[0]
            q = self.queues[g]
            if self._turn != g:  # the guest's turn begins: credit its quantum
                self._turn = g
                self.deficit[g] += self.weights.get(g, 1.0) * self.quantum
            if self.deficit[g] >= q[0].size:
                self.deficit[g] -= q[0].size
                req = self._take(g)
                if not q:  # an idle guest keeps no credit
                    self.deficit[g] = 0.0
                    self.active.popleft()
                    self._turn = None
                return req
            self.active.rotate(-1)  # the turn ends with the deficit carried over
            self._turn = None
        return None


class Priority(_PerGuest):
    """Strict priority: the waiting request of the highest-priority guest goes first
    (higher number wins); FIFO within a guest."""

    name = "priority"

    def __init__(self, priorities: dict[int, int] | None = None) -> None:
        super().__init__()
        self.priorities = priorities or {}

    def pop(self, now):
        best = None
        for g, q in self.queues.items():
            if q and (best is None or self.priorities.get(g, 0) > self.priorities.get(best, 0)):
                best = g
        return None if best is None else self._take(best)


class TokenBucket(Policy):
    """Per-guest rate caps around another policy: a guest's request is released only
    when its buckets hold a token for it (IOPS) and its bytes (bytes/s).

    Parameters
    ----------
    inner : Policy
        The policy that orders released requests.
    caps : dict
        guest -> (iops or None, bytes_per_s or None).
    freq_hz : float
        Cycles per second of the simulation clock.
    burst_s : float
        Bucket depth, as seconds of the rate.
    """

    name = "token_bucket"

    def __init__(self, inner: Policy, caps: dict[int, tuple[float | None, float | None]],
                 freq_hz: float, burst_s: float = 0.01) -> None:
        self.inner = inner
        self.freq = freq_hz
        self.held: dict[int, deque[IORequest]] = {}
        self.buckets: dict[int, list[float]] = {}  # guest -> [iops tokens, byte tokens, t]
        for g, (iops, bps) in caps.items():
            if (iops is not None and iops <= 0) or (bps is not None and bps <= 0):
                raise ConfigError(f"guest {g}: rate caps must be positive, got {iops!r}, {bps!r}")
        self.caps = caps
        self.burst = burst_s
        self.n_held = 0

    def _refill(self, g: int, now: int) -> list[float]:
        iops, bps = self.caps[g]
        b = self.buckets.get(g)
        if b is None:  # a new bucket starts full
            b = self.buckets[g] = [(iops or 0) * self.burst, (bps or 0) * self.burst, float(now)]
        dt = (now - b[2]) / self.freq
        if iops:
            b[0] = min(b[0] + dt * iops, iops * self.burst)
        if bps:
            b[1] = min(b[1] + dt * bps, bps * self.burst)
        b[2] = float(now)
        return b

    def _release(self, now: int) -> None:
        # A request is released while the buckets are not in debt; it then takes its
        # tokens, possibly into debt (a request larger than the bucket still passes).
        for g, q in self.held.items():
            if not q:
                continue
            b = self._refill(g, now)
            iops, bps = self.caps[g]
            while q and (not iops or b[0] > 0) and (not bps or b[1] > 0):
                req = q.popleft()
                if iops:
                    b[0] -= 1.0
                if bps:
                    b[1] -= req.size
                self.n_held -= 1
                self.inner.push(req)

    def push(self, req):
        if req.guest in self.caps:
            self.held.setdefault(req.guest, deque()).append(req)
            self.n_held += 1
        else:
            self.inner.push(req)

    def pop(self, now):
        self._release(now)
        return self.inner.pop(now)

    def __len__(self):
        return len(self.inner) + self.n_held

    def next_eligible(self, now):
        best = None
        for g, q in self.held.items():
            if not q:
                continue
            b = self._refill(g, now)
            iops, bps = self.caps[g]
            wait = 0.0
            if iops and b[0] <= 0:
                wait = max(wait, -b[0] / iops)
            if bps and b[1] <= 0:
                wait = max(wait, -b[1] / bps)
            t = now + int(wait * self.freq) + 1
            best = t if best is None else min(best, t)
        return best


POLICIES = {"fifo": Fifo, "round_robin": RoundRobin, "weighted_fair": WeightedFair,
            "priority": Priority}


def make_policy(name: str, **params) -> Policy:
    """A policy by name: ``fifo``, ``round_robin``, ``weighted_fair`` or ``priority``."""
    try:
        return POLICIES[name](**params)
    except KeyError:
        raise UnknownNameError("arbitration policy", name, sorted(POLICIES)) from None
