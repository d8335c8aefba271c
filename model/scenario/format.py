"""Scenario files: the host, its devices, the driver domain and the guests, validated.

A scenario is YAML (loaded with :func:`model.scenario.yamlsafe.load_yaml`) checked against
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

import re
from collections.abc import Iterable, Mapping
from typing import Annotated, Literal, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    Field,
    PlainSerializer,
    PlainValidator,
    ValidationError,
    WithJsonSchema,
    create_model,
    field_validator,
    model_validator,
)  # fmt: skip
from pydantic.fields import FieldInfo

from ..app.arrivals import forget_moved_digests
from ..errors import valid_choices
from ..fidelity import EXACT, FIDELITIES
from ..hardware import DEFAULT_PROFILE, profile_names
from ..io.arbitration import POLICIES
from ..io.devices import DEVICE_KINDS
from ..io.paths import PATHS
from ..modes import MODES, OS_KINDS, is_modified
from ..registry import Registry, choice
from ..sched import SCHEDULERS
from ..workload_registry import Footprint, registry
from . import device_specs
from .device_specs import (  # noqa: F401 (the device part of the format, from here too)
    PER_GUEST,
    DeviceSpec,
    device_field_owner,
    per_guest_device_fields,
)
from .errors import FieldError, FieldErrors, ScenarioError, explain
from .header import comment_header, header_of, set_header
from .overrides import apply_overrides
from .strict import RAW as _RAW
from .strict import Name
from .strict import Strict as _Strict
from .yamlsafe import YamlError, load_yaml, read_file

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


#: The longest and shortest times a scenario may give (simulated time is an integer count
#: of cycles: a nanosecond is a few cycles, and a day is already far beyond a useful run).
MAX_SECONDS, MIN_SECONDS = 86_400.0, 1e-9

Duration = Annotated[float, BeforeValidator(parse_duration),
                     Field(ge=MIN_SECONDS, le=MAX_SECONDS),
                     PlainSerializer(format_duration, when_used="json"),
                     WithJsonSchema({"type": "string", "pattern": _DURATION.pattern,
                                     "description": "a time with its unit: 2s, 500ms, 20us"})]


#: The most memory a host or guest may have: 16 TiB, x86-64 Xen's limit (pvsim's cost
#: does not grow with it: only what guests touch is kept).
MAX_MEMORY_MB = 16 << 20

#: The devices of host.devices: one model per registered kind, told apart by ``kind``
#: (:mod:`model.scenario.device_specs`).
DeviceSpecs = device_specs.rebuild()


class HostSpec(_Strict):
    pcpus: int = Field(2, ge=1, le=256)
    """physical CPUs"""
    memory_mb: int = Field(4096, ge=64, le=MAX_MEMORY_MB)
    """machine memory for the guests"""
    scheduler: choice(SCHEDULERS) = "credit"
    """the hypervisor's vCPU scheduler"""
    timeslice_ms: float = Field(30.0, ge=0.01, le=1000)
    """the credit scheduler's slice (round robin: its quantum)"""
    ratelimit_us: float = Field(1000.0, ge=0, le=500_000)
    """credit: a vCPU runs at least this long before a wake-up may preempt it"""
    devices: dict[Name, DeviceSpecs] = Field(default_factory=dict)
    """the shared devices by name: each a kind (hdd, ssd, nvme, nic) and its parameters"""


ModeName = choice(MODES)
PathName = choice(PATHS)


class DriverDomainSpec(_Strict):
    mode: ModeName = "pv"
    """pv: Xen's dom0 (backends woken by event channels); native: the host OS of a hosted
    VMM, which serves the hosted path's devices"""
    vcpus: int = Field(1, ge=1, le=64)
    """vCPUs running the backends and device models"""
    weight: int = Field(256, ge=1, le=65535)
    """credit scheduler weight"""
    pinning: list[int] | None = Field(None, min_length=1)
    """pCPUs dom0 may run on (hard affinity; guests may still run there)"""
    memory_mb: int = Field(256, ge=16, le=MAX_MEMORY_MB)
    """its memory, taken from the host's"""


