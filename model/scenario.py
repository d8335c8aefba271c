"""Scenario files: the host, its devices, the driver domain and the guests, validated.

A scenario is YAML (loaded with :func:`model.yamlsafe.load_yaml`) checked against
pydantic models before anything runs. Every field has an explicit default;
unknown keys are errors; an error names the file, line and column, the key path
(``guests[2].workload.params.think_us``), the bad value and the valid choices.

Examples
--------
>>> s = parse_scenario('''
... name: demo
... duration: 200ms
... guests:
...   - {name: web, mode: pv, workload: {profile: spin}}
... ''', "demo.yaml")
>>> s.duration, s.hardware, s.guests[0].count
(0.2, 'skylake-3.0ghz-ept', 1)
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterable
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)  # fmt: skip

from .errors import ConfigError
from .hardware import DEFAULT_PROFILE, load_profile, profile_names
from .overrides import apply_overrides
from .yamlsafe import YamlError, format_path, load_yaml, read_file

_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
_DURATION = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(s|ms|us|ns)\s*$")


def parse_duration(value: object) -> float:
    """``"2s"``, ``"500ms"``, ``"20us"`` -> seconds. A bare number is refused: the unit
    must be explicit.

    Examples
    --------
    >>> parse_duration("500ms")
    0.5
    """
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            return float(m.group(1)) * _UNITS[m.group(2)]
    raise ValueError(f"{value!r} is not a duration: write a number with a unit "
                     f"({', '.join(_UNITS)}), such as 2s or 500ms")


def format_duration(seconds: float) -> str:
    """The inverse of :func:`parse_duration`, exact: ``0.5`` -> ``"0.5s"``."""
    return f"{seconds!r}s"


Duration = Annotated[float, BeforeValidator(parse_duration), Field(gt=0),
                     PlainSerializer(format_duration, when_used="json"),
                     WithJsonSchema({"type": "string", "pattern": _DURATION.pattern,
                                     "description": "a time with its unit: 2s, 500ms, 20us"})]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True,
                              use_attribute_docstrings=True)


class DeviceSpec(_Strict):
    """A shared device and its arbitration policy."""

    kind: Literal["hdd", "ssd", "nvme", "nic"]
    """hdd: seek + rotation + transfer; ssd/nvme: parallel channels; nic: line rate"""
    arbitration: Literal["fifo", "round_robin", "weighted_fair", "priority"] = "fifo"
    """who goes next among waiting requests (weighted_fair: DRR by the guests' weights)"""
    rate_gbit_s: float = Field(1.0, gt=0, description="nic: line rate")
    mtu: int = Field(1500, ge=576, le=9000, description="nic: MTU in bytes")
    caps: dict[str, tuple[float | None, float | None]] = Field(
        default_factory=dict, description="guest name -> (IOPS, bytes/s) rate caps")
    priorities: dict[str, int] = Field(
        default_factory=dict, description="priority arbitration: guest name -> priority "
        "(higher goes first; unlisted guests 0)")


class HostSpec(_Strict):
    pcpus: int = Field(2, ge=1, le=256)
    """physical CPUs"""
    memory_mb: int = Field(4096, ge=64)
    """machine memory for the guests"""
    scheduler: Literal["credit", "round_robin"] = "credit"
    timeslice_ms: float = Field(30.0, gt=0, le=1000)
    """the credit scheduler's slice (round robin: its quantum)"""
    ratelimit_us: float = Field(1000.0, ge=0, le=500_000)
    """credit: a vCPU runs at least this long before a wake-up may preempt it"""
    devices: dict[str, DeviceSpec] = Field(default_factory=dict)


class DriverDomainSpec(_Strict):
    vcpus: int = Field(1, ge=1, le=64)
    """vCPUs running the backends and device models"""
    weight: int = Field(256, ge=1, le=65535)
    """credit scheduler weight"""
    pinning: list[int] | None = None
    """pCPUs dom0 may run on (hard affinity; guests may still run there)"""
    memory_mb: int = Field(256, ge=16)
    """its memory, taken from the host's"""


#: Which kinds of device each workload profile needs, in the order of its arguments.
NEEDS = {"disk_io": ("disk",), "kernel_build": ("disk",), "oltp_db": ("disk",),
         "file_server": ("disk",), "web_server": ("disk", "nic"), "net_tx": ("nic",),
         "net_rx": ("nic",)}
WORKLOADS = ("spin", "sleeper", "cpu_bound", "disk_io", "kernel_build", "oltp_db",
             "web_server", "file_server", "net_tx", "net_rx")


def _workload_function(profile: str):
    from . import ioworkloads, workloads

    return getattr(workloads, profile, None) or getattr(ioworkloads, profile)


class WorkloadSpec(_Strict):
    profile: Literal[WORKLOADS]  # type: ignore[valid-type]
    """the program each vCPU runs (model/workloads.py, model/ioworkloads.py)"""
    params: dict[str, float | int | bool | str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_params(self) -> WorkloadSpec:
        sig = inspect.signature(_workload_function(self.profile))
        valid = [n for n in sig.parameters if n not in ("att", "disk", "nic")]
        for key in self.params:
            if key not in valid:
                raise ValueError(f"unknown parameter {key!r} of workload {self.profile!r}; "
                                 f"valid: {', '.join(valid) or 'none'}")
        return self


class AttachmentSpec(_Strict):
    device: str
    """a device of host.devices"""
    path: Literal["direct", "passthrough", "pv", "emulated", "virtio", "vhost"] | None = None


class GuestSpec(_Strict):
    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]*$")
    count: int = Field(1, ge=1, le=1024)
    """identical replicas, named NAME-0, NAME-1, ... when more than one"""
    os: Literal["modified", "unmodified"] = "modified"
    mode: Literal["native", "pv", "full", "hvm"] = "pv"
    """pv: hypercalls (modified OS); full: binary translation; hvm: VT-x (+EPT)"""
    vcpus: int = Field(1, ge=1, le=64)
    memory_mb: int = Field(256, ge=16)
    weight: int = Field(256, ge=1, le=65535)
    cap: int = Field(0, ge=0, le=6400)
    """most CPU it may use, percent of one pCPU (0: no cap)"""
    pinning: list[int] | None = Field(None, description="pCPUs its vCPUs may run on "
                                      "(hard affinity); default all")
    workload: WorkloadSpec
    devices: list[AttachmentSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _pv_needs_a_modified_os(self) -> GuestSpec:
        if self.mode == "pv" and self.os == "unmodified":
            raise ValueError("an unmodified OS cannot run in pv mode (paravirtualization needs "
                             "a kernel modified to make hypercalls); use mode full (binary "
                             "translation) or hvm (hardware assist)")
        return self


class RecordSpec(_Strict):
    interval: Duration = "10ms"
    """time-series interval (timeseries.parquet)"""
    requests: bool = True
    """keep every I/O request's stage times (requests.parquet)"""
    trace: bool = False
    """keep the vCPU schedule (schedule.parquet and its graph)"""


#: The most time-series intervals a run may have (memory: rows per metric and entity).
MAX_INTERVALS = 100_000


class Scenario(_Strict):
    """A whole scenario. Build one with :func:`parse_scenario` or :func:`load_scenario`."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    seed: int = Field(0, ge=0)
    """the run's seed; every entity derives its own random stream from it"""
    duration: Duration = "1s"
    hardware: str = DEFAULT_PROFILE
    """a hardware profile (pvsim bench --help lists them)"""
    host: HostSpec = HostSpec()
    driver_domain: DriverDomainSpec = DriverDomainSpec()
    guests: list[GuestSpec] = Field(min_length=1)
    record: RecordSpec = RecordSpec()

    @field_validator("hardware")
    @classmethod
    def _known_hardware(cls, v: str) -> str:
        if v not in profile_names():
            raise ValueError(f"unknown hardware profile {v!r}; valid choices: "
                             f"{', '.join(profile_names())}")
        return v

    @property
    def needs_driver_domain(self) -> bool:
        """Whether some attachment's I/O path runs through the driver domain."""
        from .iopath import DEFAULT_PATH

        return any((a.path or DEFAULT_PATH[g.mode]) not in ("direct", "passthrough")
                   for g in self.guests for a in g.devices)

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        names = [g.name for g in self.guests]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"duplicate guest names: {', '.join(dup)}")
        from .iopath import DEFAULT_PATH, path_problem

        if self.duration / self.record.interval > MAX_INTERVALS:
            raise ValueError(f"record.interval: {format_duration(self.record.interval)} cuts "
                             f"the {format_duration(self.duration)} run into more than "
                             f"{MAX_INTERVALS:,} intervals; use at least "
                             f"{format_duration(self.duration / MAX_INTERVALS)}")

        hw = load_profile(self.hardware)
        for i, g in enumerate(self.guests):
            if g.mode == "hvm" and not hw.features.vtx:
                raise ValueError(f"guests[{i}] ({g.name}): hvm needs VT-x, which {hw.name} "
                                 "lacks; use pv or full")
            kinds = set()
            for j, a in enumerate(g.devices):
                if a.device not in self.host.devices:
                    raise ValueError(f"guests[{i}].devices[{j}].device: unknown device "
                                     f"{a.device!r}; valid choices: "
                                     f"{', '.join(self.host.devices) or '(no devices)'}")
                problem = path_problem(g.mode, a.path or DEFAULT_PATH[g.mode])
                if problem:
                    raise ValueError(f"guests[{i}].devices[{j}].path: {problem} (guest "
                                     f"{g.name!r} is {g.mode})")
                kinds.add("nic" if self.host.devices[a.device].kind == "nic" else "disk")
            for kind in NEEDS.get(g.workload.profile, ()):
                if kind not in kinds:
                    raise ValueError(f"guests[{i}].devices: workload {g.workload.profile!r} "
                                     f"needs a {kind} attached; the host's devices: "
                                     f"{', '.join(self.host.devices) or '(none)'}")
        for d, spec in self.host.devices.items():
            for key in ("caps", "priorities"):
                for g in getattr(spec, key):
                    if g not in names:
                        raise ValueError(f"host.devices.{d}.{key}: unknown guest {g!r}; "
                                         f"valid choices: {', '.join(names)}")
            if spec.priorities and spec.arbitration != "priority":
                raise ValueError(f"host.devices.{d}.priorities: only used with arbitration "
                                 f"priority (this device has {spec.arbitration})")
        need = sum(g.count * g.memory_mb for g in self.guests)
        dom0 = self.driver_domain.memory_mb if self.needs_driver_domain else 0
        if need + dom0 > self.host.memory_mb:
            raise ValueError(f"host.memory_mb: the guests need {need} MB (count x memory_mb)"
                             + (f" and the driver domain {dom0} MB" if dom0 else "")
                             + f", but the host has {self.host.memory_mb} MB")
        pinned = [("driver_domain.pinning", self.driver_domain.pinning)] + [
            (f"guests[{i}].pinning", g.pinning) for i, g in enumerate(self.guests)]
        for where, pins in pinned:
            bad = [p for p in pins or [] if not 0 <= p < self.host.pcpus]
            if bad:
                raise ValueError(f"{where}: pCPU {bad[0]} does not exist (the host has "
                                 f"{self.host.pcpus}: 0..{self.host.pcpus - 1})")
        return self


def scenario_schema() -> dict:
    """The JSON Schema of scenario files (for editor completion and validation).

    Examples
    --------
    >>> sorted(scenario_schema()["properties"])[:3]
    ['driver_domain', 'duration', 'guests']
    """
    schema = Scenario.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "pvsim scenario"
    return schema


class ScenarioError(ConfigError):
    """A scenario that does not validate; the message points at the file position."""


def _messages(err: ValidationError, source: str, where: dict) -> str:
    lines = []
    for e in err.errors():
        loc = tuple(e["loc"])
        path = tuple(p for p in loc if not (isinstance(p, str) and ("[" in p or "-" in p)))
        pos = None
        for n in range(len(path), -1, -1):  # the nearest position the file has
            pos = where.get(path[:n])
            if pos:
                break
        at = pos if isinstance(pos, str) else f"{source}:{pos[0]}:{pos[1]}" if pos else source
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = f"unknown key {path[-1]!r}"
        elif e["type"] == "missing":
            msg = "missing required key"
        elif "input" in e and e["type"] not in ("value_error",) and not isinstance(
                e["input"], dict | list):
            msg += f" (got {e['input']!r})"
        lines.append(f"{at}: {format_path(path) or '(top level)'}: {msg}")
    return "\n".join(lines)


def parse_scenario(text: str | bytes, source: str = "<string>",
                   overrides: Iterable[str] = ()) -> Scenario:
    """Validate scenario YAML ``text``, after applying ``overrides``
    (``dotted.path=value``, see :mod:`model.overrides`).

    Raises
    ------
    ScenarioError
        With every problem found, each as ``file:line:col: key.path: message``.
    """
    try:
        data, where = load_yaml(text, source)
    except YamlError as e:
        raise ScenarioError(str(e)) from None
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}:1:1: a scenario is a mapping of keys (name, guests, "
                            f"...), not a {type(data).__name__}")
    if overrides:
        applied: dict[tuple, str] = {}
        data = apply_overrides(data, overrides, applied)
        for path, text in applied.items():  # errors there point at the override
            where = {k: v for k, v in where.items() if k[:len(path)] != path}
            for n in range(1, len(path) + 1):  # keys the override created, too
                where.setdefault(path[:n], f"--set {text}")
            where[path] = f"--set {text}"
    return _validate(data, source, where)


