"""Hardware profiles: what each primitive costs on one CPU generation.

A profile is a YAML data file in ``model/profiles/``. Every number carries its
source (a key of ../shared/calibration.md such as AA06 or AG12) or says it is an
estimate. Hardware costs (instructions, transitions, walks) are per profile;
the path lengths of hypervisor and VMM *software* (validation, emulation,
shadow-table upkeep) live once in ``profiles/software.yaml``, measured in cycles
of the reference generation (the AA06 Pentium 4), and each profile scales them
by its ``software_speed``: newer cores run the same code in fewer cycles.

Examples
--------
>>> hw = load_profile("netburst-3.8ghz-vt")
>>> hw.cost("vmentry"), hw.features.ept
(2409, False)
>>> "sandybridge-3.4ghz-ept" in profile_names()
True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from importlib import resources

import yaml

from .errors import ConfigError, UnknownNameError, valid_choices

DEFAULT_PROFILE = "skylake-3.0ghz-ept"

#: Costs every hardware profile must give (cycles).
HARDWARE_COSTS = (
    "alu", "mem", "branch", "call", "ret", "walk_ref", "walk_ref_nested",
    "syscall_insn", "sysret_insn", "iret_insn", "exception", "interrupt_delivery",
    "cr3_load", "invlpg", "port_io", "mmio_uncached", "cli", "apic_timer_write", "hlt",
    "cpuid", "rdtsc", "cr8_write", "cr8_write_tpr_shadow", "pt_page_zero",
    "vmexit", "vmentry", "locked_rmw",
)  # fmt: skip


@dataclass(frozen=True)
class Features:
    """Virtualization features of the CPU."""

    vtx: bool
    ept: bool
    vpid: bool
    tpr_shadow: bool
    apicv: bool


@dataclass(frozen=True)
class Cost:
    """One calibrated number and where it comes from."""

    value: float
    source: str


@dataclass(frozen=True)
class HardwareProfile:
    """A CPU generation: features, TLB geometry, clock and the cost of each primitive.

    Use :func:`load_profile` to get one; :meth:`cost` returns the cycles of a
    primitive, with software path lengths already scaled to this generation.
    """

    name: str
    description: str
    arch: str
    freq_hz: float
    features: Features
    tlb_sets: int
    tlb_ways: int
    software_speed: float
    costs: dict[str, Cost] = field(repr=False)
    params: dict[str, Cost] = field(repr=False)

    def cost(self, name: str) -> int:
        """Cycles of primitive ``name`` on this profile."""
        try:
            return int(round(self.costs[name].value))
        except KeyError:
            raise UnknownNameError("cost parameter", name, sorted(self.costs)) from None

    @property
    def walk_levels(self) -> int:
        """The page-table levels a hardware walk of a 4 KiB translation reads: 4 on
        x86-64 (PML4, PDPT, PD, PT), 2 on x86-32 (page directory and page table: 32-bit
        paging without PAE, Intel SDM vol. 3A section 4.3, as Linux 2.4 and XenoLinux on
        the 2003 testbeds used it). A large page's walk (2 MiB, or 4 MiB without PAE)
        ends one level earlier.

        Examples
        --------
        >>> load_profile("netburst-2.4ghz").walk_levels, load_profile().walk_levels
        (2, 4)
        """
        return 4 if self.arch == "x86_64" else 2

    def param(self, name: str) -> float:
        """A non-cycle parameter (capacities, batch limits)."""
        try:
            return self.params[name].value
        except KeyError:
            raise UnknownNameError("parameter", name, sorted(self.params)) from None

    def source(self, name: str) -> str:
        """Where the number for ``name`` comes from."""
        return (self.costs.get(name) or self.params[name]).source

    def cycles_to_us(self, cycles: float) -> float:
        return cycles / self.freq_hz * 1e6


def profile_names() -> list[str]:
    """Names of the shipped hardware profiles."""
    files = resources.files("model") / "profiles"
    names = (p.name[:-5] for p in files.iterdir() if p.name.endswith(".yaml"))
    return sorted(n for n in names if n != "software")


def _read(name: str) -> dict:
    path = resources.files("model") / "profiles" / f"{name}.yaml"
    return yaml.safe_load(path.read_text())


def _entries(raw: dict, where: str) -> dict[str, Cost]:
    out = {}
    for key, val in raw.items():
        if not (isinstance(val, list) and len(val) == 2 and isinstance(val[1], str)):
            raise ConfigError(f"{where}: {key} must be [value, source], got {val!r}")
        out[key] = Cost(float(val[0]), val[1])
    return out


def _own(raw: dict, section: str, known, what: str, where: str) -> dict[str, Cost]:
    """A profile's ``section`` of software.yaml entries it sets for its era; each key must
    be one software.yaml has (else a ConfigError naming the valid keys)."""
    own = _entries(raw.get(section, {}), where)
    for key in own.keys() - known.keys():
        raise ConfigError(f"{where}: {section}.{key} is not {what}; "
                          f"{valid_choices(key, sorted(known), 'valid keys')}")
    return own


@cache
def load_profile(name: str = DEFAULT_PROFILE) -> HardwareProfile:
    """Load a shipped hardware profile by name.

    Raises
    ------
    UnknownNameError
        If no profile has that name; the message lists the valid ones.
    """
    names = profile_names()
    if name not in names:
        raise UnknownNameError("hardware profile", name, names)
    return profile_from(_read(name), f"profiles/{name}.yaml")


def profile_from(raw: dict, where: str) -> HardwareProfile:
    """A hardware profile from its YAML mapping (what :func:`load_profile` reads from
    ``model/profiles``): hardware ``costs``, the ``software`` costs of software.yaml that
    the profile's era measured (its own cycles, not scaled by ``software_speed``), and the
    ``params`` of software.yaml it sets.

    Raises
    ------
    ConfigError
        A missing hardware cost, an unknown software cost or parameter, a bad value;
        the message names ``where`` and the valid keys.

    Examples
    --------
    >>> raw = _read("nehalem-2.93ghz-ept")  # software_speed 0.5
    >>> profile_from(raw, "mine.yaml").cost("context_switch")  # software.yaml's 2000, scaled
    1000
    >>> raw["software"] = {"context_switch": [1631, "a measurement of this era"]}
    >>> profile_from(raw, "mine.yaml").cost("context_switch")  # its own, unscaled
    1631
    """
    name = raw["name"]
    costs = _entries(raw["costs"], where)
    missing = [c for c in HARDWARE_COSTS if c not in costs]
    if missing:
        raise ConfigError(f"{where}: missing costs {', '.join(missing)}")
    speed = float(raw["software_speed"][0])
    software = _read("software")
    for key, c in _entries(software["costs"], "profiles/software.yaml").items():
        costs[key] = Cost(c.value * speed, f"{c.source} (x software_speed {speed})")
    # the VMM software of the profile's era, where it was measured: its own cycles, unscaled
    costs |= _own(raw, "software", software["costs"], "a software cost", where)
    arch = raw["arch"]
    if arch not in ("x86_32", "x86_64"):
        raise ConfigError(f"{where}: arch {arch!r}; valid choices: x86_32, x86_64")
    # x86-64 PV enters Xen with SYSCALL and leaves with SYSRET; x86-32 PV with int 0x82 / iret.
    wide = arch == "x86_64"
    costs["hypercall_entry"] = costs["syscall_insn" if wide else "exception"]
    costs["hypercall_exit"] = costs["sysret_insn" if wide else "iret_insn"]
    costs["xen_to_guest"] = costs["iret_insn"]
    sets = int(raw["tlb"]["sets"])
    if sets < 1 or sets & (sets - 1):
        raise ConfigError(f"{where}: tlb.sets {sets} must be a power of two")
    # the VMM software's policies (software.yaml's params), which a profile may set for its era
    params = _entries(software["params"], "profiles/software.yaml")
    own = _own(raw, "params", params, "a parameter", where)
    f = raw["features"]
    return HardwareProfile(
        name=name,
        description=raw["description"],
        arch=arch,
        freq_hz=float(raw["freq_mhz"]) * 1e6,
        features=Features(**{k: bool(f[k]) for k in ("vtx", "ept", "vpid", "tpr_shadow", "apicv")}),
        tlb_sets=int(raw["tlb"]["sets"]),
        tlb_ways=int(raw["tlb"]["ways"]),
        software_speed=speed,
        costs=costs,
        params=params | own,
    )