#: workload name -> (its registered kind, its model): a model is made once per kind, so
#: scenarios validated before another workload was registered still pickle (their
#: classes stay the module's)
_WORKLOAD_MODELS: dict[str, tuple[object, type[BaseModel]]] = {}


def _workload_model(name: str, kind) -> type[BaseModel]:
    made = _WORKLOAD_MODELS.get(name)
    if made is not None and made[0] is kind:
        return made[1]
    first = kind.doc.split("\n\n")[0].replace("\n", " ")
    model = create_model(
        f"{name}_workload", __base__=_Strict, __doc__=f"{name}: {first}",
        __module__=__name__,
        profile=(Literal[name], Field(description="the program each vCPU runs")),
        params=(kind.params, Field(default_factory=kind.params,
                                   description=f"parameters of {name}")))
    globals()[model.__name__] = model  # found by name: scenarios pickle (sweeps)
    _WORKLOAD_MODELS[name] = (kind, model)
    return model


def _workload_spec():
    """One model per registered workload (its ``profile`` and typed ``params``), joined in
    a union told apart by ``profile``: the schema shows each workload's parameters."""
    models = [_workload_model(name, kind) for name, kind in registry().items()]
    return Annotated[Union[tuple(models)], Field(discriminator="profile")]  # noqa: UP007


WorkloadSpec = _workload_spec()




class AttachmentSpec(_Strict):
    device: str
    """a device of host.devices"""
    path: PathName | None = None
    """the I/O path to the device; null: the guest's mode's default (pv: the split
    driver; hvm: an emulated device; native: direct)"""


class GuestSpec(_Strict):
    name: Name
    """the guest entry's name (its replicas are NAME-0, NAME-1, ...)"""
    count: int = Field(1, ge=1, le=1024)
    """identical replicas, named NAME-0, NAME-1, ... when more than one"""
    os: Literal[OS_KINDS] = "modified"
    """the guest's kernel: modified (may be paravirtualized) or unmodified"""
    mode: ModeName = "pv"
    """pv: hypercalls (modified OS); full: binary translation; hvm: VT-x (+EPT)"""
    vcpus: int = Field(1, ge=1, le=64)
    """virtual CPUs of each replica"""
    memory_mb: int = Field(256, ge=16, le=MAX_MEMORY_MB)
    """memory of each replica"""
    weight: int = Field(256, ge=1, le=65535)
    """credit scheduler weight (its share of contended CPU, relative to the others')"""
    cap: int = Field(0, ge=0, le=6400)
    """most CPU it may use, percent of one pCPU (0: no cap)"""
    pinning: list[int] | None = Field(None, min_length=1, description="pCPUs its vCPUs may run on "
                                      "(hard affinity); default all")
    workload: WorkloadSpec
    """what the guest runs: a workload profile and its params"""
    devices: list[AttachmentSpec] = Field(default_factory=list)
    """the host devices the guest reaches, each through an I/O path"""

    @model_validator(mode="after")
    def _pv_needs_a_modified_os(self) -> GuestSpec:
        problem = MODES[self.mode].problem(modified_os=is_modified(self.os))
        if problem is not None:
            raise FieldError(("mode",), problem)
        return self


#: What ``record.trace`` may be: ``false``; ``true`` (the vCPU schedule); ``perfetto``
#: (the schedule and a timeline trace for Perfetto, :mod:`analysis.perfetto`).
TRACE_CHOICES = (False, True, "perfetto")


def _trace_choice(value: object) -> bool | str:
    if isinstance(value, bool) or value == "perfetto":
        return value
    raise ValueError(f"{value!r} is not a trace choice; valid choices: true (the vCPU "
                     "schedule), false (none), perfetto (the schedule and trace.json.gz, a "
                     "timeline for ui.perfetto.dev or chrome://tracing)")


TraceChoice = Annotated[Union[bool, Literal["perfetto"]],  # noqa: UP007
                        PlainValidator(_trace_choice),
                        WithJsonSchema({"anyOf": [{"type": "boolean"},
                                                  {"const": "perfetto"}]})]


