"""The workload registry: every program a scenario can give a guest, with its parameters
(typed, with units, ranges and defaults) and the devices it needs.

A workload is declared where it is written, with :func:`workload`::

    @workload(needs=("disk",),
              size=Param("bytes per request", ge=1, le=64 << 20))
    def disk_io(att, size: int = 4096): ...

Its parameter model (a pydantic model, so scenario files are validated against it and
``pvsim schema`` shows it to editors) is built from the function's signature, which
gives each parameter's name, type and default (written once, in the signature), and
from the declared :class:`Param` (what it means, its unit, its range). Every
parameter of the signature must be declared; the arguments before them, without
defaults, are the attached devices, one per entry of ``needs``.

Examples
--------
>>> spec = registry()["sleeper"]
>>> spec.needs, spec.params().sleep_us
((), 2000.0)
>>> from model.workloads import sleeper
>>> try:
...     sleeper(sleep_us=-1)
... except ConfigError as e:
...     print(str(e)[:59])
workload sleeper: sleep_us: -1 is out of range; valid: more
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, model_validator

from .errors import ConfigError
from .io.devices import DEVICE_CLASSES
from .registry import Registry


@dataclass(frozen=True)
class Param:
    """What a workload parameter means (with its unit) and its valid range."""

    doc: str
    ge: float | None = None
    gt: float | None = None
    le: float | None = None


class WorkloadParams(BaseModel):
    """Base of every workload's parameter model: unknown keys are errors; numbers are
    numbers (``8``, not ``"8"`` or ``true``), and finite."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, validate_default=True, strict=True, allow_inf_nan=False
    )


@dataclass(frozen=True)
class WorkloadKind:
    """A registered workload.

    Attributes
    ----------
    name : str
        Its name in scenario files (``profile:``).
    function : callable
        ``function(*devices, **params)`` returns the program each vCPU runs.
    params : type[WorkloadParams]
        The parameter model.
    needs : tuple of str
        Device classes (:data:`model.io.devices.DEVICE_CLASSES`) of its device arguments,
        in order.
    pages : callable, optional
        Guest memory pages the program keeps resident beyond its processes' own, from
        its parameters (checked against the guest's memory before the run).
    processes : int or callable
        Address spaces each vCPU's program holds at once (a forking program: the parent,
        the child and the image an exec builds; a server: its workers), for sizing the
        host's page-table pool; a callable takes the parameters.
    """

    name: str
    function: Callable
    params: type[WorkloadParams]
    needs: tuple[str, ...] = ()
    pages: Callable[[WorkloadParams], int] | None = None
    processes: int | Callable[[WorkloadParams], int] = 1

    def resident_pages(self, params: WorkloadParams) -> int:
        """Pages the program's data keeps resident (its processes' own aside)."""
        return self.pages(params) if self.pages is not None else 0

    def footprint(self, params: WorkloadParams, vcpus: int) -> Footprint:
        """What one guest running this program on ``vcpus`` vCPUs holds at once."""
        n = self.processes(params) if callable(self.processes) else self.processes
        return Footprint.of(vcpus, n, self.resident_pages(params))

    @property
    def doc(self) -> str:
        return inspect.getdoc(self.function) or ""

    def program(self, devices: list, params: WorkloadParams):
        """The program of one vCPU: the function applied to the devices and parameters."""
        return self.function(*devices, **_arguments(params))

    def bind(self, attachments: Mapping[str, Any], params: WorkloadParams | None = None):
        """The program of one vCPU fed by ``attachments`` (device class -> attachment):
        one of each class it :attr:`needs`, in that order; ``params`` by default its
        defaults.

        Examples
        --------
        >>> registry()["net_tx"].bind({"disk": "d", "nic": "n"}).__closure__ is not None
        True
        """
        return self.program(
            [attachments[n] for n in self.needs], self.params() if params is None else params
        )


