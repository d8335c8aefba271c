"""Arbitration policies: which waiting request a device serves next.

Each policy is a strategy class with ``push``, ``pop`` and ``__len__``;
``pop(now)`` may return None while requests wait (a rate cap holds them back),
and ``next_eligible(now)`` then says when to ask again.

A policy declares the scenario parameters it takes in :attr:`Policy.params`: each
becomes a field of a device in scenario files (``host.devices.NAME.KEY``), validated,
shown by ``pvsim schema``, and passed to the policy's constructor by
:meth:`Policy.from_spec`. A :class:`PerGuest` parameter has a value per guest entry:
scenario files key it by guest name, the policy receives it by domain id (the builder
resolves names in one place). Adding a policy is one class and one registration in
:data:`POLICIES`, which may be done outside the package.

Examples
--------
>>> from model.io.requests import IORequest
>>> q = WeightedFair({1: 2, 2: 1})
>>> for i in range(6):
...     q.push(IORequest(i, guest=1 + i % 2, device=0, size=4096, write=False, issued=0))
>>> [q.pop(0).guest for _ in range(6)]
[1, 1, 2, 1, 2, 2]
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from pydantic import Field, Strict

from ..errors import ConfigError, UnknownNameError
from ..registry import Registry
from .requests import IORequest

if TYPE_CHECKING:
    from ..scenario.build import BuildContext


@dataclass(frozen=True)
class PerGuest:
    """A parameter with one value per guest entry of a scenario.

    Scenario files give it as a mapping ``guest name -> value`` (each name checked against
    the guests; guests left out get the policy's own default); the policy receives
    ``domain id -> value`` for every replica of each named guest.

    Attributes
    ----------
    value : type
        The type of each value (a pydantic type: ``int``, ``Annotated[float, Field(ge=0)]``).
    description : str
        What it means, for ``pvsim schema`` and error messages.

    Examples
    --------
    >>> Priority.params["priorities"].value
    <class 'int'>
    """

    value: Any
    description: str


#: A parameter a component declares for scenario files: a :class:`PerGuest`, or a
#: pydantic field definition ``(type, FieldInfo)`` such as ``(int, Field(4, ge=1))``.
SpecParam = PerGuest | tuple


class Policy:
    """Base class: a queue of waiting requests.

    Attributes
    ----------
    params : dict
        The scenario parameters of the policy, by key (see the module docstring), in the
        order of its constructor's keywords of the same names.
    """

    name = "base"
    params: ClassVar[dict[str, SpecParam]] = {}

    @classmethod
    def from_spec(cls, spec: Any, ctx: BuildContext) -> Policy:
        """The policy for a device of a scenario: its constructor called with the
        device's value of each of :attr:`params` (per-guest ones by domain id).

        Examples
        --------
        >>> from model.scenario import parse_scenario
        >>> from model.scenario import build_host
        >>> s = parse_scenario("name: t\\nhost: {devices: {d: {kind: ssd, arbitration: priority, "
        ...                    "priorities: {b: 5}}}}\\nguests: [{name: a, workload: {profile: "
        ...                    "spin}}, {name: b, count: 2, workload: {profile: spin}}]")
        >>> build_host(s).io.devices["d"].policy.priorities
        {2: 5, 3: 5}
        """
        return cls(
            **{
                key: ctx.per_domain(getattr(spec, key))
                if isinstance(p, PerGuest)
                else getattr(spec, key)
                for key, p in cls.params.items()
            }
        )

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

    @classmethod
    def from_spec(cls, spec: Any, ctx: BuildContext) -> WeightedFair:
        """Weighted by the guests' CPU weights (``guests[i].weight``)."""
        return cls(ctx.weights)

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
    params: ClassVar[dict[str, SpecParam]] = {
        "priorities": PerGuest(
            int,
            ("priority arbitration: guest name -> priority (higher goes first; unlisted guests 0)"),
        )
    }

    def __init__(self, priorities: dict[int, int] | None = None) -> None:
        super().__init__()
        self.priorities = priorities or {}

    def pop(self, now):
        best = None
        for g, q in self.queues.items():
            if q and (best is None or self.priorities.get(g, 0) > self.priorities.get(best, 0)):
                best = g
        return None if best is None else self._take(best)


IopsCap = Annotated[float, Field(ge=1e-3, le=1e9, description="requests per second")]
BytesCap = Annotated[float, Field(ge=1.0, le=1e13, description="bytes per second")]


class TokenBucket(Policy):
    """Per-guest rate caps around another policy: a guest's request is released only
    when its buckets hold a token for it (IOPS) and its bytes (bytes/s). Any device of a
    scenario may have caps, whatever its policy (:meth:`wrap`).

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
    params: ClassVar[dict[str, SpecParam]] = {
        "caps": PerGuest(
            Annotated[tuple[IopsCap | None, BytesCap | None], Strict(False)],  # a YAML list
            "guest name -> [IOPS, bytes/s] rate caps, null for no cap on one",
        )
    }

    @classmethod
    def wrap(cls, inner: Policy, spec: Any, ctx: BuildContext) -> Policy:
        """``inner`` with the rate caps of a scenario's device, if it has any.

        Examples
        --------
        >>> from types import SimpleNamespace
        >>> from model.scenario.build import BuildContext
        >>> ctx = BuildContext({"a": (1,)}, {1: 256}, 1e9)
        >>> capped = SimpleNamespace(caps={"a": (100.0, None)})
        >>> TokenBucket.wrap(Fifo(), capped, ctx).caps
        {1: (100.0, None)}
        >>> type(TokenBucket.wrap(Fifo(), SimpleNamespace(caps={}), ctx)).__name__
        'Fifo'
        """
        if not spec.caps:
            return inner
        return cls(inner, ctx.per_domain(spec.caps), freq_hz=ctx.freq_hz)

    def __init__(
        self,
        inner: Policy,
        caps: dict[int, tuple[float | None, float | None]],
        freq_hz: float,
        burst_s: float = 0.01,
    ) -> None:
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


#: The arbitration policies scenario files may name (``host.devices.NAME.arbitration``).
POLICIES: Registry[type[Policy]] = Registry("arbitration policy")
POLICIES.register("fifo", Fifo)
POLICIES.register("round_robin", RoundRobin)
POLICIES.register("weighted_fair", WeightedFair)
POLICIES.register("priority", Priority)


def make_policy(name: str, **params: Any) -> Policy:
    """A registered policy by name (``fifo``, ``round_robin``, ``weighted_fair``,
    ``priority``, ...) with its keyword parameters.

    Examples
    --------
    >>> make_policy("priority", priorities={1: 2}).priorities
    {1: 2}
    """
    if name not in POLICIES:
        raise UnknownNameError("arbitration policy", name, sorted(POLICIES.names()))
    return POLICIES[name](**params)
