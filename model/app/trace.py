"""Arrival traces for open-loop request replay: when each request arrives, of which
type, how large.

A trace is a CSV file (comma separated, UTF-8 text) with a header row naming the
columns, in any order:

* exactly one time column, ``time_s``, ``time_ms`` or ``time_us``: the arrival time of
  a request since the start of the run, in that unit; a finite decimal number >= 0
  (``0.25``, ``1.5e-3``), not decreasing from row to row (equal times are
  simultaneous arrivals);
* optionally ``type``: the request's type, 1 to 64 letters, digits, ``_``, ``.`` and
  ``-``; the trace's distinct types, in order of first appearance, get ids 0, 1, 2...
  (without the column every request is of type 0, named ``default``);
* optionally ``size``: the request's size in bytes, a whole number from 0 to 2**40
  written as digits (without the column, every size is -1: not given).

Every data row has as many fields as the header; spaces and tabs around a field are
ignored. A line that is empty (or blank) or whose first non-blank character is ``#``
is a comment, anywhere in the file, also before the header. LF and CRLF line ends
are both fine, and so is a UTF-8 byte order mark at the start.

Limits: the file is a regular file of at most :data:`MAX_BYTES` (a directory, a
device, a FIFO or a larger file is refused before anything is read), text only
(bytes that are not UTF-8, NUL and the other control characters but tab, CR and LF
are refused at the first bad byte), with at least one and at most :data:`MAX_ROWS`
data rows.

Every problem is a :class:`TraceError` whose message is ``FILE:LINE:COL: what is
wrong``, with the bad value and what is valid; LINE and COL count from 1, COL in
characters, at the start of the bad field (or at the bad byte). Up to
:data:`MAX_ERRORS` problems are reported, one per line, in file order. (A file that
cannot be read at all, a directory or one over the size limit, is reported as
``FILE: what is wrong``.)

:func:`load_trace` reads a file, :func:`parse_trace` parses bytes already read, and
:func:`cached_trace` keeps the last few traces parsed, so that the runs of a sweep in
one process parse a big trace once.

Examples
--------
>>> t = parse_trace(b"time_ms,type,size\\n0,get,512\\n1.5,put,4096\\n1.5,get,0\\n", "t.csv")
>>> t.times_s.tolist(), t.type_names, t.types.tolist(), t.sizes.tolist()
([0.0, 0.0015, 0.0015], ('get', 'put'), [0, 1, 0], [512, 4096, 0])
>>> len(t), t.duration_s
(3, 0.0015)
>>> parse_trace(b"time_s, size\\n0.5, 10\\n0.25, -1\\n", "t.csv")
Traceback (most recent call last):
...
model.app.trace.TraceError: t.csv:3:1: time_s 0.25 is earlier than 0.5 on line 2; times \
must not decrease (equal times are simultaneous arrivals)
t.csv:3:7: size -1 is negative; valid: a whole number of bytes from 0 to \
1,099,511,627,776 (2**40), written as digits
"""

from __future__ import annotations

import codecs
import hashlib
import os
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from itertools import repeat

import numpy as np

from ..errors import ConfigError

MAX_BYTES = 64 << 20  #: the largest trace file, in bytes (64 MiB)
MAX_ROWS = 10_000_000  #: the most data rows (requests) of a trace
MAX_SIZE = 1 << 40  #: the largest request size, in bytes
MAX_ERRORS = 10  #: the most problems one error reports

#: the time columns and how many of their unit make a second
TIME_UNITS = {"time_s": 1.0, "time_ms": 1e3, "time_us": 1e6}
_UNIT_NAMES = {"time_s": "seconds", "time_ms": "milliseconds", "time_us": "microseconds"}
#: every valid column name
COLUMNS = (*TIME_UNITS, "type", "size")
#: the name of the one type of a trace without a ``type`` column
DEFAULT_TYPE = "default"

_VALID_COLUMNS = ("valid columns: one time column (time_s, time_ms or time_us), and "
                  "optionally type and size, in any order")
_TYPE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_NOT_NUMBER = re.compile(r"[^0-9.eE+-]")  # a time has only these characters
_NOT_FINITE = re.compile(r"[+-]?(nan|inf|infinity)", re.IGNORECASE)
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")  # C0 but tab, LF, CR; DEL; C1
_BLANK = " \t\r"  # stripped around fields (CR: the end of a CRLF line)
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")


