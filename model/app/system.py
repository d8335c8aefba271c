"""The application level of a host: its servers, their workers, and the request log.

The app system registers the ``Op.IO`` actions the servers' vCPUs perform at their exact
simulated time (:mod:`model.app.server`), owns the log of finished requests
(:class:`model.app.requests.AppLog`), and is a wake source of the hypervisor: a server's
vCPU halted with all its workers waiting in accept is waiting for the next arrival, or
idle once its source has sent its last request.

Examples
--------
>>> from model.scenario import parse_scenario, build_host
>>> s = parse_scenario('''
... name: t
... host: {devices: {nic0: {kind: nic}}}
... guests:
...   - name: kv
...     workload: {profile: kv_store, params: {arrivals: {kind: deterministic,
...                                                       rate_per_s: 1000}}}
...     devices: [{device: nic0}]
... ''')
>>> host = build_host(s)
>>> _ = host.run(seconds=0.0105)  # ten arrivals, one every millisecond
>>> host.app.log.counts_of(host.domains[-1].dom)  # offered, dropped, served
[10, 0, 10]
"""

from __future__ import annotations

from itertools import count
from typing import TYPE_CHECKING

from ..liveness import State
from .requests import AppLog
from .server import Pool, Server, ServerConfig, Worker, WorkerState

if TYPE_CHECKING:
    from ..vcpu import VCpu


class AppSystem:
    """The servers of one host (create it with :meth:`model.host.Host.enable_app`)."""

    def __init__(self, host) -> None:
        self.host = host
        self.env = host.env
        self.hv = host.hypervisor
        self.ledger = self.hv.ledger
        self.io = host.enable_io()
        self.hv.add_wake_source(self)
        self.log = AppLog(keep=self.io.log.keep)  # as the host records I/O requests
        self.servers: dict[int, Server] = {}
        self.workers: list[Worker] = []
        self.pools: list[Pool] = []
        #: I/O request id -> the worker blocked on it
        self.owner: dict[int, Worker] = {}
        #: the vCPU whose action is being performed (None: none of the servers')
        self.acting: VCpu | None = None
        self._ids = count()
        reg = self.hv.register_io
        self.A_POLL, self.A_ACCEPT, self.A_BLOCK, self.A_RESUME, self.A_DONE = (
            reg(self._poll), reg(self._accept), reg(self._block), reg(self._resume),
            reg(self._done))

    def server(self, domain, config: ServerConfig) -> Server:
        """The server of ``domain`` (made on first use, for its first vCPU)."""
        s = self.servers.get(domain.dom)
        if s is None:
            rng = self.host.rng(f"arrivals:{domain.name}", 0)
            s = self.servers[domain.dom] = Server(self, domain, config, rng)
        return s

    def new_id(self) -> int:
        return next(self._ids)

    def new_worker(self, pool: Pool) -> Worker:
        w = Worker(len(self.workers), pool)
        self.workers.append(w)
        return w

    def add_pool(self, pool: Pool) -> int:
        self.pools.append(pool)
        return len(self.pools) - 1

    # --- the actions ---------------------------------------------------------------------
    def _poll(self, vcpu, pid):
        """Take the answered I/O of the pool's server: packets, completions."""
        self.acting = vcpu
        try:
            for att in self.pools[pid].server.config.attachments:
                self.io.take_answered(att)
        finally:
            self.acting = None
        return None, False

    def _step(self, vcpu, wid, step) -> tuple[None, bool]:
        w = self.workers[wid]
        self.acting = vcpu
        try:
            step(w, self.env.now)
        finally:
            self.acting = None
        return None, False

    def _accept(self, vcpu, wid):
        return self._step(vcpu, wid, self.workers[wid].pool.server.accept)

    def _block(self, vcpu, wid):
        return self._step(vcpu, wid, self.workers[wid].pool.server.block)

    def _resume(self, vcpu, wid):
        return self._step(vcpu, wid, self.workers[wid].pool.server.resume)

    def _done(self, vcpu, wid):
        return self._step(vcpu, wid, self.workers[wid].pool.server.done)

    # --- as a wake source (model.liveness) ------------------------------------------------
    def busy(self) -> bool:
        """Whether a source will send more requests or requests wait for workers."""
        return any(s.sending() or s.queue for s in self.servers.values())

    def waits(self, blocked: list[VCpu]) -> dict[VCpu, tuple[State, str]]:
        """Of the ``blocked`` vCPUs running a server's workers: waiting for the next
        arrival, idle after the last, or stalled with requests waiting and a worker
        runnable."""
        out: dict[VCpu, tuple[State, str]] = {}
        pools = {p.vcpu: p for p in self.pools}
        for v in blocked:
            p = pools.get(v)
            if p is None:
                continue
            s = p.server
            if p.runq:
                out[v] = (State.STALLED, f"{len(p.runq)} of its workers are runnable")
            elif any(w.state is WorkerState.BLOCKED for w in p.workers):
                continue  # the I/O system answers for it
            elif s.queue and any(w.state is WorkerState.IDLE for w in p.workers) and not any(
                    q.runq or (q.vcpu.runnable and any(w.state is WorkerState.RUNNING
                                                       for w in q.workers))
                    for q in s.pools.values()):
                out[v] = (State.STALLED, f"{len(s.queue)} requests wait in the accept "
                          "queue while the server's workers wait in accept")
            elif s.finished:
                out[v] = (State.STALLED, "its server has finished but it was not told")
            elif s.sending():
                out[v] = (State.WAITING, "the next request to arrive")
            else:
                out[v] = (State.IDLE, "its request source has sent its last request")
        return out