@dataclass(frozen=True)
class Footprint:
    """What the processes of some vCPUs hold at once: guest pages (4 KiB) resident,
    address spaces, and page-table pages. An estimate, from which memory is checked before
    the run and the host's pools are sized: each vCPU runs ``processes`` processes with
    the kernel's private data and stack (:class:`model.kernelparams.KernelParams`) and
    ``data`` pages of the workload's own; text is shared; a process maps three regions,
    seven tables, plus a leaf table per 512 pages of its data."""

    pages: int
    spaces: int
    tables: int

    @classmethod
    def of(cls, vcpus: int, processes: int = 1, data: int = 0) -> Footprint:
        from .kernelparams import KernelParams

        kp = KernelParams()
        return cls(
            pages=vcpus * (kp.data_pages + kp.stack_pages + data) + kp.text_pages,
            spaces=1 + vcpus * processes,
            tables=1 + vcpus * processes * (8 + data // 512),
        )

    def __add__(self, other: Footprint) -> Footprint:
        return Footprint(
            self.pages + other.pages, self.spaces + other.spaces, self.tables + other.tables
        )

    def __mul__(self, n: int) -> Footprint:
        return Footprint(self.pages * n, self.spaces * n, self.tables * n)


_REGISTRY: Registry[WorkloadKind] = Registry("workload")


def _arguments(params: WorkloadParams) -> dict[str, Any]:
    """The keyword arguments of a workload: its parameters' values, a nested model (a
    server's ``arrivals``) as the model itself."""
    return {name: getattr(params, name) for name in type(params).model_fields}


def workload(
    needs: tuple[str, ...] = (),
    check: Callable | None = None,
    pages: Callable | None = None,
    processes: int | Callable = 1,
    **declared: Param,
) -> Callable:
    """Register the decorated function as a workload (see the module docstring).

    ``check(params)`` may raise ValueError for a combination of values that is invalid
    (it becomes a validation error of the scenario); ``pages(params)`` gives the guest
    memory pages the program keeps resident.
    """
    for kind in needs:
        if kind not in DEVICE_CLASSES:
            raise ValueError(f"unknown device class {kind!r}; valid: {', '.join(DEVICE_CLASSES)}")

    def register(fn: Callable) -> Callable:
        hints = typing.get_type_hints(fn, include_extras=True)
        sig = inspect.signature(fn)
        devices = [p for p in sig.parameters.values() if p.default is inspect.Parameter.empty]
        if len(devices) != len(needs):
            raise TypeError(f"{fn.__name__}: {len(devices)} device arguments but needs {needs}")
        fields = {}
        for p in sig.parameters.values():
            if p.default is inspect.Parameter.empty:
                continue
            if p.name not in declared:
                raise TypeError(f"{fn.__name__}: parameter {p.name!r} is not declared")
            d = declared[p.name]
            info = Field(description=d.doc, ge=d.ge, gt=d.gt, le=d.le)
            fields[p.name] = (Annotated[hints[p.name], info], p.default)
        extra = set(declared) - set(fields)
        if extra:
            raise TypeError(f"{fn.__name__}: declared but not parameters: {sorted(extra)}")
        validators = {}
        if check is not None:

            def _check(self):
                check(self)
                return self

            validators["check"] = model_validator(mode="after")(_check)
        model = create_model(
            f"{fn.__name__}_params",
            __base__=WorkloadParams,
            __doc__=f"Parameters of the {fn.__name__} workload.",
            __module__=__name__,
            __validators__=validators,
            **fields,
        )

        @functools.wraps(fn)
        def validated(*args, **kwargs):
            bound = sig.bind(*args, **kwargs)
            given = {k: v for k, v in bound.arguments.items() if k in fields}
            try:
                params = model(**given)
            except ValidationError as e:  # worded as for a scenario file
                from .scenario.errors import explain

                raise ConfigError(explain(e, f"workload {fn.__name__}", {}, model)) from None
            return fn(*[bound.arguments[p.name] for p in devices], **_arguments(params))

        _REGISTRY.register(
            fn.__name__, WorkloadKind(fn.__name__, fn, model, tuple(needs), pages, processes)
        )
        return validated

    return register


def __getattr__(name: str) -> type[WorkloadParams]:
    """Parameter models by name (``sleeper_params``), so their instances pickle."""
    if not name.endswith("_params") or name.startswith("_"):
        raise AttributeError(name)  # the import system asks for __path__ and the like
    for kind in registry().values():
        if kind.params.__name__ == name:
            return kind.params
    raise AttributeError(name)


def registry() -> Registry[WorkloadKind]:
    """Every registered workload by name (the shipped ones are registered on first use)."""
    from . import workloads  # noqa: F401 - their decorators fill the registry
    from .app import workloads as app_workloads  # noqa: F401
    from .io import workloads as io_workloads  # noqa: F401

    return _REGISTRY
