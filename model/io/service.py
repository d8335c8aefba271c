"""Service models: how long a device takes to serve a request, by device kind.

The device kinds of scenario files (``host.devices.NAME.kind``) are service models
registered in :data:`DEVICE_KINDS`. Each declares its scenario parameters in
:attr:`ServiceModel.params` as pydantic fields (type, default, range, and a description
naming the unit) and takes them as constructor keywords of the same names and defaults:
a scenario's device has exactly its kind's keys (and those every device has: see
:mod:`model.scenario.device_specs`).

Every device may also spread its service times around the modeled time
(:class:`ServiceDistribution`): ``modeled`` (the kind's formula, as it is), ``deterministic``
(the formula without its random parts), ``exponential`` or ``lognormal`` (with ``cv``)
of mean the modeled time. The draws come from the device's own random stream.

Examples
--------
>>> from model.io.requests import IORequest
>>> read = IORequest(0, guest=1, device=0, size=4096, write=False, issued=0)
>>> round(SsdService().seconds(read, None) * 1e6, 3)  # 80 us + 4096 B at 500/8 MB/s
145.536
>>> round(NvmeService().seconds(read, None) * 1e6, 3)  # 20 us + 4096 B at 3000/32 MB/s
63.691
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from ..errors import ConfigError, valid_choices
from ..registry import Registry
from .arbitration import SpecParam
from .requests import IORequest

#: What a device is to the guests using it: a workload needs a device of a class (an
#: attachment of a device of that class feeds it), whatever the device's kind.
DEVICE_CLASSES = ("disk", "nic")
#: The two directions of a device class's requests, (not written, written): a disk reads
#: and writes, a network interface receives and sends (:func:`direction`).
DIRECTIONS = {"disk": ("read", "write"), "nic": ("receive", "send")}


def direction(device_class: str, write: bool) -> str:
    """The direction of a request to a device of ``device_class``.

    Examples
    --------
    >>> direction("nic", True), direction("disk", False)
    ('send', 'read')
    """
    return DIRECTIONS[device_class][int(bool(write))]

#: The largest packet a guest hands its driver with segmentation offload (TSO/GSO): 64 KiB.
TSO_MAX_BYTES = 65536


class ServiceModel:
    """Service time of a request, in seconds.

    Attributes
    ----------
    channels : int
        Requests served at once.
    device_class : str
        One of :data:`DEVICE_CLASSES`.
    network : bool
        Its requests are packets (its class is ``nic``), not blocks of a disk.
    params : dict
        The scenario parameters of a registered kind: pydantic field definitions
        ``(type, FieldInfo)`` by key, passed to the constructor by :meth:`from_spec`.
    coalesce_us : float
        Interrupt coalescing window, microseconds (0: an interrupt per completion).
    max_request_bytes : int or None
        The largest request a guest may hand the device (None: any size).

    Examples
    --------
    >>> ServiceModel.channels, ServiceModel.coalesce_us, ServiceModel.max_request_bytes
    (1, 0.0, None)
    """

    channels = 1
    device_class = "disk"
    params: ClassVar[dict[str, SpecParam]] = {}
    coalesce_us = 0.0
    max_request_bytes: int | None = None

    @property
    def network(self) -> bool:
        """Whether its requests are packets (a device of class ``nic``)."""
        return self.device_class == "nic"

    @classmethod
    def from_spec(cls, spec: Any) -> ServiceModel:
        """The service model of a scenario's device: the constructor called with the
        device's value of each of :attr:`params`.

        Examples
        --------
        >>> from model.scenario import parse_scenario
        >>> s = parse_scenario("name: t\\nhost: {devices: {n: {kind: nic, mtu: 9000}}}\\n"
        ...                    "guests: [{name: a, workload: {profile: spin}}]")
        >>> NicService.from_spec(s.host.devices["n"]).payload
        8960
        """
        return cls(**{key: getattr(spec, key) for key in cls.params})

    def seconds(self, req: IORequest, rng: np.random.Generator) -> float:
        """The modeled time of ``req``; a kind may draw from ``rng`` (the device's stream)."""
        raise NotImplementedError

    def fixed_seconds(self, req: IORequest) -> float:
        """The modeled time without its random parts (``distribution: deterministic``).

        The default is :meth:`seconds` without a random stream: a kind whose formula
        draws random numbers overrides it (as :class:`HddService` does).
        """
        return self.seconds(req, None)


def _field(default: object, description: str, **bounds: float) -> Any:
    return Field(default, description=description, **bounds)


class ExponentialService(ServiceModel):
    """Exponentially distributed service with mean ``mean_s`` (for queueing validation)."""

    def __init__(self, mean_s: float, channels: int = 1) -> None:
        self.mean_s = mean_s
        self.channels = channels

    def seconds(self, req, rng):
        return rng.exponential(self.mean_s)


class HddService(ServiceModel):
    """A hard disk with one head: seek + rotational latency + transfer.

    Seek time grows with the square root of the distance (Ruemmler & Wilkes 1994):
    ``track_ms + (full_stroke_ms - track_ms) * sqrt(distance / capacity)``; a request
    that starts where the previous one ended does not seek or wait for rotation. A
    request without an offset lands anywhere on the disk (uniformly), and the rotational
    latency is uniform over a turn. Defaults: a 7200 rpm SATA disk (estimates from
    typical data sheets).

    Examples
    --------
    >>> from model.io.requests import IORequest
    >>> hdd = HddService()
    >>> r = IORequest(0, guest=1, device=0, size=1 << 20, write=False, issued=0, offset=0)
    >>> round(hdd.seconds(r, None) * 1e3, 3)  # at the head already: the transfer only
    6.991
    """

    params: ClassVar[dict[str, SpecParam]] = {
        "rpm": (float, _field(7200.0, "spindle speed, revolutions per minute", gt=0, le=1e5)),
        "track_ms": (float, _field(0.8, "track-to-track seek, milliseconds", ge=0, le=1000)),
        "full_stroke_ms": (float, _field(16.0, "full-stroke seek, milliseconds; across the "
                                         "whole disk", ge=0, le=10_000)),
        "transfer_mb_s": (float, _field(150.0, "media transfer rate, MB/s; 10^6 bytes per "
                                        "second", gt=0, le=1e6)),
        "capacity_gb": (float, _field(1000.0, "capacity, GB; 10^9 bytes, over which "
                                      "requests without an offset land", gt=0, le=1e6)),
    }

    def __init__(
        self,
        rpm: float = 7200.0,
        track_ms: float = 0.8,
        full_stroke_ms: float = 16.0,
        transfer_mb_s: float = 150.0,
        capacity_gb: float = 1000.0,
    ) -> None:
        self.rpm, self.track_ms, self.full_ms = rpm, track_ms, full_stroke_ms
        self.transfer = transfer_mb_s * 1e6
        self.capacity = capacity_gb * 1e9
        self.head = 0

    def seconds(self, req, rng):
        offset = req.offset if req.offset >= 0 else int(rng.random() * self.capacity)
        t = req.size / self.transfer
        if offset != self.head:
            dist = abs(offset - self.head) / self.capacity
            t += (self.track_ms + (self.full_ms - self.track_ms) * math.sqrt(dist)) / 1e3
            t += rng.random() * 60.0 / self.rpm  # rotational latency, uniform over a turn
        self.head = offset + req.size
        return t

    def fixed_seconds(self, req):
        """The formula with its random parts at their means: half a turn of rotational
        latency, and for a request without an offset (or after one: the head's place is
        then unknown) the mean seek to (or from) a uniformly random place: for a known
        end at fraction ``x`` of the disk, ``E[sqrt|U - x|] = 2/3 (x^1.5 + (1 - x)^1.5)``,
        and ``8/15`` when both ends are random. Random requests thus take the modeled
        mean time, without its spread; a request that continues where the previous one
        ended still neither seeks nor waits.

        Examples
        --------
        >>> from model.io.requests import IORequest
        >>> hdd = HddService()
        >>> r = IORequest(0, guest=1, device=0, size=0, write=False, issued=0)
        >>> round(hdd.fixed_seconds(r) * 1e3, 3)  # the mean seek from 0, half a turn
        15.1
        """
        t = req.size / self.transfer
        placed, head = req.offset >= 0, self.head >= 0
        if not (placed and head and req.offset == self.head):
            if placed and head:
                root = math.sqrt(abs(req.offset - self.head) / self.capacity)
            elif placed or head:
                x = min(max((req.offset if placed else self.head) / self.capacity, 0.0), 1.0)
                root = 2 / 3 * (x**1.5 + (1 - x) ** 1.5)
            else:
                root = 8 / 15
            t += (self.track_ms + (self.full_ms - self.track_ms) * root) / 1e3
            t += 30.0 / self.rpm  # half a turn
        self.head = req.offset + req.size if placed else -1
        return t


def _flash_params(channels: int, read_us: float, write_us: float,
                  bandwidth_mb_s: float) -> dict[str, SpecParam]:
    """The parameters of a flash device, with its kind's defaults."""
    return {
        "channels": (int, _field(channels, "requests served at once; each transfers at its "
                                 "share of the bandwidth", ge=1, le=4096)),
        "read_us": (float, _field(read_us, "read latency, microseconds; before the transfer",
                                  ge=0, le=1e6)),
        "write_us": (float, _field(write_us, "write latency, microseconds; before the "
                                   "transfer", ge=0, le=1e6)),
        "bandwidth_mb_s": (float, _field(bandwidth_mb_s, "bandwidth of all channels together, "
                                         "MB/s; 10^6 bytes per second", gt=0, le=1e6)),
    }


class SsdService(ServiceModel):
    """A flash device: ``channels`` requests in parallel, each a fixed latency plus its
    transfer at the per-channel share of the bandwidth. Defaults: a SATA SSD (estimates):
    8 channels, 80 us reads, 30 us writes, 500 MB/s.

    Examples
    --------
    >>> ssd = SsdService(channels=4, read_us=100, bandwidth_mb_s=400)
    >>> ssd.channels, ssd.per_channel  # bytes per second per channel
    (4, 100000000.0)
    """

    params: ClassVar[dict[str, SpecParam]] = _flash_params(8, 80.0, 30.0, 500.0)

    def __init__(
        self,
        channels: int = 8,
        read_us: float = 80.0,
        write_us: float = 30.0,
        bandwidth_mb_s: float = 500.0,
    ) -> None:
        self.channels = channels
        self.read_s, self.write_s = read_us / 1e6, write_us / 1e6
        self.per_channel = bandwidth_mb_s * 1e6 / channels

    def seconds(self, req, rng):
        return (self.write_s if req.write else self.read_s) + req.size / self.per_channel


class NvmeService(SsdService):
    """An NVMe drive: a flash device with 32 channels, 20/15 us read/write latency and
    3000 MB/s (estimates).

    Examples
    --------
    >>> DEVICE_KINDS["nvme"]().channels, NvmeService().device_class
    (32, 'disk')
    """

    params: ClassVar[dict[str, SpecParam]] = _flash_params(32, 20.0, 15.0, 3000.0)

    def __init__(
        self,
        channels: int = 32,
        read_us: float = 20.0,
        write_us: float = 15.0,
        bandwidth_mb_s: float = 3000.0,
    ) -> None:
        super().__init__(channels, read_us, write_us, bandwidth_mb_s)


class NicService(ServiceModel):
    """A NIC port: a request of ``size`` payload bytes goes out as MTU-sized frames, each
    paying a per-packet cost and its bytes (with 78 bytes of TCP/IP, Ethernet, preamble and
    gap overhead) at line rate.

    With TSO/GSO a guest hands packets of up to 64 KiB to its driver; the NIC cuts them
    into MTU frames (:attr:`max_request_bytes`). The service time is the same either way:
    hardware segmentation still sends, and pays for, every frame.

    Examples
    --------
    >>> from model.io.requests import IORequest
    >>> nic = NicService(rate_gbit_s=10.0)
    >>> nic.packets(65536), nic.max_request_bytes, NicService(tso=False).max_request_bytes
    (45, 65536, 1460)
    """

    FRAME_OVERHEAD = 78
    device_class = "nic"
    params: ClassVar[dict[str, SpecParam]] = {
        "rate_gbit_s": (float, _field(1.0, "line rate, Gbit/s", ge=0.001, le=1000)),
        "per_packet_us": (float, _field(1.0, "the NIC's cost per frame, microseconds; "
                                        "paid for every frame it sends", ge=0, le=1e4)),
        "mtu": (int, _field(1500, "MTU, bytes; a frame carries mtu - 40 payload bytes",
                            ge=576, le=9000)),
        "tso": (bool, _field(True, "segmentation offload (TSO/GSO), true or false; "
                             "guests hand packets of up to 64 KiB, the NIC cuts them into frames")),
        "coalesce_us": (float, _field(0.0, "interrupt coalescing window, microseconds; "
                                      "completions within it share one interrupt (0: an "
                                      "interrupt per completion)", ge=0, le=1e6)),
    }

    def __init__(
        self,
        rate_gbit_s: float = 1.0,
        per_packet_us: float = 1.0,
        mtu: int = 1500,
        tso: bool = True,
        coalesce_us: float = 0.0,
    ) -> None:
        self.rate = rate_gbit_s * 1e9
        self.per_packet = per_packet_us / 1e6
        self.mtu = mtu
        self.payload = mtu - 40
        self.tso = tso
        self.coalesce_us = coalesce_us

    @property
    def max_request_bytes(self) -> int:
        """64 KiB with TSO (the NIC segments), else one frame's payload (``mtu - 40``)."""
        return TSO_MAX_BYTES if self.tso else self.payload

    def packets(self, size: int) -> int:
        """Frames a request of ``size`` payload bytes goes out as."""
        return max(1, -(-size // self.payload))

    def seconds(self, req, rng):
        n = self.packets(req.size)
        return n * self.per_packet + (req.size + n * self.FRAME_OVERHEAD) * 8 / self.rate


#: The device kinds scenario files may name (``host.devices.NAME.kind``).
DEVICE_KINDS: Registry[type[ServiceModel]] = Registry("device kind")
DEVICE_KINDS.register("hdd", HddService)
DEVICE_KINDS.register("ssd", SsdService)
DEVICE_KINDS.register("nvme", NvmeService)
DEVICE_KINDS.register("nic", NicService)


#: The service-time distributions a device may have (``host.devices.NAME.distribution``).
DISTRIBUTIONS = ("modeled", "deterministic", "exponential", "lognormal")

Sampler = Callable[[IORequest, np.random.Generator], float]


class ServiceDistribution:
    """How a device's service times spread around the modeled time of its kind.

    ``modeled`` (the default) is the kind's formula as it is: deterministic for ssd, nvme
    and nic, a random seek and rotation for hdd. ``deterministic`` is the formula without
    its random parts (:meth:`ServiceModel.fixed_seconds`: an hdd's seek and rotation at
    their means). ``exponential`` and
    ``lognormal`` multiply the modeled time by a random factor of mean 1, exponential, or
    lognormal with coefficient of variation ``cv`` (``sigma^2 = ln(1 + cv^2)``,
    ``mu = -sigma^2 / 2``): the time is exponential (lognormal) with the modeled time as
    its mean. (For an hdd the modeled time is itself random, so its times vary more than
    ``cv`` says.) Every draw comes from the device's own random stream.

    Parameters
    ----------
    distribution : str
        One of :data:`DISTRIBUTIONS`.
    cv : float, optional
        The coefficient of variation of ``lognormal`` (and only of it).

    Examples
    --------
    >>> from model.io.requests import IORequest
    >>> r = IORequest(0, guest=1, device=0, size=0, write=False, issued=0)
    >>> draw = ServiceDistribution("exponential").sampler(SsdService())
    >>> times = [draw(r, np.random.default_rng(1)) for _ in range(3)]
    >>> times[0] == times[1], round(times[0] * 1e6, 1)  # one seed: one draw
    (True, 85.8)
    >>> ServiceDistribution.problem("exponential", 0.5)  # the constructor raises it
    ('cv', 'only used with distribution lognormal (this device has exponential)')
    """

    params: ClassVar[dict[str, SpecParam]] = {
        "distribution": (Literal[DISTRIBUTIONS], _field(
            "modeled", "service times around the kind's modeled time: modeled (the "
            "formula: random seek and rotation for hdd), deterministic (its random parts "
            "at their means), exponential or lognormal (mean the modeled time)")),
        "cv": (float | None, _field(None, "coefficient of variation of lognormal service "
                                    "times; standard deviation / mean", gt=0,
                                    le=100)),
    }

    def __init__(self, distribution: str = "modeled", cv: float | None = None) -> None:
        problem = self.problem(distribution, cv)
        if problem is not None:
            raise ConfigError(f"{problem[0]}: {problem[1]}")
        self.distribution = distribution
        self.cv = cv

    @classmethod
    def from_spec(cls, spec: Any) -> ServiceDistribution:
        """The distribution of a scenario's device."""
        return cls(spec.distribution, spec.cv)

    @staticmethod
    def problem(distribution: str, cv: float | None) -> tuple[str, str] | None:
        """``(key, message)`` of what is wrong with the pair, or None.

        Examples
        --------
        >>> ServiceDistribution.problem("lognormal", None)
        ('cv', 'distribution lognormal needs cv (the coefficient of variation, more than 0)')
        """
        if distribution not in DISTRIBUTIONS:
            return "distribution", (f"unknown distribution {distribution!r}; "
                                    f"{valid_choices(distribution, DISTRIBUTIONS)}")
        if distribution == "lognormal" and cv is None:
            return "cv", ("distribution lognormal needs cv (the coefficient of variation, "
                          "more than 0)")
        if distribution != "lognormal" and cv is not None:
            return "cv", ("only used with distribution lognormal (this device has "
                          f"{distribution})")
        return None

    def sampler(self, service: ServiceModel) -> Sampler:
        """A function ``(request, rng) -> seconds`` drawing ``service``'s times."""
        kind = self.distribution
        if kind == "modeled":
            return service.seconds
        if kind == "deterministic":
            return lambda req, rng: service.fixed_seconds(req)
        if kind == "exponential":
            return lambda req, rng: service.seconds(req, rng) * rng.standard_exponential()
        s2 = math.log1p(self.cv * self.cv)
        mu, sigma = -s2 / 2, math.sqrt(s2)
        return lambda req, rng: service.seconds(req, rng) * rng.lognormal(mu, sigma)