class TraceError(ConfigError):
    """An arrival trace that cannot be used; the message points at the file position:
    ``FILE:LINE:COL: what is wrong``, one problem per line."""


@dataclass(frozen=True, eq=False)
class Trace:
    """The requests of an arrival trace, as read-only columns, one row per request.

    Attributes
    ----------
    path : str
        The file it was read from (or the ``source`` given to :func:`parse_trace`).
    times_s : numpy.ndarray
        Arrival times in seconds since the start of the run (float64), not decreasing.
    types : numpy.ndarray
        Request type ids (int32), indexes into ``type_names``; all 0 without a
        ``type`` column.
    type_names : tuple of str
        The type names, in order of first appearance in the file (``('default',)``
        without a ``type`` column).
    sizes : numpy.ndarray
        Request sizes in bytes (int64); -1 everywhere without a ``size`` column.
    digest : str
        The SHA-256 of the file's bytes, in hex.

    The arrays are read-only (a trace can be shared by the runs of a sweep); arrays
    given that are writeable are copied first. Traces compare by identity.

    Examples
    --------
    >>> import numpy as np
    >>> t = Trace("made.csv", np.array([0.0, 0.5]), np.array([0, 0], np.int32),
    ...           ("default",), np.array([-1, -1]), "0" * 64)
    >>> len(t), t.duration_s, t.times_s.flags.writeable
    (2, 0.5, False)
    """

    path: str
    times_s: np.ndarray
    types: np.ndarray
    type_names: tuple[str, ...]
    sizes: np.ndarray
    digest: str

    def __post_init__(self) -> None:
        arrays = {}
        for name, dtype in (("times_s", np.float64), ("types", np.int32),
                            ("sizes", np.int64)):
            given = getattr(self, name)
            a = np.asarray(given, dtype=dtype)
            if a.ndim != 1:
                raise ValueError(f"Trace.{name} must be one-dimensional, not of shape "
                                 f"{a.shape}")
            if a.flags.writeable:
                a = a.copy() if a is given else a
                a.flags.writeable = False
            arrays[name] = a
            object.__setattr__(self, name, a)
        object.__setattr__(self, "type_names", tuple(self.type_names))
        t, ids, sizes = arrays["times_s"], arrays["types"], arrays["sizes"]
        if not len(t) == len(ids) == len(sizes):
            raise ValueError(f"Trace columns of different lengths: times_s {len(t)}, "
                             f"types {len(ids)}, sizes {len(sizes)}")
        if not self.type_names:
            raise ValueError("Trace.type_names is empty; a trace has at least one type")
        if len(t) and not (np.isfinite(t).all() and t[0] >= 0 and (np.diff(t) >= 0).all()):
            raise ValueError("Trace.times_s must be finite, >= 0 and not decreasing")
        if len(ids) and not (0 <= ids.min() and ids.max() < len(self.type_names)):
            raise ValueError(f"Trace.types must be ids from 0 to {len(self.type_names) - 1}")
        if len(sizes) and sizes.min() < -1:
            raise ValueError("Trace.sizes must be >= 0, or -1 for no size")

    def __len__(self) -> int:
        """The number of requests."""
        return len(self.times_s)

    @property
    def duration_s(self) -> float:
        """The arrival time of the last request, in seconds (0.0 for no requests)."""
        return float(self.times_s[-1]) if len(self.times_s) else 0.0

    def __repr__(self) -> str:
        names = ", ".join(self.type_names[:5]) + (", ..." if len(self.type_names) > 5 else "")
        return (f"Trace({self.path!r}: {len(self):,} requests in {self.duration_s:g} s, "
                f"types {names}, sha256 {self.digest[:12]})")

    def __reduce__(self):  # unpickled arrays are fresh: freeze them instead of copying
        return (_rebuild, (self.path, self.times_s, self.types, self.type_names,
                           self.sizes, self.digest))


def _rebuild(path, *columns) -> Trace:
    for a in columns:
        if isinstance(a, np.ndarray):
            a.flags.writeable = False
    return Trace(path, *columns)