class RecordSpec(_Strict):
    interval: Duration = "10ms"
    """time-series interval (timeseries.parquet)"""
    requests: bool = True
    """keep every I/O request's stage times (requests.parquet) and every application
    request's times and parts (app_requests.parquet); false keeps only what the summary
    reads (its figures are the same), so memory does not grow with simulated time"""
    trace: TraceChoice = False
    """true: keep the vCPU schedule (schedule.parquet and its graph); perfetto: that and
    trace.json.gz, a timeline of the run (pCPUs, devices, I/O requests and their stages,
    the vCPUs' events, queue and CPU counters) for ui.perfetto.dev or chrome://tracing
    (pvsim trace DIR writes one for an earlier run); false: neither"""
    warmup: Duration | None = None
    """the start of the run left out of every statistic (CPU, transitions, devices, I/O
    and application requests: those issued or arrived in it are not counted); the time
    series and the request tables still show it"""


#: The most time-series intervals a run may have (memory: rows per metric and entity).
MAX_INTERVALS = 100_000


class Scenario(_Strict):
    """A whole scenario. Build one with :func:`parse_scenario` or :func:`load_scenario`
    (or ``Scenario(**data)``: every way raises :class:`ScenarioError` on a problem)."""

    def __init__(self, **data: object) -> None:
        if _RAW.get():  # _validate wants pydantic's own error, to place it in the file
            super().__init__(**data)
            return
        try:
            super().__init__(**data)
        except ValidationError as e:
            raise ScenarioError(explain(e, "Scenario(...)", {}, Scenario)) from None

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    """the scenario's name (results directories and titles carry it)"""
    seed: int = Field(0, ge=0, le=2**64 - 1)
    """the run's seed; every entity derives its own random stream from it"""
    duration: Duration = "1s"
    """simulated time to run"""
    hardware: str = DEFAULT_PROFILE
    """a hardware profile (pvsim bench --help lists them)"""
    host: HostSpec = HostSpec()
    """the physical machine: pCPUs, memory, scheduler, shared devices"""
    driver_domain: DriverDomainSpec = DriverDomainSpec()
    """the privileged domain (dom0) that runs the backends and device models"""
    guests: list[GuestSpec] = Field(min_length=1)
    """the guest entries, each with count replicas"""
    record: RecordSpec = RecordSpec()
    """what the run keeps besides the summary: time series, requests, trace, warm-up"""
    fidelity: Literal[FIDELITIES] = EXACT
    """exact: the instruction-level engine (the ground truth); fast: request-level bursts
    whose costs the exact engine measured (model/fast: what it runs, and its bounds)"""

    @field_validator("hardware")
    @classmethod
    def _known_hardware(cls, v: str) -> str:
        if v not in profile_names():
            raise ValueError(f"unknown hardware profile {v!r}; "
                             f"{valid_choices(v, profile_names())}")
        return v

    @property
    def total_vcpus(self) -> int:
        """Every vCPU of the host: the guests' replicas', and the driver domain's if any."""
        dd = self.driver_domain.vcpus if self.needs_driver_domain else 0
        return sum(g.count * g.vcpus for g in self.guests) + dd

    @property
    def footprint(self) -> Footprint:
        """What the processes of every guest (and the driver domain's backends) hold at
        once: the estimate the host's page-table pools are sized from."""
        out = Footprint(0, 0, 0)
        for g in self.guests:
            out += registry()[g.workload.profile].footprint(g.workload.params, g.vcpus) * \
                g.count
        if self.needs_driver_domain:
            out += Footprint.of(self.driver_domain.vcpus)
        return out

    def components(self) -> list[tuple[Registry, str]]:
        """Every registered component the scenario names, as ``(registry, name)``: its
        modes, I/O paths, workloads, device kinds, arbitration policies and scheduler.

        Examples
        --------
        >>> s = parse_scenario("name: t\\nguests: [{name: a, workload: {profile: spin}}]")
        >>> sorted({(r.what, n) for r, n in s.components()})
        [('scheduler', 'credit'), ('virtualization mode', 'pv'), ('workload', 'spin')]
        """
        out: list[tuple[Registry, str]] = [(SCHEDULERS, self.host.scheduler)]
        for d in self.host.devices.values():
            out += [(DEVICE_KINDS, d.kind), (POLICIES, d.arbitration)]
        for g in self.guests:
            out += [(MODES, g.mode), (registry(), g.workload.profile)]
            out += [(PATHS, a.path) for a in g.devices if a.path is not None]
        return out

    def resolved(self) -> dict:
        """The scenario as data (JSON types) with every default filled in, the I/O path
        of each attachment included: its mode's default where none is given (what
        ``scenario.resolved.yaml`` holds; the scenario itself keeps ``path: null`` so
        that changing a guest's mode alone stays valid).

        Examples
        --------
        >>> s = parse_scenario("name: t\\nhost: {devices: {d: {kind: ssd}}}\\n"
        ...                    "guests: [{name: a, mode: hvm, workload: {profile: spin},"
        ...                    " devices: [{device: d}]}]")
        >>> s.guests[0].devices[0].path, s.resolved()["guests"][0]["devices"][0]["path"]
        (None, 'emulated')
        """
        out = self.model_dump(mode="json")
        for g, dumped in zip(self.guests, out["guests"], strict=True):
            for a, att in zip(g.devices, dumped["devices"], strict=True):
                att["path"] = a.path or MODES[g.mode].default_path
        return out

    def identity(self) -> dict:
        """What the scenario is, as data, for hashes and cache keys: :meth:`resolved`,
        with a trace named by its content rather than by the path of its file (the same
        run on every machine). An attachment without a path and one naming its mode's
        default are the same run, and have the same identity.

        Examples
        --------
        >>> s = parse_scenario("name: t\\nguests: [{name: a, workload: {profile: spin}}]")
        >>> s.identity() == s.model_dump(mode="json")
        True
        """
        from ..app.arrivals import without_trace_paths

        return without_trace_paths(self.resolved())

    @property
    def header(self) -> str | None:
        """The comment block the scenario's file opens with (the question it asks), kept
        by :func:`parse_scenario` and :func:`with_overrides`; not part of its identity
        (see :mod:`model.scenario.header`).

        Examples
        --------
        >>> parse_scenario("# How fast?\\nname: t\\nguests: [{name: a, workload: "
        ...                "{profile: spin}}]").header
        'How fast?'
        """
        return header_of(self)

    @property
    def needs_driver_domain(self) -> bool:
        """Whether some attachment's I/O path runs through the driver domain."""
        return any(PATHS[a.path or MODES[g.mode].default_path].via_driver_domain
                   for g in self.guests for a in g.devices)

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        from .checks import cross_field_problems

        problems = cross_field_problems(self)
        if problems:
            raise FieldErrors(problems)
        return self


