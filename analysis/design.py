"""Designs of a sweep: ``--vary`` axes and their full factorial, or explicit points from a
CSV or YAML file, each file checked before it is read (a regular file, bounded, UTF-8
text) and each problem reported with its file, line and column.

Examples
--------
>>> factorial([parse_vary("guests.web.count=4,8"), parse_vary("guests.web.mode=pv")])
... # doctest: +NORMALIZE_WHITESPACE
[{'guests.web.count': '4', 'guests.web.mode': 'pv'},
 {'guests.web.count': '8', 'guests.web.mode': 'pv'}]
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from model.errors import ConfigError, PvsimError
from model.scenario.yamlsafe import load_yaml

Point = dict[str, str]


@dataclass(frozen=True)
class Axis:
    """One ``--vary`` axis: a dotted scenario path and its values (as written)."""

    path: str
    values: tuple[str, ...]


def parse_vary(text: str) -> Axis:
    """``"guests.web.count=4,8,16"`` -> Axis. Values are split at commas; each may be
    given once.

    Examples
    --------
    >>> parse_vary("guests.web.count=4, 8,16")
    Axis(path='guests.web.count', values=('4', '8', '16'))
    """
    path, _, raw = text.partition("=")
    values = tuple(v.strip() for v in raw.split(",") if v.strip())
    if not path.strip() or not values:
        raise ConfigError(f"--vary {text!r}: write PATH=V1,V2,..., such as "
                          "guests.web.count=4,8,16")
    for n, v in enumerate(values):
        if v in values[:n]:
            raise ConfigError(f"--vary {text!r}: the value {v!r} is given twice; give each "
                              "value once (--replications repeats a point)")
    return Axis(path.strip(), values)


def factorial(axes: Sequence[Axis]) -> list[Point]:
    """Every combination of the axes' values, the last axis varying fastest. Each path
    may be one axis only.

    Examples
    --------
    >>> factorial([parse_vary("a=1,2"), parse_vary("b=x")])
    [{'a': '1', 'b': 'x'}, {'a': '2', 'b': 'x'}]
    """
    for n, a in enumerate(axes):
        if any(b.path == a.path for b in axes[:n]):
            merged = dict.fromkeys(v for b in axes if b.path == a.path for v in b.values)
            raise ConfigError(f"--vary {a.path} given twice; put all values in one: "
                              f"--vary {a.path}={','.join(merged)}")
    return [dict(zip([a.path for a in axes], combo, strict=True))
            for combo in itertools.product(*[a.values for a in axes])]


#: A design file larger than this is refused before it is read.
MAX_DESIGN_BYTES = 8 * 1024 * 1024

_VALID = ("a design is a UTF-8 text file: CSV (a header line of scenario paths, then one "
          "line of values per point) or YAML (a list of mappings from path to value)")


def _design_text(path: Path) -> str:
    """The text of design file ``path``: a regular file of at most
    :data:`MAX_DESIGN_BYTES`, in UTF-8 (a byte-order mark is dropped), without NUL bytes."""
    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):
            raise ConfigError(f"{path}: not a regular file; {_VALID}")
        if st.st_size > MAX_DESIGN_BYTES:
            raise ConfigError(f"{path}: {st.st_size} bytes; a design file has at most "
                              f"{MAX_DESIGN_BYTES} bytes")
        with open(path, "rb") as f:
            raw = f.read(MAX_DESIGN_BYTES + 1)
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the design: {e.strerror or e}") from None
    if len(raw) > MAX_DESIGN_BYTES:  # it grew while we looked
        raise ConfigError(f"{path}: more than {MAX_DESIGN_BYTES} bytes; a design file has at "
                          f"most {MAX_DESIGN_BYTES} bytes")
    skip = 3 if raw.startswith(b"\xef\xbb\xbf") else 0
    bad = [raw.find(b"\0")] if b"\0" in raw else []
    try:
        text = raw[skip:].decode("utf-8")
    except UnicodeDecodeError as e:
        bad.append(skip + e.start)
    if bad:
        at = min(bad)
        line, col = raw.count(b"\n", 0, at) + 1, at - raw.rfind(b"\n", 0, at)
        what = ("not a text file: a NUL byte" if raw[at] == 0
                else f"not UTF-8 text: byte 0x{raw[at]:02x}")
        raise ConfigError(f"{path}:{line}:{col}: {what} at offset {at}; {_VALID}")
    return text


def _csv_design(path: Path, text: str) -> list[Point]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows: list[tuple[int, list[str]]] = []  # (the line a row starts on, its fields)
    line = 1
    try:
        for r in reader:
            if r:  # not a blank line
                rows.append((line, [v.strip() for v in r]))
            line = reader.line_num + 1
    except csv.Error as e:
        raise ConfigError(f"{path}:{reader.line_num}: not valid CSV ({e}); {_VALID}") from None
    if not rows:
        raise ConfigError(f"{path}: the design is empty; {_VALID}")
    (hline, header), body = rows[0], rows[1:]
    for j, name in enumerate(header):
        if not name:
            raise ConfigError(f"{path}:{hline}: column {j + 1} of the header has no path; "
                              "the header names one scenario path per column")
        if name in header[:j]:
            raise ConfigError(f"{path}:{hline}: column {j + 1} of the header repeats "
                              f"{name!r} (column {header.index(name) + 1}); give each path "
                              "one column")
    if not body:
        raise ConfigError(f"{path}: the design has a header but no points; add one line of "
                          "values per point")
    for n, r in body:
        if len(r) != len(header):
            more = "more" if len(r) > len(header) else "fewer"
            raise ConfigError(f"{path}:{n}: the row has {more} values ({len(r)}) than the "
                              f"header's {len(header)} paths")
    return [dict(zip(header, r, strict=True)) for _, r in body]


def _yaml_design(path: Path, text: str) -> list[Point]:
    if all(not ln.strip() or ln.lstrip().startswith("#") for ln in text.splitlines()):
        raise ConfigError(f"{path}: the design is empty; {_VALID}")
    try:
        data, where = load_yaml(text, str(path))
    except PvsimError as e:
        raise ConfigError(str(e)) from None
    except RecursionError:
        raise ConfigError(f"{path}: the YAML is nested too deeply to load; {_VALID}") from None
    except Exception as e:  # whatever else the loader raises: one clean line, not a trace
        why = " ".join(str(e).split())[:200]
        raise ConfigError(f"{path}: cannot load the design as YAML ({type(e).__name__}: "
                          f"{why}); {_VALID}") from None
    if not isinstance(data, list) or not data:
        raise ConfigError(f"{path}: a design is a non-empty list of mappings from scenario "
                          "path to value, such as '- {guests.web.count: 4}'")
    points: list[Point] = []
    for n, p in enumerate(data):
        line, col = where.get((n,), (1, 1))
        at = f"{path}:{line}:{col}"
        if not isinstance(p, dict) or not p:
            what = "empty" if p == {} else repr(p)[:60]
            raise ConfigError(f"{at}: design point {n + 1} is {what}; each point is a mapping "
                              "from scenario path to value")
        point: Point = {}
        for k, v in p.items():
            key = str(k).strip()
            if key in point:
                raise ConfigError(f"{at}: design point {n + 1} sets {key} twice")
            point[key] = v if isinstance(v, str) else json.dumps(v)
        if points and list(point) != list(points[0]):
            raise ConfigError(f"{at}: design point {n + 1} sets {', '.join(point)}; every point "
                              f"must set the same paths ({', '.join(points[0])}), in one order")
        points.append(point)
    return points


def read_design(path: str | Path) -> list[Point]:
    """Points from a design file: CSV (``.csv``: a header of paths, one row per point) or
    YAML (a list of mappings from path to value).

    Raises
    ------
    ConfigError
        Naming the file (and line and column where it helps) when the file cannot be read,
        is not a regular file, is larger than :data:`MAX_DESIGN_BYTES`, is not UTF-8 text,
        is empty, repeats a header column, has rows of the wrong length, or is not such
        YAML.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> f = Path(tempfile.mkdtemp()) / "d.csv"
    >>> _ = f.write_text("guests.a.count,duration\\n1,5ms\\n2,5ms\\n")
    >>> read_design(f)
    [{'guests.a.count': '1', 'duration': '5ms'}, {'guests.a.count': '2', 'duration': '5ms'}]
    """
    path = Path(path)
    text = _design_text(path)
    if path.suffix.lower() == ".csv":
        return _csv_design(path, text)
    return _yaml_design(path, text)
