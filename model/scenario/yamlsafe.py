"""Safe, bounded YAML loading that remembers where every value came from.

The document is built from PyYAML's event stream (libyaml's parser when PyYAML has
it, else the pure-Python one; both are state machines, not recursive) with an
explicit stack, so no input can exhaust the Python stack, and every limit is checked
before the memory it guards is spent:

* :data:`MAX_BYTES` of text (:func:`read_file` also refuses anything that is not a
  regular file, before reading), :data:`MAX_DEPTH` levels of nesting,
  :data:`MAX_NODES` nodes with aliases expanded (each anchor's size is kept, so a
  "billion laughs" is refused without being built), :data:`MAX_SCALAR` characters
  in a scalar, :data:`MAX_INT_DIGITS` digits in an integer;
* only plain data, as a tree: a tag other than the standard ``!!str``, ``!!int``,
  ``!!float``, ``!!bool``, ``!!null``, ``!!seq``, ``!!map`` is refused (``!`` too),
  as are duplicate keys, an anchor defined twice, keys that are not scalars, a
  recursive alias (a value containing itself), NUL bytes, invalid UTF-8 and a second
  document; an alias is a copy of its anchor's value;
* plain scalars are resolved by the YAML 1.2 core schema: ``null``/``~``/empty,
  ``true``/``false`` (``yes``, ``no``, ``on``, ``off`` are strings), integers
  ``12``, ``0o17``, ``0x1f``, floats ``1.5``, ``1e-05``, ``.inf``, ``.nan``; quoted
  scalars are strings; ``!!int`` and the others take the same forms.

Refused, with what to write instead, because a number was clearly meant and one of
the readings would silently be wrong: a plain scalar that YAML 1.1 (PyYAML's
``safe_load``, older tools) reads as a *different number* (``010``: octal 8 in 1.1,
10 in 1.2; also ``09``), or as a number where 1.2 reads a string (``1_000``,
``0b11``, ``-0x10``, sexagesimal ``1:20``: quote it if a string is meant); and a
float literal beyond the float range (``1e999``: write ``.inf``). The 1.1 booleans
(``yes``...) are not refused: they are words more often than not, and a bool field
still reads ``yes`` and ``off`` as pydantic does.

Every value's line and column are kept, keyed by its path, so a later validation
error can point at the file position (an alias's contents point at its anchor).

Examples
--------
>>> data, where = load_yaml("a: 1\\nb: [x, {c: 2}]\\nd: [0x10, 1e-05, yes]\\n", "s.yaml")
>>> data
{'a': 1, 'b': ['x', {'c': 2}], 'd': [16, 1e-05, 'yes']}
>>> where[("b", 1, "c")]
(2, 12)
>>> load_yaml("count: 010", "s.yaml")
Traceback (most recent call last):
...
model.scenario.yamlsafe.YamlError: s.yaml:1:8: count: 010 is ambiguous: YAML 1.1 reads it as octal \
(8), YAML 1.2 as 10; write 10, or 0o10 for octal
"""

from __future__ import annotations

import copy
import math
import os
import re
import stat

import yaml

from ..errors import ConfigError

MAX_BYTES = 1 << 20  #: the longest document (file size; characters of a string)
MAX_DEPTH = 64  #: the deepest nesting of collections (a scenario needs fewer than 10)
MAX_NODES = 100_000  #: the most nodes (keys, values, collections), aliases expanded
MAX_SCALAR = 10_000  #: the longest scalar, in characters
MAX_INT_DIGITS = 100  #: the most digits of an integer (Python refuses over 4300)


class YamlError(ConfigError):
    """A YAML document that cannot be loaded safely; the message names file, line, column."""


class _PyParser(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser):
    """PyYAML's pure-Python event parser, when libyaml is missing."""

    def __init__(self, text: str) -> None:
        yaml.reader.Reader.__init__(self, text)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)


_PARSER = yaml.cyaml.CParser if yaml.__with_libyaml__ else _PyParser
_TAG = "tag:yaml.org,2002:"
_NULLS = {"", "~", "null", "Null", "NULL"}
_BOOLS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False,
          "FALSE": False}
