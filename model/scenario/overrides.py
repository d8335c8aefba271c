"""``--set dotted.path=value`` overrides of scenario fields.

A path walks mappings by key and lists by the name of an element (``guests.web``
is the guest named ``web``; an attachment is named by its ``device``) or by its index
(``guests.0``). The value is a YAML scalar or flow collection (``8``, ``hvm``,
``true``, ``500ms``, ``[0, 1]``). Overrides apply to the scenario's data before it
is validated, so an override is checked exactly like the file.

Examples
--------
>>> data = {"guests": [{"name": "web", "count": 1}]}
>>> apply_overrides(data, ["guests.web.count=8", "duration=2s"])
{'guests': [{'name': 'web', 'count': 8}], 'duration': '2s'}
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping

from ..errors import ConfigError, valid_choices
from .yamlsafe import YamlError, load_yaml

#: Keys that name the elements of a list, tried in order.
NAME_KEYS = ("name", "device")


class OverrideError(ConfigError):
    """A ``--set`` that cannot apply: bad syntax, or a path that leads nowhere."""


def parse_override(text: str) -> tuple[list[str], object]:
    """``"a.b=v"`` -> (``["a", "b"]``, parsed ``v``)."""
    path, eq, raw = text.partition("=")
    keys = path.strip().split(".")
    shown = repr(text if len(text) <= 80 else text[:60] + "...")  # one readable line
    if not eq or not all(k.strip() for k in keys):
        raise OverrideError(f"--set {shown}: write dotted.path=value, such as "
                            "guests.web.count=8 or duration=2s")
    try:
        value = load_yaml(raw, f"--set {path.strip()}")[0] if raw.strip() else ""
    except YamlError as e:
        raise OverrideError(f"--set {shown}: the value is not valid YAML ({e})") from None
    return [k.strip() for k in keys], value


def _element(items: list, key: str, where: str) -> int:
    for i, item in enumerate(items):
        if isinstance(item, dict) and any(item.get(n) == key for n in NAME_KEYS):
            return i
    if key.lstrip("-").isdigit() and -len(items) <= int(key) < len(items):
        return int(key) % len(items)
    names = [str(next((it[n] for n in NAME_KEYS if n in it), i)) if isinstance(it, dict)
             else str(i) for i, it in enumerate(items)]
    raise OverrideError(f"--set {where}: no element {key!r} in the list; "
                        + (valid_choices(key, names) if names else "the list is empty"))


def set_path(data: dict, keys: list[str], value: object) -> tuple[str | int, ...]:
    """Set ``data[k0][k1]...`` to ``value`` in place, creating missing mappings; return
    the path with list elements as indices (``("guests", 2, "count")``)."""
    node: object = data
    resolved: list[str | int] = []
    for depth, key in enumerate(keys):
        where = ".".join(keys[:depth + 1])
        last = depth == len(keys) - 1
        if isinstance(node, list):
            i = _element(node, key, where)
            resolved.append(i)
            if last:
                node[i] = value
            node = node[i]
        elif isinstance(node, dict):
            resolved.append(key)
            if last:
                node[key] = value
            else:
                node = node.setdefault(key, {})
        else:
            raise OverrideError(f"--set {where}: {'.'.join(keys[:depth]) or 'the scenario'} "
                                f"is a value ({node!r}), not a mapping or list")
    return tuple(resolved)


def apply_overrides(data: dict, overrides: Iterable[str] | Mapping[str, object],
                    applied: dict[tuple, str] | None = None) -> dict:
    """A copy of scenario ``data`` with every override applied in order: texts
    ``dotted.path=value`` (the value YAML), or a mapping of dotted paths to values (Python
    values, as the scenario's data holds them: ``{"guests.web.count": 8}``). ``applied``,
    if given, receives each override's resolved path -> how to show it in a message.

    Examples
    --------
    >>> d = {"duration": "1s", "guests": [{"name": "web", "count": 1}]}
    >>> apply_overrides(d, ["duration=2s"])["duration"]
    '2s'
    >>> apply_overrides(d, {"guests.web.count": 8, "seed": 3})["guests"][0]["count"]
    8
    """
    out = copy.deepcopy(data)
    if isinstance(overrides, Mapping):
        items = [(f"{p}={json.dumps(v, default=str)}", p, v) for p, v in overrides.items()]
    else:
        items = [(text, None, None) for text in overrides]
    for text, dotted, value in items:
        if dotted is None:
            keys, value = parse_override(text)
        else:
            keys = parse_override(f"{dotted}=null")[0]
            value = copy.deepcopy(value)
        path = set_path(out, keys, value)
        if applied is not None:
            applied[path] = text
    return out
