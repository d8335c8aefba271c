"""The sweep cache: one file per run, holding its headline metrics, checked on every read.

An entry is a JSON object ``{"format": 1, "key": KEY, "metrics": {...}, "digest": HEX}``
stored as ``<cache>/<KEY>.json``. ``digest`` is the SHA-256 of the canonical JSON
(sorted keys, no spaces) of ``[KEY, metrics]``; ``metrics`` maps each metric name to a
finite number or ``null`` (a metric that is not a number, read back as NaN). On
reading, the file must be a regular file of at most :data:`MAX_ENTRY_BYTES`, UTF-8 JSON
of exactly that shape, under its own key, with a matching digest. Anything else -- a
truncated or garbage file, an empty one, a list, an edited value, an entry copied under
another key's name -- is *damaged*: :func:`read_entry` says why, and the sweep
recomputes the run and overwrites the entry. Reading never raises on an entry's
content.

Examples
--------
>>> import tempfile
>>> from pathlib import Path
>>> d = Path(tempfile.mkdtemp())
>>> write_entry(d / "k1.json", {"host.busy_fraction": 0.5, "guest.a.p99_ms": float("nan")})
>>> read_entry(d / "k1.json")
Entry(metrics={'host.busy_fraction': 0.5, 'guest.a.p99_ms': nan}, damage=None)
>>> _ = (d / "k1.json").write_text((d / "k1.json").read_text().replace("0.5", "42"))
>>> read_entry(d / "k1.json").damage
'its digest does not match its content (edited or corrupted)'
>>> read_entry(d / "missing.json") is None
True
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from model.errors import PvsimError

from .results import write_atomically

#: The entry layout; part of every run's cache key, so entries of another layout are
#: never read (they are simply not found).
FORMAT = 1

#: An entry larger than this is damaged without reading it (a real one is a few kB).
MAX_ENTRY_BYTES = 4 * 1024 * 1024

Metrics = dict[str, float]


class CacheError(PvsimError):
    """A cache entry that cannot be written (a directory in its place, a full disk)."""


def _number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _finite(v: object) -> bool:
    try:
        return _number(v) and math.isfinite(v)
    except OverflowError:  # an int beyond any float
        return False


def normalize(metrics: Mapping[str, object]) -> Metrics:
    """``metrics`` as the cache gives them back: ints stay ints, floats are Python
    floats, and anything not finite (NaN, ±inf) is NaN. A sweep passes fresh runs through
    this too, so its table does not depend on which runs came from the cache.

    Examples
    --------
    >>> normalize({"a": 1, "b": float("inf"), "c": 0.25})
    {'a': 1, 'b': nan, 'c': 0.25}
    """
    out: Metrics = {}
    for k, v in metrics.items():
        if not _number(v):
            raise TypeError(f"metric {k!r} is {v!r}, not a number")
        out[str(k)] = v if isinstance(v, int) else float(v) if math.isfinite(v) else math.nan
    return out


def _canonical(key: str, stored: Mapping[str, object]) -> bytes:
    return json.dumps([key, stored], sort_keys=True, separators=(",", ":"),
                      allow_nan=False).encode()


def entry_text(key: str, metrics: Mapping[str, object]) -> str:
    """The JSON text of the cache entry of run ``key`` with ``metrics``.

    Examples
    --------
    >>> entry_text("k", {"x": 1.5, "y": float("nan")})[:57]
    '{"format": 1, "key": "k", "metrics": {"x": 1.5, "y": null'
    """
    stored = {k: None if isinstance(v, float) and math.isnan(v) else v
              for k, v in normalize(metrics).items()}
    digest = hashlib.sha256(_canonical(key, stored)).hexdigest()
    return json.dumps({"format": FORMAT, "key": key, "metrics": stored, "digest": digest},
                      allow_nan=False)  # the metrics in the order the run gave them


def write_entry(path: str | Path, metrics: Mapping[str, object]) -> None:
    """Store ``metrics`` as the entry ``path`` (its key is the file name's stem),
    atomically: a reader sees the old entry or the new one, never part of one. Raises
    :class:`CacheError`, naming the entry, when it cannot be written.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> f = Path(tempfile.mkdtemp()) / "abc.json"
    >>> write_entry(f, {"x": 2})
    >>> read_entry(f).metrics
    {'x': 2}
    """
    path = Path(path)
    try:
        write_atomically(path, entry_text(path.stem, metrics))
    except OSError as e:
        raise CacheError(f"{path}: cannot write this cache entry ({e.strerror or e}); "
                         "remove it, or write the sweep elsewhere with -o") from None


@dataclass(frozen=True)
class Entry:
    """What :func:`read_entry` found: the metrics, or why the entry is damaged."""

    metrics: Metrics | None
    damage: str | None = None


def _check(data: object, key: str) -> Metrics | str:
    """The metrics of a parsed entry, or what is wrong with it."""
    if not isinstance(data, dict):
        return f"it holds a JSON {type(data).__name__}, not an entry object"
    if set(data) != {"digest", "format", "key", "metrics"}:
        return "it is not an entry object (format, key, metrics, digest)"
    if data["format"] != FORMAT:
        return f"its format is {data['format']!r}, not {FORMAT}"
    if data["key"] != key:
        return f"it is the entry of another run ({str(data['key'])[:32]!r})"
    stored = data["metrics"]
    if not isinstance(stored, dict):
        return "its metrics are not a mapping"
    for k, v in stored.items():
        if v is not None and not _finite(v):
            return f"its metric {k[:80]!r} is {str(v)[:40]!r}, not a finite number or null"
    if data["digest"] != hashlib.sha256(_canonical(key, stored)).hexdigest():
        return "its digest does not match its content (edited or corrupted)"
    return {k: math.nan if v is None else v for k, v in stored.items()}


def read_entry(path: str | Path) -> Entry | None:
    """The entry at ``path``: None when there is none, else an :class:`Entry` with the
    metrics or, when the entry is damaged, the reason (``metrics`` is then None).
    Never raises on what the file holds.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> f = Path(tempfile.mkdtemp()) / "abc.json"
    >>> _ = f.write_text("[]")
    >>> read_entry(f)
    Entry(metrics=None, damage='it holds a JSON list, not an entry object')
    """
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    except OSError as e:
        return Entry(None, f"it cannot be examined ({e.strerror or e})")
    if not stat.S_ISREG(st.st_mode):
        return Entry(None, "it is not a regular file")
    if st.st_size > MAX_ENTRY_BYTES:
        return Entry(None, f"it has {st.st_size} bytes; an entry has at most "
                     f"{MAX_ENTRY_BYTES}")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as f:
            raw = f.read(MAX_ENTRY_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as e:
        return Entry(None, f"it cannot be read ({e.strerror or e})")
    if not raw.strip():
        return Entry(None, "it is empty")
    if len(raw) > MAX_ENTRY_BYTES:
        return Entry(None, f"it has more than {MAX_ENTRY_BYTES} bytes")
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        return Entry(None, f"it is not UTF-8 text (byte {e.start})")
    except (ValueError, RecursionError) as e:
        return Entry(None, f"it is not valid JSON ({str(e)[:80]})")
    result = _check(data, path.stem)
    return Entry(None, result) if isinstance(result, str) else Entry(result)
