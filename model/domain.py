"""A domain (guest): its OS, virtualization mode, scheduling parameters and vCPUs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import ConfigError
from .guestos import GuestKernel
from .hardware import HardwareProfile
from .kernelparams import N_ROUTINES, KernelParams
from .modes import compile_mode, resolve_mode
from .paging import FRAMES_PER_MB, Memory
from .vcpu import VCpu


@dataclass(frozen=True)
class DomainConfig:
    """What a guest is.

    Parameters
    ----------
    name : str
        Unique name.
    mode : str
        A virtualization mode of :data:`model.modes.MODES` (``native``, ``pv``, ``full``,
        ``hvm``).
    vcpus : int
        Number of virtual CPUs.
    memory_mb : int
        Memory reservation.
    weight : int
        Credit-scheduler weight (1..65535; Xen's default 256).
    cap : int
        Cap in percent of one pCPU; 0 = none.
    modified_os : bool
        Whether the guest kernel is paravirtualized (required by ``pv``).
    affinity : tuple of int, optional
        pCPUs the vCPUs may run on (hard affinity); None = all.

    Examples
    --------
    >>> DomainConfig("web", "pv", weight=512).cap
    0
    """

    name: str
    mode: str = "pv"
    vcpus: int = 1
    memory_mb: int = 256
    weight: int = 256
    cap: int = 0
    modified_os: bool = True
    affinity: tuple[int, ...] | None = None
    kernel: KernelParams = KernelParams()

    def __post_init__(self) -> None:
        if not 1 <= self.weight <= 65535:
            raise ConfigError(f"domain {self.name!r}: weight {self.weight} outside 1..65535")
        if not 0 <= self.cap <= 100 * 256:
            raise ConfigError(f"domain {self.name!r}: cap {self.cap} must be >= 0 (percent)")
        if self.vcpus < 1:
            raise ConfigError(f"domain {self.name!r}: vcpus {self.vcpus} must be >= 1")
        if self.memory_mb < 4:
            raise ConfigError(f"domain {self.name!r}: memory_mb {self.memory_mb} must be >= 4")


class Domain:
    """A running guest: its kernel, compiled mode tables, translation cache and vCPUs."""

    def __init__(
        self,
        config: DomainConfig,
        dom: int,
        hw: HardwareProfile,
        memory: Memory,
        first_frame: int,
        first_uid: int,
    ) -> None:
        self.config = config
        self.name = config.name
        self.dom = dom
        self.hw = hw
        self.memory = memory
        self.mode = resolve_mode(config.mode, hw, modified_os=config.modified_os)
        self.compiled = compile_mode(self.mode, hw)
        self.kernel = GuestKernel(
            dom, memory, first_frame, config.memory_mb * FRAMES_PER_MB, config.kernel,
            smp=config.vcpus > 1,
        )
        # translation cache: per routine [last use, size]; last row [instructions held, clock]
        self.tc = np.zeros((N_ROUTINES + 1, 2), np.int64)
        #: TLB entries tagged by VPID survive world switches (VT-x guests on VPID hardware)
        self.tlb_tagged = self.mode.kind.tlb_tagged(hw)
        self.vcpus = [VCpu(self, i, first_uid + i) for i in range(config.vcpus)]

    @property
    def weight(self) -> int:
        return self.config.weight

    @property
    def cap(self) -> int:
        return self.config.cap
