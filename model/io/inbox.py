"""The driver domain's backend inbox: the work the I/O system hands its backends.

Items arrive (requests taken from the rings, register accesses to emulate, device
completions) and a backend vCPU takes all that is pending when it polls; it then
works through that batch while new items gather for the next poll. The inbox, owned
by the I/O system, holds both: what is pending, and the batch each vCPU took.

Examples
--------
>>> box = BackendInbox()
>>> box.put(Work.COMPLETE, "req0", "att")
>>> len(box), box.take("v0"), len(box)
(1, [(<Work.COMPLETE: 4>, 'req0', 'att', None)], 0)
>>> box.taken("v0"), box.taken("v1")
([(<Work.COMPLETE: 4>, 'req0', 'att', None)], [])
"""

from __future__ import annotations

from enum import Enum
from typing import Any


class Work(Enum):
    """What a backend item asks of the driver domain."""

    REQUEST = 1  # a request taken from a ring: hand it to the real device
    ACCESS = 2  # an emulated register access while a request is submitted
    STATUS = 3  # an emulated status access of the guest's interrupt handler
    COMPLETE = 4  # the device finished a request: answer the guest


#: (kind, request or None, attachment, the vCPU an access is for or None)
Item = tuple[Work, Any, Any, Any]


class BackendInbox:
    """Pending backend work and, per backend vCPU, the batch it took at its last poll."""

    __slots__ = ("pending", "_taken")

    def __init__(self) -> None:
        self.pending: list[Item] = []
        self._taken: dict[Any, list[Item]] = {}

    def put(self, kind: Work, req: Any, att: Any, vcpu: Any = None) -> None:
        """Add an item for the next poll (``vcpu``: the one an access is for)."""
        self.pending.append((kind, req, att, vcpu))

    def take(self, vcpu: Any) -> list[Item]:
        """``vcpu`` takes every pending item (its batch, also :meth:`taken`)."""
        batch, self.pending = self.pending, []
        self._taken[vcpu] = batch
        return batch

    def taken(self, vcpu: Any) -> list[Item]:
        """The batch ``vcpu`` took at its last poll (empty before its first)."""
        return self._taken.get(vcpu, [])

    def __len__(self) -> int:
        return len(self.pending)

    def __bool__(self) -> bool:
        return bool(self.pending)
