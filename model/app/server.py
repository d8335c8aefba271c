"""A server in a guest: an accept queue, and a pool of worker processes on its vCPUs.

Requests arrive from the network (:mod:`model.app.arrivals`): each is a packet the NIC
receives and the guest's I/O path delivers (:meth:`model.io.system.IOSystem.receive`).
When the guest takes it, it joins the accept queue, or is dropped if ``backlog``
requests already wait there (a listen socket's backlog). Each vCPU of the guest runs
some of the ``workers``: real guest processes (their own address spaces, so switching
between them is a context switch with its CR3 load), scheduled by the guest kernel's run
queue on that vCPU. A worker takes a request from the accept queue, runs the workload's
per-request program (compute, file reads, disk I/O, the response's packets) and blocks
while it waits for I/O; the vCPU runs another runnable worker meanwhile, or halts.

Every step that decides a request's times is an ``Op.IO`` action performed at its exact
simulated time (:mod:`model.app.system`): taking packets and completions (``poll``), a
worker taking a request (``accept``), blocking for an I/O (``block``), running again
(``resume``) and finishing (``done``). Between those steps the latency splits exactly
(:mod:`model.app.requests`): the vCPU's cycles by category from the cycle ledger, and the
time its vCPU waited for a pCPU or was halted from its runstate (:mod:`model.runstate`).

Workers do not migrate between vCPUs, and a worker runs until it blocks (the guest's
scheduler does not preempt it for another worker).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

from ..errors import InvariantError
from ..io.paths import io_op
from ..io.requests import STAGES, IORequest
from .arrivals import NO_SIZE, ArrivalSpec
from .requests import PART, WAIT_PART, AppRequest, cpu_parts

if TYPE_CHECKING:
    from ..vcpu import VCpu
    from .system import AppSystem

_USER, _KERNEL, _WALK, _VIRT = PART["user"], PART["kernel"], PART["page_walk"], PART["virt"]
_PCPU, _BLOCKED, _RUNQ = PART["pcpu_wait"], PART["vcpu_blocked"], PART["run_queue"]
_RESPONSE, _RING, _QUEUED = (STAGES.index(s) for s in ("response", "ring", "queued"))


class Wait:
    """Yielded by a per-request program: ``yield Wait(req)`` blocks its worker until the
    I/O request ``req`` completes (see :class:`Server`)."""

    __slots__ = ("req",)

    def __init__(self, req: IORequest) -> None:
        self.req = req


@dataclass(frozen=True)
class ServerConfig:
    """What a request-serving workload asks of its guest's server.

    Attributes
    ----------
    arrivals : ArrivalSpec
        Where requests come from.
    workers : int
        Worker processes of the guest, shared out over its vCPUs.
    backlog : int
        Requests the accept queue holds; more are dropped.
    request_bytes : int
        Size of a request's packet.
    requests : int or None
        Arrivals after which the source stops (None: it never stops).
    serve : callable
        ``serve(request, rng) -> iterator`` of chunks and :class:`Wait` items: the work of one
        request on its worker.
    nic : Attachment
        The guest's network attachment (requests arrive there).
    disk : Attachment or None
        The guest's disk attachment, if it has one.
    """

    arrivals: ArrivalSpec
    workers: int
    backlog: int
    request_bytes: int
    requests: int | None
    serve: Callable[[AppRequest, Any], Iterator[Any]]
    nic: Any
    disk: Any = None

    @property
    def attachments(self) -> tuple:
        return (self.nic,) if self.disk is None else (self.nic, self.disk)


class WorkerState(Enum):
    IDLE = "idle"  # waiting in accept for a request
    RUNNABLE = "runnable"  # on its vCPU's run queue
    RUNNING = "running"  # its vCPU runs it
    BLOCKED = "blocked"  # waiting for an I/O request


class Worker:
    """A worker process: its program, state and the request it serves."""

    __slots__ = ("id", "pool", "proc", "gen", "state", "app", "waiting", "blocked_at",
                 "rs_blocked", "t0", "led0", "rs0")

    def __init__(self, wid: int, pool: Pool) -> None:
        self.id = wid
        self.pool = pool
        self.proc = None
        self.gen: Generator | None = None
        self.state = WorkerState.IDLE
        self.app: AppRequest | None = None
        self.waiting: IORequest | None = None
        self.blocked_at = 0
        self.rs_blocked = (0, 0, 0, 0)
        self.t0 = 0
        self.led0 = None
        self.rs0 = (0, 0, 0, 0)


class Server:
    """The server of one guest domain (all its vCPUs): arrivals, accept queue, pools."""

    def __init__(self, app: AppSystem, domain, config: ServerConfig, rng) -> None:
        self.app = app
        self.env = app.env
        self.domain = domain
        self.dom = domain.dom
        self.config = config
        self.rng = rng
        self.queue: deque[AppRequest] = deque()
        self.idle: list[Worker] = []
        self.pools: dict[VCpu, Pool] = {}
        self._rx: dict[int, AppRequest] = {}
        self._next_vcpu = 0
        self.arrived = 0
        self.sent = 0  # requests the source has scheduled (the limit counts these)
        #: whether the source will send no more requests
        self.exhausted = False
        #: whether every request of a source that stopped has been served or dropped:
        #: the workers exit, and the vCPUs' programs end
        self.finished = False
        freq = domain.hw.freq_hz
        self._freq = freq
        if config.arrivals.open:
            self._gaps = config.arrivals.gaps(rng)
            self._t = 0.0  # the last arrival, seconds
            self._schedule_next()
        else:
            a = config.arrivals
            for user in range(a.users):
                self._think(user)

    # --- arrivals --------------------------------------------------------------------------
    def _check_finished(self) -> None:
        if not self.exhausted or self.finished:
            return
        c = self.app.log.counts_of(self.dom)
        if self.arrived == self.sent and c[0] == c[1] + c[2] and not self.queue:
            self.finished = True
            for pool in self.pools.values():  # each vCPU's program ends
                if self.app.acting is not pool.vcpu:
                    self.app.hv.raise_irq(pool.vcpu)

    def sending(self) -> bool:
        """Whether requests will still arrive (the source goes on, or has sent some that
        have not reached the NIC yet)."""
        return not self.exhausted or self.arrived < self.sent

    def _limit_reached(self) -> bool:
        n = self.config.requests
        return n is not None and self.sent >= n

    def _schedule_next(self) -> None:
        nxt = None if self._limit_reached() else next(self._gaps, None)
        if nxt is None:
            self.exhausted = True
            self._check_finished()
            return
        gap, kind, size = nxt
        self.sent += 1
        self._t += gap
        at = int(round(self._t * self._freq))
        self.env.call_later(max(at - self.env.now, 0), lambda _e: self._arrive_open(kind, size))

    def _arrive_open(self, kind: int, size: int) -> None:
        self._arrive(kind, size, -1)
        self._schedule_next()

    def _think(self, user: int) -> None:
        """Closed loop: ``user`` sends its next request after a think time."""
        if self._limit_reached():
            self.exhausted = True
            self._check_finished()
            return
        self.sent += 1
        mean = self.config.arrivals.think_ms / 1e3
        gap = self.rng.exponential(mean) if mean > 0 else 0.0
        self.env.call_later(int(round(gap * self._freq)), lambda _e: self._arrive(0, NO_SIZE, user))

    def _arrive(self, kind: int, size: int, user: int) -> None:
        """A request's packet reaches the NIC now."""
        self.arrived += 1
        self.app.log.arrived(self.dom, self.env.now)
        req = AppRequest(self.app.new_id(), self.dom, kind, size, self.env.now, user)
        if self.app.log.calibrating:
            req.stretches = []
        vcpus = self.domain.vcpus  # packets spread over the vCPUs (receive-side scaling)
        vcpu = vcpus[self._next_vcpu % len(vcpus)]
        self._next_vcpu += 1
        rx = self.app.io.receive(self.config.nic, self.config.request_bytes, vcpu,
                                 self._received)
        self._rx[rx.id] = req

    def _received(self, rx: IORequest) -> None:
        """The guest took the request's packet (now): to the accept queue, or dropped."""
        req = self._rx.pop(rx.id)
        now = self.env.now
        req.received = now
        # the path brought it to the guest (answered), which took it at its next poll:
        # the wait between goes by the runstate of the vCPU it was delivered to
        answered = rx.times()[_RESPONSE]
        p = req.parts
        p[PART["receive"]] = answered - req.arrival
        rs, rs0 = rx.vcpu.runstate.at(now), rx.answered_rs
        p[_RUNQ] += rs[0] - rs0[0]
        p[_PCPU] += rs[1] - rs0[1]
        p[_BLOCKED] += rs[2] - rs0[2]
        self.pools[rx.vcpu].rx_done.append(rx)  # its vCPU finishes the packet's handling
        if len(self.queue) >= self.config.backlog:
            self.app.log.dropped(req)
            if req.user >= 0:  # the user hears nothing: it tries again after thinking
                self._think(req.user)
            self._check_finished()
            return
        self.queue.append(req)
        if self.idle:  # wake one worker waiting in accept, preferably on this vCPU
            pick = next((w for w in self.idle if w.pool.vcpu is rx.vcpu), self.idle[0])
            self.idle.remove(pick)
            pick.pool.make_runnable(pick)

    # --- the steps (the app system's actions call these at their exact time) ---------------
    def accept(self, w: Worker, now: int) -> None:
        if self.queue:
            req = self.queue.popleft()
            req.start = now
            req.parts[PART["worker_wait"]] = now - req.received
            w.app = req
            self.open_stretch(w, now)
        else:
            w.app = None
            w.state = WorkerState.IDLE
            self.idle.append(w)

    def open_stretch(self, w: Worker, now: int) -> None:
        v = w.pool.vcpu
        w.t0, w.led0, w.rs0 = now, self.app.ledger.vcpu(v.uid), v.runstate.at(now)

    def close_stretch(self, w: Worker, now: int) -> tuple[int, int, int, int]:
        """Add the stretch the worker ran since :meth:`open_stretch` to its request's
        parts; returns the runstate now."""
        v = w.pool.vcpu
        rs = v.runstate.at(now)
        d = (self.app.ledger.vcpu(v.uid) - w.led0).tolist()
        running = rs[0] - w.rs0[0]
        if sum(d) != running:
            raise InvariantError(f"{v.name}: {running} cycles running but {sum(d)} in the "
                                 f"cycle ledger from {w.t0} to {now}")
        p = w.app.parts
        if w.app.stretches is not None:  # its cycles, and (block sets it) the part after
            w.app.stretches.append([*d, 0])  # the submission of the request it waits for
        user, kernel, walk, virt = cpu_parts(d)
        p[_USER] += user
        p[_KERNEL] += kernel
        p[_WALK] += walk
        p[_VIRT] += virt
        p[_PCPU] += rs[1] - w.rs0[1]
        p[_BLOCKED] += rs[2] - w.rs0[2]
        return rs

    def block(self, w: Worker, now: int) -> None:
        w.rs_blocked = self.close_stretch(w, now)
        if w.app.stretches is not None:  # from the end of the submission: on the ring, or
            t = w.waiting.t                # (emulated) at the device, the doorbell answered
            w.app.stretches[-1][-1] = now - (t[_RING] if t[_RING] >= 0 else t[_QUEUED])
        w.blocked_at = now
        w.state = WorkerState.BLOCKED
        if w.waiting.done:  # another vCPU took its completion meanwhile
            w.pool.make_runnable(w)

    def resume(self, w: Worker, now: int) -> None:
        """``w`` runs again after its I/O completed: the wait splits into the device's
        part (until the answer reached the guest) and what came after."""
        req, b = w.waiting, w.blocked_at
        answered = req.times()[_RESPONSE]
        p = w.app.parts
        if answered > b:
            p[WAIT_PART[req.tag.device.kind]] += answered - b
            rs0 = req.answered_rs
        else:
            rs0 = w.rs_blocked
        rs = w.pool.vcpu.runstate.at(now)
        p[_RUNQ] += rs[0] - rs0[0]
        p[_PCPU] += rs[1] - rs0[1]
        p[_BLOCKED] += rs[2] - rs0[2]
        self.open_stretch(w, now)

    def done(self, w: Worker, now: int) -> None:
        self.close_stretch(w, now)
        req = w.app
        req.end = now
        w.app = None
        self.app.log.add(req)
        if req.user >= 0:
            self._think(req.user)
        self._check_finished()

    def io_done(self, req: IORequest) -> None:
        """A worker's I/O request completed to the guest (now)."""
        w = self.app.owner.pop(req.id, None)
        if w is not None and w.waiting is req and w.state is WorkerState.BLOCKED:
            w.pool.make_runnable(w)

    def in_flight(self) -> list[AppRequest]:
        """The requests that arrived and are neither answered nor dropped: packets on the
        way in, the accept queue, and those the workers serve."""
        served = [w.app for p in self.pools.values() for w in p.workers if w.app is not None]
        return [*self._rx.values(), *self.queue, *served]

    def pool(self, ctx, workers: int) -> Pool:
        p = self.pools[ctx.vcpu] = Pool(self, ctx, workers)
        return p


