"""vCPU schedulers: replaceable strategies behind one interface (:class:`Scheduler`)."""

from __future__ import annotations

from ..errors import UnknownNameError
from .base import Scheduler
from .credit import CreditScheduler
from .rr import RoundRobinScheduler

SCHEDULERS: dict[str, type[Scheduler]] = {
    "credit": CreditScheduler,
    "round_robin": RoundRobinScheduler,
}


def make_scheduler(name: str, **params) -> Scheduler:
    """Build a scheduler by name (``credit`` or ``round_robin``) with its keyword parameters.

    Examples
    --------
    >>> make_scheduler("credit", timeslice_ms=10).timeslice_ms
    10
    """
    try:
        cls = SCHEDULERS[name]
    except KeyError:
        raise UnknownNameError("scheduler", name, sorted(SCHEDULERS)) from None
    return cls(**params)


__all__ = ["Scheduler", "CreditScheduler", "RoundRobinScheduler", "SCHEDULERS", "make_scheduler"]
