"""The catalogue of headline metrics: every name a sweep tabulates and an SLO is written on,
with its unit and meaning.

A metric is named ``SCOPE.METRIC`` (``host.busy_fraction``) or ``SCOPE.NAME.METRIC`` for a
guest replica (``guest.web-1.cpu_ms``), a guest entry of the scenario, its replicas pooled
(``group.web.request_p99_ms``), or a device (``device.ssd0.utilization``). Some exist only
for a guest (entry) with devices attached, or that serves application requests
(:attr:`MetricKind.when`). :func:`analysis.metrics.metric_names` lists those of a scenario
from :data:`METRICS`; ``pvsim plan --help`` prints :func:`describe`. This module imports
nothing of the engine, so the help costs nothing to build.

Examples
--------
>>> [k.pattern for k in METRICS if k.scope == "device"]
['device.NAME.utilization', 'device.NAME.mean_queue']
>>> kind("group", "request_p99_ms").unit
'ms'
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

from model.errors import ConfigError

#: Scopes, in the order metrics are listed; all but host are per named thing.
SCOPES = ("host", "guest", "group", "device")

#: When a metric exists (:attr:`MetricKind.when`) -> what that means, for the help.
WHEN = {
    "always": "",
    "devices": "a guest (entry) with devices attached",
    "serves": "a guest (entry) that serves application requests (after the warm-up)",
}


@dataclass(frozen=True)
class MetricKind:
    """One kind of headline metric.

    Attributes
    ----------
    scope : str
        One of :data:`SCOPES`.
    name : str
        The metric's last component.
    unit : str
        Its unit (``fraction`` for a ratio in [0, 1], ``count`` for a number of things).
    meaning : str
        What it measures, in a few words.
    when : str
        A key of :data:`WHEN`: whether it exists for every guest or device, or only for
        those with devices attached or that serve requests. A latency is also absent from
        a run in which no request completed.
    """

    scope: str
    name: str
    unit: str
    meaning: str
    when: str = "always"

    @property
    def pattern(self) -> str:
        """The metric's name with ``NAME`` for the guest, guest entry or device."""
        return f"{self.scope}.{self.name}" if self.scope == "host" else (
            f"{self.scope}.NAME.{self.name}")

    def named(self, name: str | None = None) -> str:
        """The metric of guest, guest entry or device ``name`` (None for host)."""
        return f"{self.scope}.{self.name}" if name is None else f"{self.scope}.{name}.{self.name}"


def _app(scope: str, per: str) -> tuple[MetricKind, ...]:
    """The application-request metrics of a replica or a guest entry."""
    return (
        MetricKind(scope, "request_mean_ms", "ms", "mean response time", "serves"),
        MetricKind(scope, "request_p50_ms", "ms", "median response time", "serves"),
        MetricKind(scope, "request_p95_ms", "ms", "95th percentile response time", "serves"),
        MetricKind(scope, "request_p99_ms", "ms", "99th percentile response time", "serves"),
        MetricKind(scope, "request_p999_ms", "ms", "99.9th percentile response time",
                   "serves"),
        MetricKind(scope, "drop_rate", "fraction", "offered requests dropped", "serves"),
        MetricKind(scope, "offered_per_s", "1/s", f"requests arriving per second{per}", "serves"),
        MetricKind(scope, "served_per_s", "1/s", f"requests answered per second{per}", "serves"),
    )


#: Every kind of headline metric, in the order :func:`analysis.metrics.metric_names`
#: lists them for a scenario (within a scope).
METRICS: tuple[MetricKind, ...] = (
    MetricKind("host", "busy_fraction", "fraction", "pCPU time not idle"),
    MetricKind("host", "stalled_vcpus", "count",
               "vCPUs blocked at the end with nothing to wake them (0 in a sound run)"),
    MetricKind("guest", "cpu_ms", "ms", "CPU time of the replica"),
    MetricKind("guest", "p50_ms", "ms", "median I/O request latency, pooled over the "
               "replica's devices and directions (per stream: io.streams)", "devices"),
    MetricKind("guest", "p99_ms", "ms", "99th percentile I/O request latency, pooled over "
               "the replica's devices and directions", "devices"),
    *_app("guest", ""),
    MetricKind("group", "cpu_ms_per_guest", "ms", "CPU time per replica (mean)"),
    MetricKind("group", "mbit_s_per_guest", "Mbit/s", "I/O throughput per replica (mean)",
               "devices"),
    MetricKind("group", "p50_ms", "ms", "median I/O request latency (pooled over the "
               "replicas, devices and directions)", "devices"),
    MetricKind("group", "p99_ms", "ms", "99th percentile I/O request latency (pooled over "
               "the replicas, devices and directions)", "devices"),
    *_app("group", ", per replica (mean)"),
    MetricKind("device", "utilization", "fraction", "time busy serving requests"),
    MetricKind("device", "mean_queue", "requests", "mean number of requests queued"),
)

#: vCPUs blocked at the end with nothing to wake them (model.liveness): 0 in a sound run
STALLED = "host.stalled_vcpus"


def kind(scope: str, name: str) -> MetricKind:
    """The kind of metric ``name`` of ``scope`` (``KeyError`` if there is none)."""
    for k in METRICS:
        if (k.scope, k.name) == (scope, name):
            return k
    raise ConfigError(f"no headline metric {scope}.{name}")


def describe(width: int = 79) -> str:
    """The catalogue as text, lines of at most ``width`` characters: each metric's
    pattern, unit and meaning, grouped by when it exists. ``pvsim plan --help`` prints it.

    Examples
    --------
    >>> print(describe().splitlines()[2])
      host.busy_fraction          fraction pCPU time not idle
    """
    lines = textwrap.wrap("metrics for --slo (NAME: a guest replica in guest., a guest "
                          "entry in group., its replicas pooled, a device in device.):", width)
    left = 2 + max(len(k.pattern) for k in METRICS) + 1
    lead = left + max(len(k.unit) for k in METRICS) + 1
    for when, what in WHEN.items():
        if what:
            lines += textwrap.wrap(f"for {what}:", width)
        for k in (k for k in METRICS if k.when == when):
            lines += textwrap.wrap(f"  {k.pattern:<{left - 3}} {k.unit:<{lead - left - 1}} "
                                   f"{k.meaning}", width, subsequent_indent=" " * lead)
    return "\n".join(lines)