_INT = re.compile(r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_SPECIAL = {f"{s}.{w}": v for w in ("inf", "Inf", "INF") for s, v in
            (("", math.inf), ("+", math.inf), ("-", -math.inf))} | {
    ".nan": math.nan, ".NaN": math.nan, ".NAN": math.nan}
_YAML11 = yaml.resolver.Resolver()
_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a FIFO"),
          (stat.S_ISSOCK, "a socket"))


def format_path(path: tuple) -> str:
    """``("guests", 2, "workload", "rate")`` -> ``guests[2].workload.rate``."""
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _error(source: str, mark, path: tuple | None, message: str) -> YamlError:
    at = f"{source}:{mark.line + 1}:{mark.column + 1}"
    shown = format_path(path) if path else ""
    if len(shown) > 80:
        shown = f"{shown[:50]}...{shown[-25:]}"
    return YamlError(f"{at}: {shown}: {message}" if shown else f"{at}: {message}")


def _plain(s: str, fail) -> object:
    """A plain scalar by the YAML 1.2 core schema; ``fail(message)`` refuses."""
    if s in _NULLS:
        return None
    if s in _BOOLS:
        return _BOOLS[s]
    if _INT.fullmatch(s):
        sign, digits = ("-" if s[0] == "-" else ""), s.lstrip("+-")
        base = {"0o": 8, "0x": 16}.get(digits[:2], 10)
        if base != 10:
            digits = digits[2:]
        if len(digits) > MAX_INT_DIGITS:
            raise fail(f"an integer of {len(digits):,} digits; at most {MAX_INT_DIGITS} "
                       "are allowed")
        if base == 10 and len(digits) > 1 and digits[0] == "0":
            n = sign + (digits.lstrip("0") or "0")
            old = (f"octal ({int(s, 8)})" if set(digits) <= set("01234567")
                   else "a string")
            octal = "" if sign or old == "a string" else f", or 0o{digits.lstrip('0')} for octal"
            raise fail(f"{s} is ambiguous: YAML 1.1 reads it as {old}, YAML 1.2 as {n}; "
                       f"write {n}{octal}")
        return int(digits, base) * (-1 if sign else 1)
    if s in _SPECIAL:
        return _SPECIAL[s]
    if _FLOAT.fullmatch(s):
        value = float(s)
        if math.isinf(value):
            raise fail(f"{s} is out of the range of a float; write .inf for infinity")
        return value
    if _YAML11.resolve(yaml.ScalarNode, s, (True, False)) in (_TAG + "int", _TAG + "float"):
        raise fail(f"{s} is ambiguous: YAML 1.1 reads it as a number, YAML 1.2 as a string; "
                   "write the number in decimal (no '_' or ':'), or quote the string")
    return s


def _scalar(ev, fail) -> object:
    """The value of scalar event ``ev``: plain, quoted, or with a standard tag."""
    if len(ev.value) > MAX_SCALAR:
        raise fail(f"a scalar of {len(ev.value):,} characters; at most {MAX_SCALAR:,} are "
                   "allowed")
    if ev.tag is None:
        return _plain(ev.value, fail) if ev.implicit[0] else ev.value
    kind = ev.tag.removeprefix(_TAG)
    if kind == "str":
        return ev.value
    types = {"int": (int,), "float": (float, int), "bool": (bool,), "null": (type(None),)}
    if kind not in types:
        raise fail(f"tag {ev.tag!r} is not allowed: only plain data (and the standard "
                   "tags !!str, !!int, !!float, !!bool, !!null, !!seq, !!map)")
    value = _plain(ev.value, fail)
    if not isinstance(value, types[kind]) or (kind != "bool" and isinstance(value, bool)):
        raise fail(f"{ev.value!r} is not a valid !!{kind}")
    return float(value) if kind == "float" else value


class _Open:
    """A collection being built: its value, path, anchor, and what it has so far."""

    __slots__ = ("value", "path", "anchor", "key", "nodes0", "where0", "height")

    def __init__(self, value, path, anchor, nodes0, where0) -> None:
        self.value, self.path, self.anchor = value, path, anchor
        self.key, self.nodes0, self.where0, self.height = _NO_KEY, nodes0, where0, 1


