r"""Validation errors of scenario files, explained: each problem at its file position, with
its key path, the bad value and what is valid.

pydantic reports an error at a location of its own (validator steps, the tags of
discriminated unions, dictionary keys); :func:`explain` turns it into the key path the
file has (``guests[2].workload.params.size``), finds the nearest position the loader
recorded, and words the message for a person: the valid range and unit of a number,
the valid keys of a mapping, the valid choices of a name. Cross-field problems found by
a model validator are raised as :class:`FieldError`, at the field they are about.

Examples
--------
>>> from model.scenario import parse_scenario
>>> try:
...     parse_scenario("name: x\nguests: [{name: a, count: 0, workload: {profile: spin}}]",
...                    "x.yaml")
... except ScenarioError as e:
...     print(str(e)[:60])
x.yaml:2:27: guests[0].count: 0 is out of range; valid: 1 to
"""

from __future__ import annotations

import re
import types
import typing
from typing import Annotated, Union

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from ..errors import ConfigError, valid_choices
from ..io.service import DEVICE_KINDS
from ..workload_registry import registry
from .yamlsafe import format_path

#: Guest and device names: they become file names, table values and graph labels.
NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]{0,63}$"


class FieldError(ValueError):
    """A cross-field problem, raised by a model validator, at the field it is about
    (``path``, relative to the model), so that the message points at that field's line."""

    def __init__(self, path: tuple, message: str) -> None:
        super().__init__(message)
        self.path = path