def with_overrides(s: Scenario, overrides: Iterable[str]) -> Scenario:
    """Scenario ``s`` with ``overrides`` applied, validated again.

    Examples
    --------
    >>> s = parse_scenario("name: t\\nguests: [{name: web, workload: {profile: spin}}]")
    >>> with_overrides(s, ["guests.web.mode=hvm"]).guests[0].mode
    'hvm'
    """
    applied: dict[tuple, str] = {}
    data = apply_overrides(s.model_dump(mode="json"), overrides, applied)
    return _validate(data, f"scenario {s.name}", {p: f"--set {t}" for p, t in applied.items()})


def _validate(data: dict, source: str, where: dict) -> Scenario:
    try:
        return Scenario.model_validate(data)
    except ValidationError as e:
        raise ScenarioError(_messages(e, source, where)) from None


def load_scenario(path: str, overrides: Iterable[str] = ()) -> Scenario:
    """Read and validate a scenario file, applying ``overrides``.

    The file must be a regular file of at most :data:`model.yamlsafe.MAX_BYTES` (1 MiB);
    anything else (``/dev/zero``, a FIFO, a directory, a larger file) is refused before
    it is read.
    """
    try:
        raw = read_file(path, "scenario file")
    except YamlError as e:
        raise ScenarioError(str(e)) from None
    except OSError as e:
        raise ScenarioError(f"{path}: cannot read: {e.strerror}") from None
    return parse_scenario(raw, path, overrides)