_NO_KEY = object()
_DEEP = f"more than {MAX_DEPTH} levels of nesting; at most {MAX_DEPTH} are allowed"
_STARTS = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
_NODES = (yaml.ScalarEvent, yaml.AliasEvent, *_STARTS)
_ENDS = (yaml.MappingEndEvent, yaml.SequenceEndEvent)


def _build(parser, source: str) -> tuple[object, dict]:
    where: list = []  # (path, (line, column)), in document order
    anchors: dict = {}  # name -> (value, nodes, height, where slice, path length) or None
    anchored_at: dict = {}  # name -> line of its definition
    stack: list[_Open] = []
    root, nodes, documents = None, 0, 0
    while True:
        try:
            if not parser.check_event():
                break
            ev = parser.get_event()
        except yaml.MarkedYAMLError as e:  # libyaml's own limit (1000 levels), met first
            if "maximum nesting depth" not in str(e.problem):
                raise
            path = () if not stack else stack[-1].path if stack[-1].key is _NO_KEY else (
                *stack[-1].path, stack[-1].key)
            raise _error(source, e.problem_mark, path, _DEEP) from None
        if isinstance(ev, yaml.DocumentStartEvent):
            documents += 1
            if documents > 1:
                raise _error(source, ev.start_mark, None, "a second YAML document starts "
                             "here; a file holds one document")
        if isinstance(ev, _ENDS):
            done = stack.pop()
            if stack:
                stack[-1].height = max(stack[-1].height, done.height + 1)
            if done.anchor is not None:
                anchors[done.anchor] = (done.value, nodes - done.nodes0, done.height,
                                        done.where0, len(where), len(done.path))
        if not isinstance(ev, _NODES):
            continue
        top = stack[-1] if stack else None
        is_key = top is not None and top.key is _NO_KEY and isinstance(top.value, dict)
        path = () if top is None else top.path if is_key else (
            *top.path, top.key if isinstance(top.value, dict) else len(top.value))

        def fail(message: str, path=path, ev=ev) -> YamlError:
            return _error(source, ev.start_mark, path, message)

        anchor = getattr(ev, "anchor", None)
        if isinstance(ev, yaml.AliasEvent):
            if anchor not in anchors:
                raise fail(f"alias *{anchor} has no anchor &{anchor} before it")
            if anchors[anchor] is None:
                raise fail(f"recursive alias *{anchor}: it is inside the value of &{anchor} "
                           f"(line {anchored_at[anchor]}), which cannot contain itself")
            value, size, height, lo, hi, cut = anchors[anchor]
            if is_key and height:
                raise fail("mapping keys must be plain scalars")
            if len(stack) + height > MAX_DEPTH:
                raise fail(f"*{anchor} nests more than {MAX_DEPTH} levels deep; at most "
                           f"{MAX_DEPTH} are allowed")
            anchor, nodes = None, nodes + size
        else:
            if anchor is not None and anchor in anchors:
                raise fail(f"anchor &{anchor} is defined twice (first on line "
                           f"{anchored_at[anchor]}); give each anchor its own name")
            nodes += 1
        if nodes > MAX_NODES:
            raise fail(f"the document expands to more than {MAX_NODES:,} nodes (aliases "
                       f"included); at most {MAX_NODES:,} are allowed")
        if isinstance(ev, _STARTS):
            if is_key:
                raise fail("mapping keys must be plain scalars")
            if len(stack) >= MAX_DEPTH:
                raise fail(_DEEP)
            kind = "map" if isinstance(ev, yaml.MappingStartEvent) else "seq"
            if ev.tag not in (None, _TAG + kind):
                raise fail(f"tag {ev.tag!r} is not allowed: only plain data")
            value = {} if kind == "map" else []
        elif isinstance(ev, yaml.ScalarEvent):
            value = _scalar(ev, fail)
        elif height:  # an alias of a collection: a copy, so the result stays a tree
            value = copy.deepcopy(value)
        if anchor is not None:
            anchored_at[anchor] = ev.start_mark.line + 1
        if is_key:
            if value in top.value:
                raise _error(source, ev.start_mark, None, f"duplicate key {value!r} at "
                             f"{format_path(path) or 'top level'}")
            top.key = value
            if anchor is not None:
                anchors[anchor] = (value, 1, 0, 0, 0, 0)
            continue
        where.append((path, (ev.start_mark.line + 1, ev.start_mark.column + 1)))
        if isinstance(ev, yaml.AliasEvent):
            where.extend(((*path, *p[cut:]), at) for p, at in where[lo:hi])
            if top is not None:
                top.height = max(top.height, height + 1)
        if top is None:
            root = value
        elif isinstance(top.value, dict):
            top.value[top.key], top.key = value, _NO_KEY
        else:
            top.value.append(value)
        if isinstance(ev, _STARTS):
            stack.append(_Open(value, path, anchor, nodes - 1, len(where)))
            if anchor is not None:
                anchors[anchor] = None
        elif anchor is not None:
            anchors[anchor] = (value, 1, 0, 0, 0, 0)
    if not documents:
        raise YamlError(f"{source}: the file is empty; a scenario needs at least 'name' and "
                        "'guests'")
    return root, dict(where)


