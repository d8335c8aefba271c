"""The documented schema of ``summary.json``: every key, with its unit and meaning.

The keys are not listed here: they are read from the dataclasses that write the summary
(:class:`analysis.summary.Summary` and the classes of its fields, whose field names are
the keys), walked through their type hints, so a field added to the summary and not
documented in :data:`DOCS` is an error (:class:`SummarySchemaError`) rather than a gap.
:data:`DOCS` gives each field its unit and meaning, the placeholders of a mapping's keys
(``guests.<guest>``), and whether it is written only under a condition.
``pvsim schema --summary`` prints :func:`describe`; ``tests/test_summary_schema.py``
checks that a real summary has every documented key and no other.

Examples
--------
>>> k = {k.path: k for k in keys()}
>>> k["guests.<guest>.cpu_s.<category>"].unit, k["host.busy_fraction"].unit
('s', 'fraction')
>>> k["guests.<guest>.io.p99_ms"].when
'only if the host has devices; only if requests are recorded (record.requests) and some completed'
"""

from __future__ import annotations

import dataclasses
import textwrap
import types
import typing
from dataclasses import dataclass
from typing import Any

from model.app.requests import PARTS
from model.categories import NAMES
from model.errors import PvsimError
from model.rules import TRANSITION_KINDS

from .appstats import AppSummary, Latencies
from .reproducibility import LIBRARIES, Reproducibility
from .summary import (
    AppOverview,
    DeviceSummary,
    EngineSummary,
    FidelitySummary,
    GuestIO,
    GuestSummary,
    HostSummary,
    HypervisorSummary,
    Invariants,
    IOSummary,
    Latency,
    Stalled,
    Stream,
    Summary,
)


class SummarySchemaError(PvsimError):
    """A field of the summary's dataclasses has no documentation in :data:`DOCS` (or the
    documentation names a field that does not exist)."""


@dataclass(frozen=True)
class Doc:
    """How one dataclass field appears in ``summary.json``.

    Attributes
    ----------
    unit : str
        ``s``, ``ms``, ``fraction`` (in [0, 1]), ``count``, ``bytes``, ``Mbit/s``, ``1/s``,
        ``requests``, ``index``, ``integer``, ``text``, ``version``; empty for a block (an
        object of keys).
    meaning : str
    keys : tuple of str
        The placeholders of a mapping's keys, outermost first (``("kind", "label")`` for
        ``transitions.<kind>.<label>``).
    when : str
        When the key is written, if not always (``only if ...``, ``null unless ...``).
    inline : bool
        The field's keys are written into its parent's object, not under its own name.
    """

    unit: str
    meaning: str
    keys: tuple[str, ...] = ()
    when: str = ""
    inline: bool = False


def _block(meaning: str, **kw: Any) -> Doc:
    return Doc("", meaning, **kw)


_LATENCY = "I/O request latency, issue to completion, of the requests issued after the warm-up"
_RESPONSE = "response time, arrival at the NIC to the last packet sent"

