"""Service models: how long a device takes to serve a request, by device kind.

The device kinds of scenario files (``host.devices.NAME.kind``) are service models
registered in :data:`DEVICE_KINDS`; each declares its scenario parameters
(:attr:`ServiceModel.params`) and its :attr:`ServiceModel.device_class`, the
:data:`DEVICE_CLASSES` entry a workload names in its ``needs``.

Examples
--------
>>> from model.io.requests import IORequest
>>> read = IORequest(0, guest=1, device=0, size=4096, write=False, issued=0)
>>> round(SsdService().seconds(read, None) * 1e6, 3)  # 80 us + 4096 B at 500/8 MB/s
145.536
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from ..registry import Registry
from .arbitration import SpecParam
from .requests import IORequest

#: What a device is to the guests using it: a workload needs a device of a class (an
#: attachment of a device of that class feeds it), whatever the device's kind.
DEVICE_CLASSES = ("disk", "nic")


class ServiceModel:
    """Service time of a request, in seconds.

    Attributes
    ----------
    channels : int
        Requests served at once.
    device_class : str
        One of :data:`DEVICE_CLASSES`.
    params : dict
        The scenario parameters of a registered kind: pydantic field definitions
        ``(type, FieldInfo)`` by key, passed to the constructor by :meth:`from_spec`.
    """

    channels = 1
    device_class = "disk"
    params: ClassVar[dict[str, SpecParam]] = {}

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
        raise NotImplementedError


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
    that starts where the previous one ended does not seek or wait for rotation.
    Defaults: a 7200 rpm SATA disk (estimates from typical data sheets).
    """

    def __init__(
        self,
        rpm: float = 7200,
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


class SsdService(ServiceModel):
    """A flash device: ``channels`` requests in parallel, each a fixed latency plus its
    transfer at the per-channel share of the bandwidth. Defaults: a SATA SSD (estimates);
    an NVMe drive is about ``SsdService(channels=32, read_us=20, write_us=15,
    bandwidth_mb_s=3000)``."""

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
    gap overhead) at line rate."""

    FRAME_OVERHEAD = 78
    device_class = "nic"
    params: ClassVar[dict[str, SpecParam]] = {
        "rate_gbit_s": (float, Field(1.0, ge=0.001, le=1000, description="nic: line rate")),
        "mtu": (int, Field(1500, ge=576, le=9000, description="nic: MTU in bytes")),
    }

    def __init__(
        self, rate_gbit_s: float = 1.0, per_packet_us: float = 1.0, mtu: int = 1500
    ) -> None:
        self.rate = rate_gbit_s * 1e9
        self.per_packet = per_packet_us / 1e6
        self.payload = mtu - 40

    def packets(self, size: int) -> int:
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
