"""Request arrivals at a server: open-loop sources and closed-loop clients.

An open-loop source sends requests whatever the server does, as the users of a web
service do: ``poisson`` (exponential gaps), ``deterministic`` (even gaps), ``bursty``
(a two-state Markov-modulated Poisson process: on and off periods with exponentially
distributed lengths and a rate in each) and ``trace`` (arrival times replayed from a CSV
file, :mod:`model.app.trace`). ``closed`` is the other case: ``users`` clients, each
sending its next request a think time after the answer to its last, so the load falls
as the server slows.

Each kind is a parameter model (validated like the rest of a scenario, registered in
:data:`ARRIVALS`); ``arrivals:`` of a server workload is one of them, told apart by
``kind``. An open source yields ``(gap in seconds, request type, size)`` from the
server's own random stream (:meth:`OpenArrivals.gaps`).

Examples
--------
>>> import numpy as np
>>> src = Poisson(rate_per_s=1000.0)
>>> gaps = [g for g, _, _ in itertools.islice(src.gaps(np.random.default_rng(1)), 20000)]
>>> round(float(np.mean(gaps)) * 1e3, 2), src.mean_rate_per_s()
(1.0, 1000.0)
>>> [round(g, 4) for g, _, _ in itertools.islice(Deterministic(rate_per_s=250).gaps(None), 3)]
[0.004, 0.004, 0.004]
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, ClassVar, Literal, Union

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..registry import Registry

#: The directory relative trace paths are resolved against while a scenario is validated
#: (the scenario file's; set by :func:`model.scenario.format.parse_scenario`).
SCENARIO_DIR: ContextVar[Path | None] = ContextVar("scenario_dir", default=None)

#: Set while a results directory's resolved scenario is read (:func:`as_recorded`): a
#: trace's recorded path and SHA-256 are taken as they are, not checked against the file
#: (which may have changed or moved since the run).
_AS_RECORDED: ContextVar[bool] = ContextVar("traces_as_recorded", default=False)


@contextmanager
def as_recorded() -> Iterator[None]:
    """Validate scenarios as a run recorded them: traces are not read again."""
    token = _AS_RECORDED.set(True)
    try:
        yield
    finally:
        _AS_RECORDED.reset(token)


#: An arrival's request carries no size of its own (the workload's size applies).
NO_SIZE = -1


class ArrivalSpec(BaseModel):
    """Base of the arrival kinds: unknown keys are errors, numbers are finite."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False,
                              use_attribute_docstrings=True)
    #: Whether arrivals come whatever the server does (else they wait for answers).
    open: ClassVar[bool] = True

    def mean_rate_per_s(self) -> float | None:
        """The long-run arrival rate (requests per second), if it is known in advance."""
        return None

    def sizes(self) -> frozenset[int]:
        """The request sizes the source gives (``NO_SIZE``: the workload's own)."""
        return frozenset({NO_SIZE})


class OpenArrivals(ArrivalSpec):
    """An open-loop source."""

    def gaps(self, rng: np.random.Generator) -> Iterator[tuple[float, int, int]]:
        """``(seconds since the previous arrival, type id, size or NO_SIZE)`` of each
        request, the first from the run's start; the stream may end."""
        raise NotImplementedError


class Poisson(OpenArrivals):
    """Poisson arrivals: independent exponential gaps of mean ``1 / rate_per_s``."""

    kind: Literal["poisson"] = "poisson"
    """random arrivals at a mean rate (open loop)"""
    rate_per_s: float = Field(gt=0, le=1e7)
    """mean arrival rate, requests per second"""

    def gaps(self, rng):
        scale = 1.0 / self.rate_per_s
        while True:
            for g in rng.exponential(scale, 1024).tolist():
                yield g, 0, NO_SIZE

    def mean_rate_per_s(self):
        return self.rate_per_s


class Deterministic(OpenArrivals):
    """Evenly spaced arrivals, one every ``1 / rate_per_s`` (the first at that time)."""

    kind: Literal["deterministic"] = "deterministic"
    """arrivals at a fixed interval (open loop)"""
    rate_per_s: float = Field(gt=0, le=1e7)
    """arrival rate, requests per second"""

    def gaps(self, rng):
        return itertools.repeat((1.0 / self.rate_per_s, 0, NO_SIZE))

    def mean_rate_per_s(self):
        return self.rate_per_s


class Bursty(OpenArrivals):
    """A two-state Markov-modulated Poisson process (MMPP-2): on periods of mean length
    ``mean_on_ms`` with Poisson arrivals at ``rate_per_s``, off periods of mean length
    ``mean_off_ms`` at ``off_rate_per_s`` (0: an on/off source); both lengths are
    exponential. The run starts in an on period."""

    kind: Literal["bursty"] = "bursty"
    """on/off bursts of Poisson arrivals (open loop)"""
    rate_per_s: float = Field(gt=0, le=1e7)
    """arrival rate during an on period, requests per second"""
    off_rate_per_s: float = Field(0.0, ge=0, le=1e7)
    """arrival rate during an off period, requests per second"""
    mean_on_ms: float = Field(gt=0, le=1e7)
    """mean length of an on period, milliseconds"""
    mean_off_ms: float = Field(gt=0, le=1e7)
    """mean length of an off period, milliseconds"""

    def gaps(self, rng):
        rates = (self.rate_per_s, self.off_rate_per_s)
        means = (self.mean_on_ms / 1e3, self.mean_off_ms / 1e3)
        state, since = 0, 0.0  # time since the last arrival
        left = rng.exponential(means[0])  # of the current period
        while True:
            rate = rates[state]
            gap = rng.exponential(1.0 / rate) if rate > 0 else np.inf
            if gap <= left:  # memoryless: a new gap is drawn in each period
                left -= gap
                yield since + gap, 0, NO_SIZE
                since = 0.0
            else:
                since += left
                state = 1 - state
                left = rng.exponential(means[state])

    def mean_rate_per_s(self):
        on, off = self.mean_on_ms, self.mean_off_ms
        return (self.rate_per_s * on + self.off_rate_per_s * off) / (on + off)