#: dataclass -> field -> its documentation.
DOCS: dict[type, dict[str, Doc]] = {
    Summary: {
        "pvsim_version": Doc("version", "the pvsim that made the run"),
        "scenario": Doc("text", "the scenario's name"),
        "scenario_hash": Doc("text", "hash of the resolved scenario (every default filled in)"),
        "seed": Doc("integer", "the seed of the run"),
        "hardware": Doc("text", "the hardware profile"),
        "sim_time_s": Doc("s", "simulated time"),
        "warmup_s": Doc("s", "simulated time at the start left out of the statistics "
                        "(record.warmup)"),
        "fidelity": _block("which engine made the run and, for the fast level, what it "
                           "leaves out and its bounds against the exact level",
                           when="null (absent) in a summary.json written before it"),
        "engine": _block("what the run cost the machine that ran it (differs between runs)"),
        "reproducibility": _block("what made the run: versions, platform, command line "
                                  "(differs between machines)"),
        "host": _block("the host: pCPUs, the driver domain, every cycle by category"),
        "guests": _block("one entry per guest replica", keys=("guest",)),
        "devices": _block("one entry per shared device", keys=("device",)),
        "hypervisor": _block("every guest's transitions summed, and scheduler activity"),
        "io": _block("request conservation: issued = completed + in_flight",
                     when="null unless the host has devices"),
        "invariants": _block("what the run checked, and the vCPUs' states at the end"),
        "app": _block("the application requests", when="only if some guest serves requests"),
    },
    EngineSummary: {
        "wall_s": Doc("s", "wall-clock time of the run"),
        "events": Doc("count", "SimPy events scheduled (a segment that nothing can "
                            "interrupt ends without one: a progress bar's 100 stops add some)"),
        "instructions": Doc("count", "guest instructions simulated"),
        "instructions_per_s": Doc("1/s", "instructions simulated per wall-clock second"),
        "events_per_s": Doc("1/s", "events processed per wall-clock second"),
    },
    Reproducibility: {
        "pvsim_version": Doc("version", "pvsim's version"),
        "git_commit": Doc("text", "HEAD of the git checkout pvsim ran from (changes not "
                          "committed are not seen); null for an installed pvsim"),
        "python": Doc("version", "Python's version"),
        **{lib: Doc("version", f"{lib}'s version (null if not installed)") for lib in LIBRARIES},
        "platform": Doc("text", "the operating system, machine and Python implementation"),
        "command": Doc("text", "the pvsim command line's arguments (a list); null when the "
                       "run was made from the Python API"),
        "fidelity": Doc("text", "the fidelity level of the engine that made the run (exact: "
                        "the instruction-level engine)"),
    },
    FidelitySummary: {
        "level": Doc("text", "exact: the instruction-level engine (the ground truth); fast: "
                     "request-level bursts of costs the exact engine measured (model/fast)"),
        "not_modelled": Doc("text", "what the fast level leaves out (a list; empty at exact)"),
        "bounds": Doc("text", "the fast level's differences from the exact level as its "
                      "validation measured them (a list; empty at exact)"),
    },
    HostSummary: {
        "pcpus": Doc("count", "physical CPUs"),
        "busy_fraction": Doc("fraction", "pCPU time not idle (after the warm-up)"),
        "driver_domain_s": Doc("s", "CPU time of the driver domain's vCPUs"),
        "driver_domain": Doc("text", "the driver domain's name; null without one"),
        "driver_domain_pinning": Doc("index", "the pCPUs (indices, a list) the driver domain "
                                     "is pinned to; null if unpinned or none"),
        "cpu_s": Doc("s", "every pCPU's time by category, idle included (after the warm-up)",
                     keys=("category",)),
    },
    GuestSummary: {
        "spec": Doc("text", "the scenario's guest entry this replica is one of"),
        "mode": Doc("text", "virtualization mode"),
        "cpu_s": Doc("s", "its CPU time by category (driver_domain: the driver domain's work "
                     "on its behalf); categories it spent nothing in are left out",
                     keys=("category",)),
        "transitions": Doc("count", "its transitions by kind and label",
                           keys=("kind", "label")),
        "instructions": Doc("count", "instructions its vCPUs executed"),
        "finished_s": Doc("s", "when its workload finished; null if it had not"),
        "devices": Doc("text", "the I/O path to each device attached", keys=("device",)),
        "io": _block("its I/O requests completed after the warm-up",
                     when="only if the host has devices"),
        "app": _block("its application requests (after the warm-up)",
                      when="only if the guest serves requests"),
    },
    GuestIO: {
        "requests": Doc("count", "I/O requests completed"),
        "bytes": Doc("bytes", "bytes they moved"),
        "throughput_mbps": Doc("Mbit/s", "bytes x 8 / 10^6 per second of the measured time "
                               "(the run after the warm-up)"),
        "latency": _block(_LATENCY + ", pooled over the guest's devices and directions",
                          inline=True, when="only if requests are recorded (record.requests) "
                          "and some completed"),
        "streams": _block("the same per stream: a device and a direction (ssd0:read, "
                          "ssd0:write, nic0:receive, nic0:send); compare these, not the "
                          "pooled figures, whose percentiles mix unlike requests",
                          keys=("stream",), when="only if requests are recorded "
                          "(record.requests); streams without requests left out"),
    },
    Stream: {
        "requests": Doc("count", "requests of the stream issued after the warm-up and "
                        "completed"),
        "latency": _block(_LATENCY, inline=True),
    },
    Latency: {
        "mean_ms": Doc("ms", f"mean {_LATENCY}"),
        "p50_ms": Doc("ms", "median I/O request latency"),
        "p95_ms": Doc("ms", "95th percentile I/O request latency"),
        "p99_ms": Doc("ms", "99th percentile I/O request latency"),
    },
    DeviceSummary: {
        "kind": Doc("text", "device kind"),
        "channels": Doc("count", "requests it serves at once"),
        "utilization": Doc("fraction", "time busy serving requests (after the warm-up)"),
        "completed": Doc("count", "requests served (after the warm-up)"),
        "mean_queue": Doc("requests", "mean number of requests queued (after the warm-up)"),
        "contention_s": Doc("s", "time guest <waiting> waited behind guest <holding>'s "
                            "requests (a guest behind itself included)",
                            keys=("waiting", "holding")),
    },
    HypervisorSummary: {
        "transitions": Doc("count", "every guest's transitions by kind and label, most "
                           "frequent first", keys=("kind", "label"), inline=True),
        "context_switches": Doc("count", "vCPU switches on the pCPUs"),
        "timers_fired": Doc("count", "hypervisor timers that fired"),
    },
    IOSummary: {
        "issued": Doc("count", "I/O requests issued"),
        "completed": Doc("count", "I/O requests completed to the guest"),
        "in_flight": Doc("count", "I/O requests not completed at the end"),
        "in_flight_by_stage": Doc("count", "those by where they were", keys=("stage",)),
    },
    Invariants: {
        "checked": Doc("text", "what the run checked (a list)"),
        "stalled": _block("vCPUs blocked at the end with nothing to wake them (a list; "
                          "empty in a sound run)"),
        "vcpus_at_end": Doc("text", "each vCPU's state at the end, 'state: why'",
                            keys=("vcpu",)),
    },
    Stalled: {
        "vcpu": Doc("text", "the vCPU"),
        "blocked_since_s": Doc("s", "simulated time it blocked at"),
        "why": Doc("text", "why nothing will wake it"),
    },
    AppOverview: {
        "warmup_s": Doc("s", "the warm-up left out of the request statistics"),
        "groups": _block("per guest entry that serves requests, its replicas pooled",
                         keys=("entry",)),
    },
    AppSummary: {
        "guests": Doc("count", "replicas pooled"),
        "offered": Doc("count", "requests that arrived after the warm-up"),
        "served": Doc("count", "requests answered after the warm-up"),
        "dropped": Doc("count", "offered requests that found the accept queue full"),
        "in_flight": Doc("count", "offered requests unanswered at the end"),
        "offered_per_s": Doc("1/s", "offered per second of the measured time, per replica"),
        "served_per_s": Doc("1/s", "served per second of the measured time, per replica"),
        "drop_rate": Doc("fraction", "dropped / offered"),
        "latency": _block(f"{_RESPONSE}, of the requests offered (an unanswered one at its "
                          "wait so far)"),
        "parts_ms": Doc("ms", "mean decomposition of the answered requests' response time",
                        keys=("part",)),
    },
    Latencies: {
        "n": Doc("count", "response times behind the figures"),
        "unfinished": Doc("count", "of them unanswered at the end (counted at their wait)"),
        "mean_ms": Doc("ms", f"mean {_RESPONSE}; null when n is 0"),
        "p50_ms": Doc("ms", "median response time; null when n is 0"),
        "p95_ms": Doc("ms", "95th percentile response time; null when n is 0"),
        "p99_ms": Doc("ms", "99th percentile response time; null when n is 0"),
        "p999_ms": Doc("ms", "99.9th percentile response time; null when n is 0"),
    },
}