# -- reading ------------------------------------------------------------------------


def _where(text: str, i: int) -> tuple[int, int]:
    """The 1-based (line, column) of character ``i`` of ``text``."""
    return text.count("\n", 0, i) + 1, i - text.rfind("\n", 0, i)


def _decode(data: bytes, source: str) -> str:
    """The text of ``data`` (without a byte order mark), refusing binary junk at the
    first bad byte."""
    body = data[len(codecs.BOM_UTF8):] if data.startswith(codecs.BOM_UTF8) else data
    try:
        text, bad = body.decode("utf-8"), None
    except UnicodeDecodeError as e:
        text, bad = body[:e.start].decode("utf-8"), e
    m = _CONTROL.search(text)
    if m:  # before any invalid UTF-8, since the text ends there
        c = m.group()
        what = "a NUL byte" if c == "\x00" else f"control character U+{ord(c):04X}"
        line, col = _where(text, m.start())
        raise TraceError(f"{source}:{line}:{col}: not a text file: {what}; a trace is "
                         "CSV text (tab, CR and LF are the only control characters "
                         "allowed)")
    if bad is not None:
        line, col = _where(text, len(text))
        raise TraceError(f"{source}:{line}:{col}: not a text file: byte "
                         f"0x{body[bad.start]:02x} is not UTF-8 ({bad.reason}); a trace "
                         "is UTF-8 CSV text")
    return text


def _fields(line: str) -> list[tuple[int, str]]:
    """The (column, value) of each field of ``line``, the value stripped of blanks, the
    column where it starts (1-based)."""
    out, pos = [], 1
    for raw in line.split(","):
        value = raw.strip(_BLANK)
        out.append((pos + len(raw) - len(raw.lstrip(_BLANK)), value))
        pos += len(raw) + 1
    return out


@dataclass(frozen=True)
class _Layout:
    """The columns the header names: their number and where each kind is."""

    names: tuple[str, ...]
    time: int
    scale: float
    type: int | None
    size: int | None

    @property
    def unit(self) -> str:
        return self.names[self.time]


def _header(line: str, lineno: int, source: str) -> _Layout:
    problems, seen, time = [], {}, None
    for col, name in _fields(line):
        at = f"{source}:{lineno}:{col}"
        if name in seen:
            problems.append(f"{at}: column {name!r} appears twice (first in column "
                            f"{seen[name]}); each column appears once")
        elif name not in COLUMNS:
            shown = f"unknown column {name!r}" if name else "an empty column name"
            problems.append(f"{at}: {shown}; {_VALID_COLUMNS}")
        elif name in TIME_UNITS and time is not None:
            problems.append(f"{at}: a second time column {name!r} (the first is "
                            f"{time[1]!r}); a trace has exactly one of time_s, time_ms, "
                            "time_us")
        elif name in TIME_UNITS:
            time = (col, name)
        seen.setdefault(name, col)
    if time is None:
        got = ", ".join(repr(n) for n in seen if n) or "none"
        problems.append(f"{source}:{lineno}:1: no time column (columns: {got}); "
                        f"{_VALID_COLUMNS}")
    if problems:
        raise TraceError("\n".join(problems[:MAX_ERRORS]))
    names = tuple(name for _, name in _fields(line))
    return _Layout(names, names.index(time[1]), TIME_UNITS[time[1]],
                   names.index("type") if "type" in names else None,
                   names.index("size") if "size" in names else None)


_Columns = tuple[np.ndarray, np.ndarray, tuple[str, ...], np.ndarray]


