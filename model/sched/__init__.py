"""vCPU schedulers: replaceable strategies behind one interface (:class:`Scheduler`).

The schedulers scenario files may name (``host.scheduler``) are registered in
:data:`SCHEDULERS`, each as a :class:`SchedulerKind`: its class and which of the
scenario's host fields give its parameters.

Examples
--------
>>> SCHEDULERS.names()
('credit', 'round_robin')
>>> SCHEDULERS["round_robin"].host_fields
{'quantum_ms': 'timeslice_ms'}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import UnknownNameError
from ..registry import Registry
from .base import Scheduler
from .credit import CreditScheduler
from .rr import RoundRobinScheduler


@dataclass(frozen=True)
class SchedulerKind:
    """A registered scheduler.

    Attributes
    ----------
    cls : type[Scheduler]
        The scheduler; its keyword parameters have defaults.
    host_fields : dict
        Its keyword parameter -> the field of a scenario's ``host`` that gives it.
    """

    cls: type[Scheduler]
    host_fields: dict[str, str] = field(default_factory=dict)

    def from_spec(self, host: Any) -> Scheduler:
        """The scheduler of a scenario's host (a :class:`model.scenario.format.HostSpec`).

        Examples
        --------
        >>> from model.scenario import parse_scenario
        >>> s = parse_scenario("name: t\\nhost: {scheduler: round_robin, timeslice_ms: 5}\\n"
        ...                    "guests: [{name: a, workload: {profile: spin}}]")
        >>> SCHEDULERS[s.host.scheduler].from_spec(s.host).quantum_ms
        5.0
        """
        return self.cls(**{p: getattr(host, f) for p, f in self.host_fields.items()})


#: The schedulers by name.
SCHEDULERS: Registry[SchedulerKind] = Registry("scheduler")
SCHEDULERS.register(
    "credit",
    SchedulerKind(
        CreditScheduler, {"timeslice_ms": "timeslice_ms", "ratelimit_us": "ratelimit_us"}
    ),
)
SCHEDULERS.register(
    "round_robin", SchedulerKind(RoundRobinScheduler, {"quantum_ms": "timeslice_ms"})
)


def make_scheduler(name: str, **params: Any) -> Scheduler:
    """Build a registered scheduler by name (``credit``, ``round_robin``, ...) with its
    keyword parameters.

    Examples
    --------
    >>> make_scheduler("credit", timeslice_ms=10).timeslice_ms
    10
    """
    if name not in SCHEDULERS:
        raise UnknownNameError("scheduler", name, sorted(SCHEDULERS.names()))
    return SCHEDULERS[name].cls(**params)


__all__ = [
    "Scheduler",
    "CreditScheduler",
    "RoundRobinScheduler",
    "SCHEDULERS",
    "SchedulerKind",
    "make_scheduler",
]
