"""The devices of scenario files: one model per registered device kind.

``host.devices.NAME`` is told apart by its ``kind``, as a workload is by its ``profile``:
each registered kind (:data:`model.io.devices.DEVICE_KINDS`) has its own model, named
``KIND_device``, with its own keys and defaults, so a disk has no NIC keys and
``pvsim schema`` shows each kind's parameters with their defaults and units. A kind's
model holds, in order:

- ``kind`` and ``arbitration``;
- the kind's own parameters (:attr:`ServiceModel.params`: ``channels``, ``read_us``...
  for ssd and nvme, ``rpm``... for hdd, ``rate_gbit_s``, ``mtu``, ``tso``... for nic);
- the fields every device has (those of :class:`DeviceSpec`): the service-time
  ``distribution`` and its ``cv`` (:class:`~model.io.service.ServiceDistribution`), the
  rate ``caps`` (:class:`~model.io.arbitration.TokenBucket`) and the parameters of every
  arbitration policy (``priorities``, ...).

A kind or a policy registered later (a notebook's, a test's) gets its fields at once:
:func:`rebuild` runs at every registration and removal, and changes the models in place
(scenarios made earlier keep their classes, and pickle).

Examples
--------
>>> from model.scenario import parse_scenario
>>> s = parse_scenario("name: t\\nhost: {devices: {d: {kind: nvme}}}\\n"
...                    "guests: [{name: a, workload: {profile: spin}}]")
>>> d = s.host.devices["d"]
>>> type(d).__name__, d.channels, d.read_us, isinstance(d, DeviceSpec)
('nvme_device', 32, 20.0, True)
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field, create_model, model_validator
from pydantic.fields import FieldInfo

from ..errors import ConfigError
from ..io.arbitration import POLICIES, PerGuest, TokenBucket
from ..io.service import DEVICE_KINDS, ServiceDistribution
from ..registry import choice
from .errors import FieldError
from .strict import Name, Strict

#: Marks a device field keyed by guest name (its keys are checked against the guests).
PER_GUEST = "per guest"

#: The keys every device has before its kind's own.
_FIRST = ("kind", "arbitration")


class DeviceSpec(Strict):
    """A shared device, its arbitration policy, and what every device has: its kind's
    model (``KIND_device``) adds the kind's own parameters."""

    kind: choice(DEVICE_KINDS)
    """hdd: seek + rotation + transfer; ssd/nvme: parallel channels; nic: line rate"""
    arbitration: choice(POLICIES) = "fifo"
    """who goes next among waiting requests (weighted_fair: DRR by the guests' weights)"""

    @model_validator(mode="after")
    def _cv_goes_with_lognormal(self) -> DeviceSpec:
        problem = ServiceDistribution.problem(self.distribution, self.cv)
        if problem is not None:
            raise FieldError((problem[0],), problem[1])
        return self


def _common_declarers() -> list:
    """The components that declare the fields every device has, in their order: the
    service distribution, the rate caps any device may have, the arbitration policies."""
    return [ServiceDistribution, TokenBucket, *POLICIES.values()]


def _info(p) -> FieldInfo:
    if isinstance(p, PerGuest):
        return FieldInfo.from_annotated_attribute(
            Annotated[dict[Name, p.value], PER_GUEST],
            Field(default_factory=dict, description=p.description))
    return FieldInfo.from_annotated_attribute(*p)


def _common_fields() -> dict[str, tuple[FieldInfo, object]]:
    """Each field every device has (with its default) and the component declaring it.

    A key declared by two components must be the same declaration (a subclass inherits
    its parent's); anything else is refused as a :class:`ConfigError`.
    """
    out: dict[str, tuple[FieldInfo, object]] = {}
    seen: dict[str, tuple[object, type]] = {}
    for component in _common_declarers():
        for key, p in component.params.items():
            if key in seen:
                if seen[key][0] is not p:
                    raise ConfigError(f"{component.__name__} declares the device field "
                                      f"{key!r}, which {seen[key][1].__name__} declares "
                                      "otherwise")
                continue
            if key in _FIRST:
                raise ConfigError(f"{component.__name__} declares the device field "
                                  f"{key!r}, which every device has")
            seen[key] = (p, component)
            out[key] = (_info(p), component)
    return out


def _kind_fields(name: str, kind: type, common: dict) -> dict[str, FieldInfo]:
    """The fields of kind ``name``'s model after ``kind`` and ``arbitration``: its own
    parameters, then the ``common`` ones. A parameter of the kind that every device has
    already, or that is not a ``(type, Field)`` pair, is refused."""
    out = {}
    for key, p in kind.params.items():
        if key in _FIRST or key in common:
            owner = common[key][1].__name__ if key in common else "every device"
            raise ConfigError(f"device kind {name!r} ({kind.__name__}) declares the device "
                              f"field {key!r}, which {owner} declares for every device")
        if not isinstance(p, tuple):
            raise ConfigError(f"device kind {name!r} ({kind.__name__}): parameter {key!r} "
                              "is not a (type, Field(...)) pair")
        out[key] = _info(p)
    return out


#: kind name -> its model, made once per name and changed in place by rebuild (found by
#: name in this module: scenarios pickle for a sweep's workers)
_MODELS: dict[str, type[DeviceSpec]] = {}
#: fields every device has (key -> the declaring component), as built
_DECLARED: dict[str, object] = {}