def _fast(rows: list[str], lay: _Layout) -> _Columns | None:
    """The columns of ``rows`` by whole-column operations, or None if anything is
    wrong (or unusual): :func:`_slow` then finds what, or parses it after all."""
    n, k = len(rows), len(lay.names)
    if list(map(str.count, rows, repeat(","))).count(k - 1) != n:
        return None
    flat = ",".join(rows).split(",") if k > 1 else rows
    cols = [list(map(str.strip, flat[j::k] if k > 1 else flat, repeat(_BLANK)))
            for j in range(k)]
    del flat
    text = cols[lay.time]
    if _NOT_NUMBER.search("".join(text)):
        return None
    try:
        raw = np.fromiter(map(float, text), dtype=np.float64, count=n)
    except ValueError:
        return None
    if not np.isfinite(raw).all() or (raw < 0).any() or (np.diff(raw) < 0).any():
        return None
    times = raw / lay.scale if lay.scale != 1.0 else raw
    times += 0.0  # -0 -> 0
    if lay.type is None:
        types, names = np.zeros(n, dtype=np.int32), (DEFAULT_TYPE,)
    else:
        ids = {name: i for i, name in enumerate(dict.fromkeys(cols[lay.type]))}
        if not all(map(_TYPE.fullmatch, ids)):
            return None
        types = np.fromiter(map(ids.__getitem__, cols[lay.type]), dtype=np.int32, count=n)
        names = tuple(ids)
    if lay.size is None:
        sizes = np.full(n, -1, dtype=np.int64)
    else:
        digits = "".join(cols[lay.size])
        if not (digits.isascii() and digits.isdigit()):
            return None
        try:
            sizes = np.fromiter(map(int, cols[lay.size]), dtype=np.int64, count=n)
        except (ValueError, OverflowError):  # an empty field; more than 4300 digits
            return None
        if (sizes > MAX_SIZE).any():
            return None
    return times, types, names, sizes


def _time(text: str, unit: str) -> float | str:
    """The value of time field ``text``, or what is wrong with it."""
    valid = f"valid: a number of {_UNIT_NAMES[unit]} >= 0, such as 0.25 or 1.5e-3"
    if not text:
        return f"{unit} is empty; {valid}"
    if _NOT_NUMBER.search(text):
        if _NOT_FINITE.fullmatch(text):
            return f"{unit} {text!r} is not a finite number; {valid}"
        return f"{unit} {text!r} is not a number; {valid}"
    try:
        value = float(text)
    except ValueError:
        return f"{unit} {text!r} is not a number; {valid}"
    if value != value or value in (float("inf"), float("-inf")):
        return f"{unit} {text!r} is beyond the range of a float; {valid}"
    if value < 0:
        return f"{unit} {text} is negative; {valid}"
    return value


_SIZE_VALID = (f"valid: a whole number of bytes from 0 to {MAX_SIZE:,} (2**40), written "
               "as digits")


def _size(text: str) -> int | str:
    """The value of size field ``text``, or what is wrong with it."""
    if not text:
        return f"size is empty; {_SIZE_VALID}"
    if not (text.isascii() and text.isdigit()):
        if text[0] == "-" and text[1:].isascii() and text[1:].replace(".", "", 1).isdigit():
            return f"size {text} is negative; {_SIZE_VALID}"
        return f"size {text!r} is not a whole number of bytes; {_SIZE_VALID}"
    if len(text.lstrip("0")) > len(str(MAX_SIZE)) or int(text) > MAX_SIZE:
        shown = text if len(text) <= 30 else f"{text[:12]}...({len(text):,} digits)"
        return f"size {shown} is too large; {_SIZE_VALID}"
    return int(text)