def load_yaml(text: str | bytes, source: str = "<string>") -> tuple[object, dict]:
    """Parse one YAML document into plain data and a ``{path: (line, column)}`` map.

    Raises
    ------
    YamlError
        On syntax errors, object tags, duplicate keys, binary junk, and a document over
        any of the limits (:data:`MAX_BYTES`, :data:`MAX_DEPTH`, :data:`MAX_NODES`,
        :data:`MAX_SCALAR`, :data:`MAX_INT_DIGITS`).
    """
    if len(text) > MAX_BYTES:
        unit = "bytes" if isinstance(text, bytes) else "characters"
        raise YamlError(f"{source}: the document has {len(text):,} {unit}; at most "
                        f"{MAX_BYTES:,} (1 MiB) are allowed")
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as e:
            raise YamlError(f"{source}: not a text file (invalid UTF-8 at byte {e.start})") \
                from None
    if "\x00" in text:
        raise YamlError(f"{source}: not a text file (it contains NUL bytes)")
    try:
        parser = _PARSER(text)
        try:
            return _build(parser, source)
        finally:
            parser.dispose()
    except yaml.MarkedYAMLError as e:
        m = e.problem_mark
        problem = "YAML syntax error: " + " ".join(str(e.problem or e).split())
        raise YamlError(f"{source}:{m.line + 1}:{m.column + 1}: {problem}" if m
                        else f"{source}: {problem}") from None
    except yaml.reader.ReaderError as e:
        raise YamlError(f"{source}: not a text file ({e.reason} at character {e.position})") \
            from None
    except yaml.YAMLError as e:
        raise YamlError(f"{source}: YAML error: {' '.join(str(e).split())}") from None


def _limit(n: int) -> str:
    """``1,048,576 (1 MiB)``; the MiB only for a whole number of them."""
    return f"{n:,} ({n >> 20} MiB)" if n and not n % (1 << 20) else f"{n:,}"


def read_file(path: str | os.PathLike, what: str = "YAML file",
              limit: int = MAX_BYTES) -> bytes:
    """The bytes of the regular file ``path``, of at most ``limit`` (:data:`MAX_BYTES`).

    A device, FIFO, socket or directory, or a larger file, is refused before anything
    is read (a FIFO is opened without blocking); at most ``limit + 1`` bytes are
    ever read, so a file that grows meanwhile is still refused.

    Raises
    ------
    YamlError
        Not a regular file, or too large; ``OSError`` if it cannot be opened.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = next((name for test, name in _KINDS if test(st.st_mode)), "not a file")
            raise YamlError(f"{path}: not a regular file ({kind}); give a {what}")
        if st.st_size > limit:
            raise YamlError(f"{path}: the file has {st.st_size:,} bytes; a {what} may have "
                            f"at most {_limit(limit)}")
        chunks, got = [], 0
        while got <= limit and (chunk := os.read(fd, limit + 1 - got)):
            chunks.append(chunk)
            got += len(chunk)
    finally:
        os.close(fd)
    if got > limit:
        raise YamlError(f"{path}: the file grew past {limit:,} bytes while being read; "
                        f"a {what} may have at most {_limit(limit)}")
    return b"".join(chunks)
