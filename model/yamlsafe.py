"""Safe YAML loading that remembers where every value came from.

Only plain data is built (mappings, sequences, scalars): any tag that would
construct an object is refused, duplicate keys are errors, and aliases are
limited in the total size they may expand to (counted on the node graph, without
expanding it), so a "billion laughs" document cannot exhaust memory. Every node's
line and column are kept, keyed by its path, so a later validation error can point
at the file position.

Examples
--------
>>> data, where = load_yaml("a: 1\\nb: [x, {c: 2}]\\n", "s.yaml")
>>> data
{'a': 1, 'b': ['x', {'c': 2}]}
>>> where[("b", 1, "c")]
(2, 12)
"""

from __future__ import annotations

import yaml

from .errors import ConfigError

MAX_NODES = 100_000


class YamlError(ConfigError):
    """A YAML document that cannot be loaded safely; the message names file, line, column."""


class _Loader(yaml.SafeLoader):
    """Composes nodes only; values are built by :func:`_walk`."""


def _count(node, seen: dict[int, int]) -> int:
    """Nodes a document expands to, aliases included (memoized per node)."""
    key = id(node)
    if key in seen:
        return seen[key]
    seen[key] = 1  # guards against recursive structures
    if isinstance(node, yaml.MappingNode):
        n = 1 + sum(_count(k, seen) + _count(v, seen) for k, v in node.value)
    elif isinstance(node, yaml.SequenceNode):
        n = 1 + sum(_count(v, seen) for v in node.value)
    else:
        n = 1
    seen[key] = n
    return n


def _walk(node, path: tuple, where: dict, source: str):
    where[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if not isinstance(node, yaml.ScalarNode) and node.tag not in _COLLECTION_TAGS:
        raise YamlError(f"{source}:{node.start_mark.line + 1}:{node.start_mark.column + 1}: "
                        f"tag {node.tag!r} is not allowed: only plain data")
    if isinstance(node, yaml.MappingNode):
        out = {}
        for k, v in node.value:
            if not isinstance(k, yaml.ScalarNode):
                raise YamlError(f"{source}:{k.start_mark.line + 1}:{k.start_mark.column + 1}: "
                                "mapping keys must be plain scalars")
            key = _scalar(k, source)
            if key in out:
                raise YamlError(f"{source}:{k.start_mark.line + 1}:{k.start_mark.column + 1}: "
                                f"duplicate key {key!r} at {format_path(path) or 'top level'}")
            out[key] = _walk(v, (*path, key), where, source)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_walk(v, (*path, i), where, source) for i, v in enumerate(node.value)]
    return _scalar(node, source)


def _scalar(node, source: str):
    if not isinstance(node, yaml.ScalarNode) or node.tag not in _PLAIN_TAGS:
        raise YamlError(f"{source}:{node.start_mark.line + 1}:{node.start_mark.column + 1}: "
                        f"tag {node.tag!r} is not allowed: only plain data")
    return _CONSTRUCTOR.construct_object(node, deep=True)


_PLAIN_TAGS = {f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null")}
_COLLECTION_TAGS = {"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"}
_CONSTRUCTOR = yaml.SafeLoader("")


def format_path(path: tuple) -> str:
    """``("guests", 2, "workload", "rate")`` -> ``guests[2].workload.rate``."""
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def load_yaml(text: str | bytes, source: str = "<string>") -> tuple[object, dict]:
    """Parse one YAML document into plain data and a ``{path: (line, column)}`` map.

    Raises
    ------
    YamlError
        On syntax errors, object tags, duplicate keys, too many aliases, binary junk.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as e:
            raise YamlError(f"{source}: not a text file (invalid UTF-8 at byte {e.start})") \
                from None
    if "\x00" in text:
        raise YamlError(f"{source}: not a text file (it contains NUL bytes)")
    try:
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as e:
        m = e.problem_mark
        where = f"{source}:{m.line + 1}:{m.column + 1}" if m else source
        raise YamlError(f"{where}: YAML syntax error: {e.problem or e}") from None
    except yaml.YAMLError as e:
        raise YamlError(f"{source}: YAML error: {e}") from None
    if node is None:
        raise YamlError(f"{source}: the file is empty; a scenario needs at least 'name' and "
                        "'guests'")
    size = _count(node, {})
    if size > MAX_NODES:
        raise YamlError(f"{source}: the document expands to {size} nodes (aliases included); "
                        f"at most {MAX_NODES} are allowed")
    where: dict = {}
    return _walk(node, (), where, source), where