def _rebuild_workload_spec() -> None:
    """Give ``guests[i].workload`` the union of the workloads registered now, and rebuild
    the models that hold it: called whenever a workload is registered or removed after
    import (a notebook's, a test's), like :func:`_rebuild_device_spec`."""
    global WorkloadSpec
    WorkloadSpec = _workload_spec()
    GuestSpec.__pydantic_fields__["workload"] = FieldInfo.from_annotated_attribute(
        WorkloadSpec, GuestSpec.__pydantic_fields__["workload"])  # its description kept
    for model in (GuestSpec, Scenario):
        model.model_rebuild(force=True)


def _rebuild_device_spec() -> None:
    """Give every registered device kind its model with the fields the registered
    components declare (:func:`model.scenario.device_specs.rebuild`), ``host.devices``
    their union, and rebuild the models that hold it: called whenever a device kind or an
    arbitration policy is registered or removed, so a component registered later (a
    notebook's, a test's) is validated and shown by ``pvsim schema`` like a shipped one.
    The classes stay the same objects (instances and imports keep working)."""
    global DeviceSpecs
    DeviceSpecs = device_specs.rebuild()
    HostSpec.__pydantic_fields__["devices"] = FieldInfo.from_annotated_attribute(
        dict[Name, DeviceSpecs], HostSpec.__pydantic_fields__["devices"])
    for model in (HostSpec, Scenario):
        model.model_rebuild(force=True)


_rebuild_device_spec()
DEVICE_KINDS.subscribe(_rebuild_device_spec)
POLICIES.subscribe(_rebuild_device_spec)
registry().subscribe(_rebuild_workload_spec)


