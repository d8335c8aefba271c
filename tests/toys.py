"""Components defined outside the package, as a user would write them (issue 11): an
arbitration policy with a per-guest parameter and an I/O path, one class each. The tests
register them (tests/test_toy_policy.py, tests/test_extension_points.py)."""

from __future__ import annotations

from typing import ClassVar

from model.io.arbitration import PerGuest, Policy
from model.io.paths import DirectPath
from model.io.requests import IORequest


class Rank(Policy):
    """Strict priority by rank: the waiting request of the guest with the lowest rank
    goes first (unlisted guests rank 0); first come, first served within a rank."""

    name = "rank"
    params: ClassVar[dict] = {
        "ranks": PerGuest(int, "guest name -> rank (lower goes first; unlisted guests 0)")
    }

    def __init__(self, ranks: dict[int, int] | None = None) -> None:
        self.ranks = ranks or {}
        self.waiting: list[IORequest] = []

    def push(self, req: IORequest) -> None:
        self.waiting.append(req)

    def pop(self, now: int) -> IORequest | None:
        if not self.waiting:
            return None
        best = min(
            range(len(self.waiting)), key=lambda i: (self.ranks.get(self.waiting[i].guest, 0), i)
        )
        return self.waiting.pop(best)

    def __len__(self) -> int:
        return len(self.waiting)


DELAY = 30_000  # cycles: 10 us at 3 GHz


class DelayedPath(DirectPath):
    """The guest's driver programs the device, but every request reaches it a fixed
    time later (an interposer in the way, say)."""

    name = "delayed"

    def on_submit(self, io, att, vcpu, req):
        req.stamp("ring", io.env.now)
        io.env.timeout(DELAY).callbacks.append(lambda _ev: att.device.submit(req))
        return None, False