def _slow(rows: list[str], lines_of: list[int], lay: _Layout, source: str) -> _Columns:
    """The columns of ``rows``, row by row, each problem at its position (the first
    :data:`MAX_ERRORS` raised together); ``lines_of[i]`` is the line of row i."""
    n, k = len(rows), len(lay.names)
    times = np.empty(n, dtype=np.float64)
    types = np.zeros(n, dtype=np.int32)
    sizes = np.full(n, -1, dtype=np.int64)
    ids: dict[str, int] = {}
    problems: list[str] = []
    last = None  # (value, text, line) of the last good time

    def problem(line: int, col: int, message: str) -> None:
        problems.append(f"{source}:{line}:{col}: {message}")
        if len(problems) > MAX_ERRORS:
            raise TraceError("\n".join(problems[:MAX_ERRORS])
                             + f"\n{source}:{line}:{col}: (more problems from here on; only "
                             f"the first {MAX_ERRORS} are shown)")

    for i, row in enumerate(rows):
        line = lines_of[i]
        fields = _fields(row)
        if len(fields) != k:
            header = ", ".join(lay.names)
            if len(fields) > k:
                col, what = fields[k][0], "too many"
            else:
                col, what = len(row.rstrip("\r")) + 1, f"{lay.names[len(fields)]!r} missing"
            problem(line, col, f"{len(fields)} fields ({what}); the header has {k}: "
                    f"{header}")
            continue
        col, text = fields[lay.time]
        value = _time(text, lay.unit)
        if isinstance(value, str):
            problem(line, col, value)
        elif last is not None and value < last[0]:
            problem(line, col, f"{lay.unit} {text} is earlier than {last[1]} on line "
                    f"{last[2]}; times must not decrease (equal times are simultaneous "
                    "arrivals)")
        else:
            times[i] = value / lay.scale if lay.scale != 1.0 else value
            last = (value, text, line)
        if lay.type is not None:
            col, name = fields[lay.type]
            if name not in ids and not _TYPE.fullmatch(name):
                problem(line, col, f"type {name!r} is not a valid type name; valid: 1 to 64 "
                        "letters, digits, '_', '.' and '-'")
            else:
                types[i] = ids.setdefault(name, len(ids))
        if lay.size is not None:
            col, text = fields[lay.size]
            value = _size(text)
            if isinstance(value, str):
                problem(line, col, value)
            else:
                sizes[i] = value
    if problems:
        raise TraceError("\n".join(problems))
    times += 0.0  # -0 -> 0
    return times, types, tuple(ids) or (DEFAULT_TYPE,), sizes


def _is_data(line: str) -> bool:
    s = line.lstrip(_BLANK)
    return bool(s) and s[0] != "#"


def _parse(data: bytes, source: str, digest: str | None = None, fast: bool = True) -> Trace:
    if len(data) > MAX_BYTES:
        raise TraceError(f"{source}: the trace has {len(data):,} bytes; a trace may have at "
                         f"most {MAX_BYTES:,} (64 MiB)")
    digest = digest or hashlib.sha256(data).hexdigest()
    lines = _decode(data, source).split("\n")
    head = next((i for i, line in enumerate(lines) if _is_data(line)), None)
    if head is None:
        raise TraceError(f"{source}:1:1: no header row (the file is empty or only "
                         f"comments); a trace starts with a header naming its columns "
                         f"({', '.join(COLUMNS)}), then a row per request")
    lay = _header(lines[head], head + 1, source)
    keep = [i for i, s in enumerate(map(str.lstrip, lines, repeat(_BLANK)))
            if i > head and s and s[0] != "#"]
    if not keep:
        raise TraceError(f"{source}:{head + 1}:1: a header and no data rows; a trace needs "
                         "at least one request (a row under the header)")
    if len(keep) > MAX_ROWS:
        raise TraceError(f"{source}:{keep[MAX_ROWS] + 1}:1: more than {MAX_ROWS:,} data "
                         f"rows; a trace may have at most {MAX_ROWS:,} requests")
    rows = lines[head + 1:] if len(keep) == len(lines) - head - 1 else [lines[i] for i in keep]
    del lines
    columns = _fast(rows, lay) if fast else None
    if columns is None:
        columns = _slow(rows, [i + 1 for i in keep], lay, source)
    times, types, names, sizes = columns
    for a in (times, types, sizes):
        a.flags.writeable = False
    return Trace(source, times, types, names, sizes, digest)


def parse_trace(data: bytes, source: str = "<trace>") -> Trace:
    """Validate and parse an arrival trace already read; ``source`` names it in errors
    and becomes :attr:`Trace.path`.

    Raises
    ------
    TraceError
        Anything wrong with the trace (see the module's documentation), each problem at
        its ``source:line:column``.

    Examples
    --------
    >>> t = parse_trace(b"# made by hand\\ntype,time_us\\nread,10\\nwrite,10\\nread,25\\n")
    >>> t.times_s.tolist(), t.types.tolist(), t.type_names, t.sizes.tolist()
    ([1e-05, 1e-05, 2.5e-05], [0, 1, 0], ('read', 'write'), [-1, -1, -1])
    >>> parse_trace(b"time_s,kind\\n0,a\\n", "t.csv")
    Traceback (most recent call last):
    ...
    model.app.trace.TraceError: t.csv:1:8: unknown column 'kind'; valid columns: one time \
column (time_s, time_ms or time_us), and optionally type and size, in any order
    """
    return _parse(bytes(data), source)