def scenario_schema() -> dict:
    """The JSON Schema of scenario files (for editor completion and validation).

    Examples
    --------
    >>> sorted(scenario_schema()["properties"])[:4]
    ['driver_domain', 'duration', 'fidelity', 'guests']
    """
    schema = Scenario.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "pvsim scenario"
    return schema


def parse_scenario(text: str | bytes | Mapping, source: str = "<string>",
                   overrides: Iterable[str] = ()) -> Scenario:
    """Validate scenario YAML ``text``, after applying ``overrides``
    (``dotted.path=value``, see :mod:`model.scenario.overrides`).

    Raises
    ------
    ScenarioError
        With every problem found, each as ``file:line:col: key.path: message``.
    """
    header = comment_header(text) if isinstance(text, str | bytes) else None
    if isinstance(text, Mapping):  # already data (a dict of the file's keys)
        data, where = dict(text), {}
    elif isinstance(text, str | bytes):
        try:
            data, where = load_yaml(text, source)
        except YamlError as e:
            raise ScenarioError(str(e)) from None
    else:
        raise ScenarioError(f"{source}: a scenario is YAML text (str or bytes) or a mapping, "
                            f"not {type(text).__name__}")
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}:1:1: a scenario is a mapping of keys (name, guests, "
                            f"...), not a {type(data).__name__}")
    if overrides:
        applied: dict[tuple, str] = {}
        before, data = data, apply_overrides(data, overrides, applied)
        device_specs.forget_former_kind(before, data, set(applied))
        for path, text in applied.items():  # errors there point at the override
            where = {k: v for k, v in where.items() if k[:len(path)] != path}
            for n in range(1, len(path) + 1):  # keys the override created, too
                where.setdefault(path[:n], f"--set {text}")
            where[path] = f"--set {text}"
    return set_header(_validate(data, source, where), header)


def with_overrides(s: Scenario, overrides: Iterable[str] | Mapping[str, object] = (),
                   **fields: object) -> Scenario:
    """Scenario ``s`` with ``overrides`` applied, validated again: texts
    ``dotted.path=value`` as ``--set`` takes them, or a mapping of dotted paths to values;
    and top-level ``fields`` as keywords. An override that changes a device's kind gives
    it the new kind's defaults (see :func:`~model.scenario.device_specs.forget_former_kind`);
    one that names another trace file has it read and pinned anew
    (:func:`~model.app.arrivals.forget_moved_digests`). The result is a new, valid scenario
    or a :class:`ScenarioError` naming the override.

    Examples
    --------
    >>> s = parse_scenario("name: t\\nguests: [{name: web, workload: {profile: spin}}]")
    >>> with_overrides(s, ["guests.web.mode=hvm"]).guests[0].mode
    'hvm'
    >>> t = with_overrides(s, {"guests.web.count": 8}, duration="50ms")
    >>> t.guests[0].count, t.duration
    (8, 0.05)
    """
    applied: dict[tuple, str] = {}
    before = s.model_dump(mode="json")
    data = apply_overrides(before, overrides, applied)
    if fields:
        data = apply_overrides(data, fields, applied)
    device_specs.forget_former_kind(before, data, set(applied))
    forget_moved_digests(before, data)
    return set_header(_validate(data, f"scenario {s.name}",
                                {p: f"--set {t}" for p, t in applied.items()}), s.header)


def _validate(data: dict, source: str, where: dict) -> Scenario:
    from pathlib import Path

    from ..app.arrivals import SCENARIO_DIR

    token = _RAW.set(True)
    here = SCENARIO_DIR.set(Path(source).parent if Path(source).is_file() else None)
    try:
        return Scenario.__pydantic_validator__.validate_python(data)
    except ValidationError as e:
        raise ScenarioError(explain(e, source, where, Scenario)) from None
    finally:
        _RAW.reset(token)
        SCENARIO_DIR.reset(here)


def load_scenario(path: str, overrides: Iterable[str] = ()) -> Scenario:
    """Read and validate a scenario file, applying ``overrides``.

    The file must be a regular file of at most :data:`model.scenario.yamlsafe.MAX_BYTES` (1 MiB);
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