#: Placeholder -> what stands in its place.
PLACEHOLDERS = {
    "guest": "a guest replica: its entry's name, with -1, -2, ... when it has several",
    "device": "a device of host.devices",
    "category": "a cycle category: " + ", ".join(NAMES),
    "kind": "a kind of transition: " + ", ".join(TRANSITION_KINDS.values()),
    "label": "a hypercall, exit reason, trap, emulated instruction or interrupt",
    "waiting": "a guest (or the driver domain)",
    "holding": "a guest (or the driver domain)",
    "stage": "to_device, at_device or returning",
    "vcpu": "a vCPU, GUEST.vN",
    "entry": "a guest entry of the scenario",
    "part": "a part of a response time: " + ", ".join(PARTS),
}


@dataclass(frozen=True)
class SummaryKey:
    """One documented key of ``summary.json``: its dotted ``path`` (``<x>`` for a
    mapping's key, ``[]`` for a list's items), unit, meaning and when it is written (its
    own condition and its blocks', joined by ``;``)."""

    path: str
    unit: str
    meaning: str
    when: str = ""

    @property
    def block(self) -> bool:
        """An object of further keys, not a value."""
        return not self.unit


def keys() -> list[SummaryKey]:
    """Every key of ``summary.json``, in the file's order, blocks before their keys.

    Raises
    ------
    SummarySchemaError
        A summary field lacks documentation, or :data:`DOCS` documents one that is gone.
    """
    return list(_walk(Summary, "", ""))