class FieldErrors(ValueError):
    """Several :class:`FieldError` at once."""

    def __init__(self, problems: list[FieldError]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems


class ScenarioError(ConfigError):
    """A scenario that does not validate; the message points at the file position."""


_BOUNDS = ("greater_than", "greater_than_equal", "less_than", "less_than_equal")
_INTERNAL = re.compile(r"^[a-z-]*\[.*\]$")  # pydantic's steps in a location ([key], ...)


def _unwrap(t: object) -> object:
    """``Annotated[X, ...]`` and ``X | None`` -> ``X``."""
    while True:
        origin = typing.get_origin(t)
        if origin is Annotated:
            t = typing.get_args(t)[0]
            continue
        if origin in (Union, types.UnionType):
            args = [a for a in typing.get_args(t) if a is not type(None)]
            if len(args) == 1:
                t = args[0]
                continue
        return t


def _resolve(loc: tuple, root: type[BaseModel]) -> tuple[tuple, object, FieldInfo | None]:
    """The key path of a pydantic error location (without pydantic's validator steps and
    the tags of discriminated unions), the type found there, and the model field that
    the last key names (None if it is not one)."""
    path: list = []
    t: object = root
    field = None
    for part in loc:
        if isinstance(part, str) and _INTERNAL.match(part):
            continue
        t = _unwrap(t)
        if isinstance(t, type) and issubclass(t, BaseModel):
            field = t.model_fields.get(part) if isinstance(part, str) else None
            path.append(part)
            t = field.annotation if field is not None else None
            continue
        origin, args = typing.get_origin(t), typing.get_args(t)
        if origin in (Union, types.UnionType):
            tags = {_model_tag(m): m for m in args}
            if part in tags:  # the tag of a discriminated union, not a key
                t = tags[part]
                continue
        path.append(part)
        t = (args[-1] if origin in (list, dict) and args else args[part]
             if origin is tuple and isinstance(part, int) and part < len(args) else None)
        if typing.get_origin(t) in (Union, types.UnionType):  # X | None: X
            t = next((a for a in typing.get_args(t) if a is not type(None)), t)
        field = FieldInfo.from_annotation(t) if typing.get_origin(t) is Annotated else None
    return tuple(path), _unwrap(t), field


def _num(x: float) -> str:
    if isinstance(x, int):
        return f"{x:,}"
    return f"{int(x):,}" if float(x).is_integer() and abs(x) < 1e15 else f"{x:g}"


def _out_of_range(value: object, field: FieldInfo) -> str:
    """``"-4096 is out of range; valid: 1 to 67,108,864 (bytes per request)"``."""
    low = high = None
    strict_low = False
    metadata = list(field.metadata)
    for a in typing.get_args(field.annotation):  # an optional field: X | None
        if typing.get_origin(a) is Annotated:
            metadata += FieldInfo.from_annotation(a).metadata
    for m in metadata:
        if getattr(m, "ge", None) is not None or getattr(m, "gt", None) is not None:
            strict_low = getattr(m, "gt", None) is not None
            low = m.gt if strict_low else m.ge
        if getattr(m, "le", None) is not None or getattr(m, "lt", None) is not None:
            high = m.le if getattr(m, "le", None) is not None else m.lt
    if low is None:
        span = f"at most {_num(high)}"
    elif strict_low:
        span = f"more than {_num(low)}" + (f" and at most {_num(high)}" if high is not None
                                           else "")
    else:
        span = f"{_num(low)} to {_num(high)}" if high is not None else f"{_num(low)} or more"
    what = (field.description or "").split(";")[0].strip()
    about = f" ({what})" if what else ""
    return f"{value!r} is out of range; valid: {span}{about}"


#: The keys that tell the members of a union apart: a workload's, a device's.
_TAGS = ("profile", "kind")


def _model_tag(m: object, keys: tuple[str, ...] = _TAGS) -> object:
    """The tag of a member of a discriminated union (its one ``Literal`` value)."""
    if not (isinstance(m, type) and issubclass(m, BaseModel)):
        return None
    for key in keys:
        field = m.model_fields.get(key)
        args = typing.get_args(field.annotation) if field is not None else ()
        if len(args) == 1 and typing.get_origin(field.annotation) is typing.Literal:
            return args[0]
    return None


def _unknown_device_key(key: object, kind: str, valid: str) -> str:
    """``unknown key 'mtu' for kind ssd; valid keys: ... ('mtu' is a key of kind nic)``."""
    others = [n for n, k in DEVICE_KINDS.items() if key in k.params and n != kind]
    hint = f" ({key!r} is a key of kind {' and '.join(others)})" if others else ""
    return f"unknown key {key!r} for kind {kind}; {valid_choices(key, valid, 'valid keys')}{hint}"


def _tags_of(loc: tuple, root: type[BaseModel]) -> str:
    """The tags of the discriminated union at ``loc``, comma separated."""
    t = _resolve(loc, root)[1]
    return ", ".join(str(_model_tag(m)) for m in typing.get_args(t)) if typing.get_origin(
        t) in (Union, types.UnionType) else ""


def _about(loc: tuple, root: type[BaseModel]) -> str:
    """``": what the field at loc is"``, from its description (empty if none)."""
    field = _resolve(loc, root)[2]
    return f": {field.description}" if field is not None and field.description else ""


def _problems(e: dict, root: type[BaseModel]) -> list[tuple[tuple, str]]:
    """(key path, message) of one pydantic error: a cross-field error gives one per
    :class:`FieldError`, at the field it names."""
    path, t, field = _resolve(tuple(e["loc"]), root)
    error = e.get("ctx", {}).get("error")
    if isinstance(error, FieldErrors | FieldError):
        group = error.problems if isinstance(error, FieldErrors) else [error]
        return [((*path, *p.path), str(p)) for p in group]
    msg = e["msg"].removeprefix("Value error, ")
    if e["type"] == "extra_forbidden":
        _, parent, _ = _resolve(tuple(e["loc"])[:-1], root)
        valid = list(parent.model_fields) if isinstance(parent, type) and issubclass(
            parent, BaseModel) else []
        kind = next((n for n, k in registry().items() if k.params is parent), None)
        device = _model_tag(parent, ("kind",))
        if kind is not None:
            msg = (f"unknown parameter {path[-1]!r} of workload {kind!r}; "
                   + (valid_choices(path[-1], valid, "valid") if valid else "valid: none"))
        elif device is not None:
            msg = _unknown_device_key(path[-1], device, valid)
        else:
            msg = f"unknown key {path[-1]!r}" + (
                f"; {valid_choices(path[-1], valid, 'valid keys')}" if valid else "")
    elif e["type"] == "union_tag_invalid" and e["ctx"]["discriminator"] == "'kind'" \
            and path[:2] == ("host", "devices"):
        path = (*path, "kind")
        kind = e['input'].get('kind')
        msg = f"unknown device kind {kind!r}; {valid_choices(kind, DEVICE_KINDS)}"
    elif e["type"] == "union_tag_not_found" and e["ctx"]["discriminator"] == "'kind'" \
            and path[:2] == ("host", "devices"):
        msg = f"a device needs a kind; valid choices: {', '.join(DEVICE_KINDS)}"
    elif e["type"] == "union_tag_invalid" and "kind" in e["ctx"]["discriminator"]:
        path = (*path, "kind")
        tags = e['ctx']['expected_tags'].replace(chr(39), '').split(", ")
        msg = f"unknown kind {e['ctx']['tag']!r}; {valid_choices(e['ctx']['tag'], tags)}"
    elif e["type"] == "union_tag_not_found" and "kind" in e["ctx"]["discriminator"]:
        msg = (f"missing required key 'kind'; valid choices: "
               f"{_tags_of(tuple(e['loc']), root)}")
    elif e["type"] == "union_tag_invalid":
        path = (*path, "profile")
        profile = e['input'].get('profile')
        msg = f"unknown workload {profile!r}; {valid_choices(profile, registry())}"
    elif e["type"] == "union_tag_not_found":
        msg = f"a workload needs a profile; valid choices: {', '.join(registry())}"
    elif e["type"] == "missing" and path and isinstance(path[-1], int):  # a short tuple
        msg = f"item {path[-1]} is missing" + _about(tuple(e["loc"])[:-2], root)
    elif e["type"] == "missing":
        msg = "missing required key"
    elif e["type"] in ("too_long", "too_short"):
        msg += _about(tuple(e["loc"])[:-1], root)
    elif e["type"] in ("model_type", "dict_type", "model_attributes_type"):
        keys = ", ".join(t.model_fields) if isinstance(t, type) and issubclass(
            t, BaseModel) else ""
        msg = ("should be a mapping" + (f" of keys such as {keys}" if keys else "")
               + f" (got {e['input']!r})")
    elif "input" in e and e["type"] != "value_error" and not isinstance(e["input"],
                                                                         dict | list):
        msg = (_out_of_range(e["input"], field) if e["type"] in _BOUNDS and field is not None
               else f"{msg} (got {e['input']!r})")
        if e["type"] == "bool_type":
            msg += ": write true or false"
        elif e["type"] == "string_pattern_mismatch" and e["ctx"]["pattern"] == NAME_PATTERN:
            what = "a device name" if "devices" in path[-3:-1] else "a name"
            msg = (f"{what} starts with a letter and has up to 64 letters, digits, _ and - "
                   f"(got {e['input']!r})")
    return [(path, msg)]


def explain(err: ValidationError, source: str, where: dict, root: type[BaseModel]) -> str:
    """Every problem of ``err`` as ``file:line:col: key.path: message``, one per line:
    ``where`` maps key paths to (line, column) or to the ``--set`` that set them, and
    ``root`` is the model validated (for the types along each path)."""
    lines = []
    for e in err.errors():
        for path, msg in _problems(e, root):
            pos = None
            for n in range(len(path), -1, -1):  # the nearest position the file has
                pos = where.get(path[:n])
                if pos:
                    break
            at = pos if isinstance(pos, str) else (f"{source}:{pos[0]}:{pos[1]}" if pos
                                                   else source)
            lines.append(f"{at}: {format_path(path) or '(top level)'}: {msg}")
    return "\n".join(lines)