class TraceArrivals(OpenArrivals):
    """Arrivals replayed from a CSV trace (:mod:`model.app.trace` has the format):
    arrival times relative to the run's start, optional request types and sizes. The
    file is read and checked when the scenario is validated; a path is relative to the
    scenario file's directory. ``sha256`` pins the file's content: it is filled in when
    left out, and a file changed since is refused."""

    kind: Literal["trace"] = "trace"
    """arrivals replayed from a trace file (open loop)"""
    file: str = Field(min_length=1, max_length=4096)
    """the trace file (CSV; relative to the scenario file's directory)"""
    sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")
    """the file's SHA-256 (filled in when the scenario is validated)"""

    @model_validator(mode="before")
    @classmethod
    def _read(cls, data: object) -> object:
        if not isinstance(data, dict) or not isinstance(data.get("file"), str):
            return data
        if _AS_RECORDED.get() and data.get("sha256"):
            return data
        from .trace import cached_trace

        path = Path(os.path.expanduser(data["file"]))
        if not path.is_absolute():
            base = SCENARIO_DIR.get()
            path = (base if base is not None else Path.cwd()) / path
        trace = cached_trace(path, data.get("sha256"))
        return {**data, "file": str(path.resolve()), "sha256": trace.digest}

    def trace(self):
        """The trace (:class:`model.app.trace.Trace`)."""
        from .trace import cached_trace

        return cached_trace(self.file, self.sha256)

    def gaps(self, rng):
        t = self.trace()
        times = t.times_s.tolist()
        prev = 0.0
        for at, typ, size in zip(times, t.types.tolist(), t.sizes.tolist(), strict=True):
            yield at - prev, typ, size
            prev = at

    def mean_rate_per_s(self):
        t = self.trace()
        return len(t) / t.duration_s if t.duration_s > 0 else None

    def sizes(self):
        return frozenset(self.trace().sizes.tolist()) or frozenset({NO_SIZE})


class Closed(ArrivalSpec):
    """Closed-loop clients: ``users`` users, each sending a request, waiting for its
    answer (or its drop), thinking an exponential time of mean ``think_ms``, and sending
    the next; each user's first request comes after a first think time."""

    open: ClassVar[bool] = False
    kind: Literal["closed"] = "closed"
    """users who send a request, wait for the answer and think (closed loop)"""
    users: int = Field(gt=0, le=100_000)
    """concurrent users"""
    think_ms: float = Field(ge=0, le=1e7)
    """mean think time between an answer and the user's next request, milliseconds"""


#: The arrival kinds, by the ``kind`` a scenario gives.
ARRIVALS: Registry[type[ArrivalSpec]] = Registry("arrival kind")
for _kind in (Poisson, Deterministic, Bursty, TraceArrivals, Closed):
    ARRIVALS.register(_kind.model_fields["kind"].default, _kind)

#: The ``arrivals:`` field of a server workload: one kind, told apart by ``kind``.
Arrivals = Annotated[Union[tuple(ARRIVALS.values())], Field(discriminator="kind")]  # noqa: UP007


def forget_moved_digests(before: dict, after: dict) -> None:
    """Drop the pinned SHA-256 of every trace whose file ``after`` (a scenario's data with
    overrides applied) names differently from ``before``: the new file is read and pinned
    when ``after`` is validated.

    Examples
    --------
    >>> arr = lambda f: {"guests": [{"name": "w", "workload": {"params": {"arrivals": {
    ...     "kind": "trace", "file": f, "sha256": "0" * 64}}}}]}
    >>> new = arr("b.csv"); forget_moved_digests(arr("a.csv"), new)
    >>> "sha256" in new["guests"][0]["workload"]["params"]["arrivals"]
    False
    """
    def arrivals(data: dict) -> dict[object, dict]:
        out = {}
        for g in data.get("guests") or []:
            a = g.get("workload", {}).get("params", {}).get("arrivals") if isinstance(
                g, dict) and isinstance(g.get("workload"), dict) and isinstance(
                g["workload"].get("params"), dict) else None
            if isinstance(a, dict):
                out[g.get("name")] = a
        return out

    old = arrivals(before)
    for name, a in arrivals(after).items():
        if "sha256" in a and old.get(name, {}).get("file") != a.get("file"):
            del a["sha256"]


def without_trace_paths(data: dict) -> dict:
    """A scenario's data with every pinned trace named by its content (its SHA-256) alone,
    not by where its file is: the identity of what a run computes, the same on every
    machine and checkout (``data`` is changed in place and returned).

    Examples
    --------
    >>> d = {"guests": [{"name": "w", "workload": {"params": {"arrivals": {
    ...     "kind": "trace", "file": "/home/me/t.csv", "sha256": "0" * 64}}}}]}
    >>> without_trace_paths(d)["guests"][0]["workload"]["params"]["arrivals"]["file"]
    '(sha256 pinned)'
    """
    for g in data.get("guests") or []:
        a = g.get("workload", {}).get("params", {}).get("arrivals")
        if isinstance(a, dict) and a.get("sha256"):
            a["file"] = "(sha256 pinned)"
    return data