class Pool:
    """The workers of one vCPU and the guest kernel's run queue there."""

    def __init__(self, server: Server, ctx, workers: int) -> None:
        self.server = server
        self.app = server.app
        self.vcpu = ctx.vcpu
        self.kernel = ctx.kernel
        self.runq: deque[Worker] = deque()
        self.rx_done: list[IORequest] = []
        self.rng = ctx.rng
        self.workers = [self.app.new_worker(self) for _ in range(workers)]
        self.id = self.app.add_pool(self)
        app = self.app  # each worker's steps, as chunks made once (a chunk is never changed)
        self._steps = {w.id: tuple(io_op(a, w.id) for a in (app.A_RESUME, app.A_ACCEPT,
                                                              app.A_DONE, app.A_BLOCK))
                       for w in self.workers}

    def make_runnable(self, w: Worker) -> None:
        """Put ``w`` on the run queue; wake its vCPU if another vCPU did this."""
        w.state = WorkerState.RUNNABLE
        self.runq.append(w)
        if self.app.acting is not self.vcpu:
            self.app.hv.raise_irq(self.vcpu)

    def program(self) -> Iterator:
        """The vCPU's program: the guest kernel scheduling the workers."""
        from ..workloads import enter

        k, io, app = self.kernel, self.app.io, self.app
        serve = self.server.config.serve
        for w in self.workers:
            w.proc = k.spawn()
            w.gen = _worker(serve, self.rng)
            next(w.gen)  # to its first accept
        # a vCPU without workers (fewer workers than vCPUs) still takes packets
        first = self.workers[0].proc if self.workers else k.spawn()
        yield enter(k, first)
        for w in self.workers[1:]:
            yield k.pin(w.proc)
        current = self.workers[0] if self.workers else None
        poll = io_op(app.A_POLL, self.id)
        self.runq.extend(self.workers)
        while True:
            halt = self.vcpu.halt()  # an interrupt from now on cancels it
            yield poll
            if self.rx_done:  # the network stack's handling of the packets received
                rx, self.rx_done = self.rx_done, []
                att = rx[0].tag
                yield from att.io_path.finish_all(io, att, rx)
            if not self.runq:
                if self.server.finished:
                    return
                yield halt
                continue
            w = self.runq.popleft()
            if w is not current:
                yield from k.switch_to(w.proc)
                current = w
            yield from self._run(w, poll)

    def _run(self, w: Worker, poll) -> Iterator:
        """Run ``w`` until it blocks or waits in accept."""
        app, io = self.app, self.app.io
        resume, accept, done, block = self._steps[w.id]
        w.state = WorkerState.RUNNING
        value = None
        if w.waiting is not None:  # it was blocked: its I/O completed
            yield resume
            req, w.waiting = w.waiting, None
            yield from req.tag.io_path.finish(io, req.tag, req)
            value = req
        else:  # it waits in accept
            yield accept
            if w.app is None:
                return
            value = w.app
        gen = w.gen
        while True:
            item = gen.send(value)
            value = None
            if item is _ACCEPT:
                yield done
                yield accept
                if w.app is None:
                    return
                value = w.app
            elif type(item) is Wait:
                req = item.req
                if not req.done:
                    yield poll
                if req.done:
                    yield from req.tag.io_path.finish(io, req.tag, req)
                    continue
                w.waiting = req
                req.then = self.server.io_done
                app.owner[req.id] = w
                yield block
                return
            else:
                yield item


_ACCEPT = object()  # a worker asks for its next request


def _worker(serve, rng) -> Generator:
    """A worker's program: accept a request, serve it, and again."""
    req = yield _ACCEPT
    while True:
        yield from serve(req, rng)
        req = yield _ACCEPT
