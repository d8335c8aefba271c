"""Shared I/O rings with notification suppression (Xen ``io/ring.h``, virtio EVENT_IDX).

A ring has a bounded number of request slots. The producer publishes requests and
notifies the consumer only if it crossed the consumer's event index: while the
consumer is busy (it has not re-armed its index), no notification is sent. Before
sleeping, the consumer re-arms (``req_event = req_cons + 1``) and checks again
(``RING_FINAL_CHECK_FOR_REQUESTS``), so no request is ever left without a
notification. Responses flow back the same way.

Examples
--------
>>> r = Ring(slots=2)
>>> r.push_request("a")  # the consumer is waiting: notify
True
>>> r.push_request("b")  # it has not consumed "a" yet: no second notification
False
>>> r.full
True
>>> r.take_requests()
['a', 'b']
>>> r.final_check_requests()  # nothing more: the consumer may sleep
False
"""

from __future__ import annotations

from collections import deque


class Ring:
    """A request/response ring of ``slots`` entries (a slot is freed by its response)."""

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self.requests: deque = deque()
        self.responses: deque = deque()
        self.req_prod = self.req_cons = 0
        self.rsp_prod = self.rsp_cons = 0
        self.req_event = 1
        self.rsp_event = 1
        self.in_flight = 0  # slots taken: published and not yet answered and consumed

    @property
    def full(self) -> bool:
        return self.in_flight >= self.slots

    @staticmethod
    def _crossed(new: int, old: int, event: int) -> bool:
        return (new - event) < (new - old)

    def push_request(self, item) -> bool:
        """Publish a request; True if the consumer must be notified."""
        if self.full:
            raise OverflowError("ring full: the producer must wait for a free slot")
        old = self.req_prod
        self.requests.append(item)
        self.req_prod += 1
        self.in_flight += 1
        return self._crossed(self.req_prod, old, self.req_event)

    def take_requests(self) -> list:
        """The consumer takes every published request."""
        out = list(self.requests)
        self.requests.clear()
        self.req_cons = self.req_prod
        return out

    def final_check_requests(self) -> bool:
        """Re-arm the request event and report whether requests arrived meanwhile."""
        self.req_event = self.req_cons + 1
        return bool(self.requests)

    def push_response(self, item) -> bool:
        """Publish a response; True if the frontend must be notified."""
        old = self.rsp_prod
        self.responses.append(item)
        self.rsp_prod += 1
        return self._crossed(self.rsp_prod, old, self.rsp_event)

    def take_responses(self) -> list:
        """The frontend takes every response; those of its requests free their slots. A
        packet from the network (an item whose ``inbound`` is true) came in a buffer of
        the receive ring, which the frontend keeps filled (netfront posts its rx buffers in
        advance), so it takes no request slot: rx ring exhaustion is not modeled."""
        out = list(self.responses)
        self.responses.clear()
        self.rsp_cons = self.rsp_prod
        self.in_flight -= sum(1 for r in out if not getattr(r, "inbound", False))
        return out

    def final_check_responses(self) -> bool:
        self.rsp_event = self.rsp_cons + 1
        return bool(self.responses)