def _read(path: str | os.PathLike) -> bytes:
    # imported here: the package model.scenario imports the whole model (a second), and
    # a scenario module may import this one
    from ..scenario.yamlsafe import YamlError, read_file

    try:
        return read_file(path, "trace file", MAX_BYTES)
    except YamlError as e:
        raise TraceError(str(e)) from None
    except OSError as e:
        raise TraceError(f"{os.fspath(path)}: cannot read: {e.strerror}") from None


def load_trace(path: str | os.PathLike) -> Trace:
    """Read, validate and parse the arrival trace file ``path``.

    The file must be a regular file of at most :data:`MAX_BYTES` (64 MiB): a
    directory, a device, a FIFO or a larger file is refused before it is read.

    Raises
    ------
    TraceError
        The file cannot be read, or anything is wrong with the trace (see the module's
        documentation).

    Examples
    --------
    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     with open(os.path.join(d, "t.csv"), "w") as f:
    ...         _ = f.write("time_s,size\\n0.1,100\\n0.2,200\\n")
    ...     t = load_trace(os.path.join(d, "t.csv"))
    >>> t.times_s.tolist(), t.sizes.tolist(), len(t.digest)
    ([0.1, 0.2], [100, 200], 64)
    """
    return _parse(_read(path), os.fspath(path))


_CACHE: OrderedDict[tuple, Trace] = OrderedDict()
_CACHE_SIZE = 4  # traces kept; a trace of 10,000,000 rows takes 200 MB
_CACHE_LOCK = threading.Lock()


def cached_trace(path: str | os.PathLike, digest: str | None = None) -> Trace:
    """:func:`load_trace`, parsing a file once while it stays the same.

    The last few traces parsed are kept, keyed by the file's resolved path, size and
    modification time (ns), so the runs of a sweep in one process share one parse of a
    big trace. With ``digest`` (the :attr:`Trace.digest` of the trace a scenario was
    validated with), a file whose bytes differ now is refused.

    Raises
    ------
    TraceError
        As :func:`load_trace`; or the file's digest is not ``digest``.

    Examples
    --------
    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     path = os.path.join(d, "t.csv")
    ...     with open(path, "w") as f:
    ...         _ = f.write("time_s\\n0.5\\n")
    ...     t = cached_trace(path)
    ...     same = cached_trace(path, t.digest) is t
    ...     with open(path, "w") as f:  # another size: the cache sees a change at once
    ...         _ = f.write("time_s\\n0.75\\n")
    ...     cached_trace(path, t.digest)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    model.app.trace.TraceError: ...t.csv: the trace file changed since the scenario was \
validated (sha256 ... then, ... now); validate the scenario again
    >>> same
    True
    """
    source = os.fspath(path)
    if digest is not None and not (isinstance(digest, str) and _HEX64.fullmatch(digest)):
        raise ValueError(f"digest must be a SHA-256 in hex (64 hex digits), not {digest!r}")
    try:
        st = os.stat(path)
        key = (os.path.realpath(path), st.st_size, st.st_mtime_ns)
    except OSError as e:
        raise TraceError(f"{source}: cannot read: {e.strerror}") from None
    with _CACHE_LOCK:
        trace = _CACHE.get(key)
        if trace is not None:
            _CACHE.move_to_end(key)
    if trace is None:
        data = _read(path)
        actual = hashlib.sha256(data).hexdigest()
        _check(source, digest, actual)
        trace = _parse(data, source, actual)
        try:
            again = os.stat(path)
        except OSError:
            again = None
        if again is not None and (again.st_size, again.st_mtime_ns) == key[1:]:
            with _CACHE_LOCK:  # cached only if the file did not change while read
                _CACHE[key] = trace
                while len(_CACHE) > _CACHE_SIZE:
                    _CACHE.popitem(last=False)
    _check(source, digest, trace.digest)
    return trace if trace.path == source else replace(trace, path=source)


def _check(source: str, expected: str | None, actual: str) -> None:
    if expected is not None and expected.lower() != actual:
        raise TraceError(f"{source}: the trace file changed since the scenario was "
                         f"validated (sha256 {expected[:12].lower()}... then, "
                         f"{actual[:12]}... now); validate the scenario again")