def _walk(cls: type, prefix: str, when: str) -> typing.Iterator[SummaryKey]:
    docs = DOCS.get(cls, {})
    names = [f.name for f in dataclasses.fields(cls)]
    if set(docs) != set(names):
        missing, extra = set(names) - set(docs), set(docs) - set(names)
        raise SummarySchemaError(
            f"{cls.__name__}: " + "; ".join(
                p for p in (f"undocumented fields {sorted(missing)}" if missing else "",
                            f"documented fields that do not exist {sorted(extra)}"
                            if extra else "") if p)
            + " (analysis/summary_schema.py, DOCS)")
    hints = typing.get_type_hints(cls)
    for name in names:
        doc = docs[name]
        base = prefix.rstrip(".") if doc.inline else prefix + name  # inline: in the parent
        path = base + "".join(f".<{k}>" for k in doc.keys)
        cond = "; ".join(c for c in (when, doc.when) if c)
        t = _strip_none(hints[name])
        for _ in doc.keys:  # a mapping's values
            t = _strip_none(typing.get_args(t)[1])
        if doc.keys or not doc.inline:
            yield SummaryKey(path, doc.unit, doc.meaning, cond)
        if typing.get_origin(t) is list and dataclasses.is_dataclass(typing.get_args(t)[0]):
            yield from _walk(typing.get_args(t)[0], path + "[].", cond)
        elif dataclasses.is_dataclass(t):
            yield from _walk(t, path + ".", cond)


def _strip_none(t: Any) -> Any:
    """``X | None`` -> ``X``."""
    if typing.get_origin(t) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(t) if a is not type(None)]
        return args[0] if len(args) == 1 else t
    return t


def describe(width: int = 100) -> str:
    """The schema as text: each key with its unit, meaning and condition, then the
    placeholders. ``pvsim schema --summary`` prints it.

    Examples
    --------
    >>> line = next(x for x in describe().splitlines() if x.startswith("host.busy_fraction"))
    >>> line.split()[:2]
    ['host.busy_fraction', 'fraction']
    """
    ks = keys()
    left = max(len(k.path) for k in ks) + 2
    unit = max(len(k.unit) for k in ks) + 2
    lines = textwrap.wrap("summary.json: every key, its unit and meaning (<x>: a key of a "
                          "mapping, see below; []: each item of a list; a block is an object "
                          "of the keys under it).", width)
    lines.append("")
    blocks = {k.path: k.when for k in ks if k.block}
    for k in ks:
        parent = max((b for b in blocks if k.path.startswith(b + ".") or
                      k.path.startswith(b + "[]")), key=len, default=None)
        own = k.when if parent is None else k.when[len(blocks[parent]):].lstrip("; ")
        text = k.meaning + (f" [{own}]" if own else "")
        lines += textwrap.wrap(f"{k.path:<{left}}{k.unit or '(block)':<{unit}}{text}", width,
                               subsequent_indent=" " * (left + unit))
    lines += ["", "placeholders:"]
    for name, what in PLACEHOLDERS.items():
        lines += textwrap.wrap(f"  <{name}>: {what}", width, subsequent_indent="    ")
    return "\n".join(lines)