def _model(name: str, kind: type) -> type[DeviceSpec]:
    model = _MODELS.get(name)
    if model is None:
        model = create_model(f"{name}_device", __base__=DeviceSpec, __module__=__name__,
                             kind=(Literal[name], Field(description="the device kind")))
        globals()[model.__name__] = model
        _MODELS[name] = model
    first = (kind.__doc__ or name).split("\n\n")[0].replace("\n", " ").strip()
    first = " ".join(first.split())
    model.__doc__ = f"{name}: {first}"
    return model


def rebuild() -> object:
    """Give :class:`DeviceSpec` and every registered kind's model the fields the
    registered components declare, rebuilt in place; return the union of the kinds'
    models, told apart by ``kind``. Nothing changes if a declaration is refused
    (:class:`ConfigError`).
    """
    common = _common_fields()
    kinds = {name: _kind_fields(name, kind, common) for name, kind in DEVICE_KINDS.items()}
    base = {k: f for k, f in DeviceSpec.__pydantic_fields__.items() if k in _FIRST}
    DeviceSpec.__pydantic_fields__ = {**base, **{k: i for k, (i, _) in common.items()}}
    DeviceSpec.model_rebuild(force=True)
    _DECLARED.clear()
    _DECLARED.update({k: owner for k, (_, owner) in common.items()})
    models = []
    for name, own in kinds.items():
        model = _model(name, DEVICE_KINDS[name])
        fields = model.__pydantic_fields__
        model.__pydantic_fields__ = {"kind": fields["kind"], "arbitration": base["arbitration"],
                                     **own, **{k: i for k, (i, _) in common.items()}}
        model.model_rebuild(force=True)
        models.append(model)
    if len(models) == 1:
        return models[0]
    return Annotated[Union[tuple(models)], Field(discriminator="kind")]  # noqa: UP007


def kind_model(kind: str) -> type[DeviceSpec]:
    """The model of device kind ``kind`` (registered).

    Examples
    --------
    >>> list(kind_model("hdd").model_fields)[:4]
    ['kind', 'arbitration', 'rpm', 'track_ms']
    """
    DEVICE_KINDS[kind]  # noqa: B018 (raises UnknownNameError with the choices)
    return _MODELS[kind]


def device_field_owner(key: str, kind: str | None = None) -> object | None:
    """The component that declares device field ``key``: the policy, rate cap or
    distribution class for a field every device has, the service model for a kind's own
    (of ``kind``, or else of the first registered kind that has it), None for ``kind``
    and ``arbitration`` or a key no device has.

    Examples
    --------
    >>> device_field_owner("mtu").__name__, device_field_owner("kind")
    ('NicService', None)
    >>> device_field_owner("channels", "nvme").__name__, device_field_owner("caps").__name__
    ('NvmeService', 'TokenBucket')
    """
    if key in _DECLARED:
        return _DECLARED[key]
    names = [kind] if kind is not None else DEVICE_KINDS.names()
    return next((DEVICE_KINDS[n] for n in names if key in DEVICE_KINDS[n].params), None)


def kinds_with(key: str) -> list[str]:
    """The registered kinds whose own parameters include ``key``.

    Examples
    --------
    >>> kinds_with("channels"), kinds_with("mtu")
    (['ssd', 'nvme'], ['nic'])
    """
    return [n for n, k in DEVICE_KINDS.items() if key in k.params]


def per_guest_device_fields() -> tuple[str, ...]:
    """The device fields keyed by guest name (rate caps, priorities, ...), in order.

    Examples
    --------
    >>> per_guest_device_fields()
    ('caps', 'priorities')
    """
    return tuple(k for k, f in DeviceSpec.model_fields.items() if PER_GUEST in f.metadata)


def forget_former_kind(before: dict, after: dict, kept: set[tuple]) -> None:
    """When an override changes a device's ``kind``, drop from ``after`` (scenario data,
    in place) the parameters of the former kind that hold that kind's defaults, so the
    new kind's defaults apply: a resolved scenario (a results directory's, or one that
    :func:`~model.scenario.with_overrides` dumps) lists every default, and ``--set
    host.devices.d.kind=nvme`` on an ssd must not keep the ssd's 8 channels. A value the
    user gave otherwise is kept (and refused if the new kind has no such key), as is any
    key an override set (``kept``: key paths).

    Examples
    --------
    >>> before = {"host": {"devices": {"d": {"kind": "ssd", "channels": 8, "read_us": 50}}}}
    >>> after = {"host": {"devices": {"d": {"kind": "nvme", "channels": 8, "read_us": 50}}}}
    >>> forget_former_kind(before, after, set())
    >>> after["host"]["devices"]["d"]
    {'kind': 'nvme', 'read_us': 50}
    """
    def devices(data: object) -> dict:
        host = data.get("host") if isinstance(data, dict) else None
        found = host.get("devices") if isinstance(host, dict) else None
        return found if isinstance(found, dict) else {}

    old = devices(before)
    for name, spec in devices(after).items():
        was = old.get(name)
        if not isinstance(spec, dict) or not isinstance(was, dict):
            continue
        former = was.get("kind")
        if former == spec.get("kind") or not isinstance(former, str) or \
                former not in DEVICE_KINDS:
            continue
        for key, p in DEVICE_KINDS[former].params.items():
            if key in spec and ("host", "devices", name, key) not in kept and \
                    isinstance(p, tuple) and _same(spec[key], p[1].default):
                del spec[key]


def _same(value: object, default: object) -> bool:
    """Whether a value of a file is a field's default (``8`` is ``8.0``; ``1`` not ``true``)."""
    if isinstance(value, bool) or isinstance(default, bool):
        return value is default
    return value == default


rebuild()
