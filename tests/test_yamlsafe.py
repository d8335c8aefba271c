"""Bounded YAML loading (issue 10: M1, L5, H3): every reproducer of
/work/shared/reliability (copied to tests/data/reliability) is refused with one
``pvsim: error:`` line naming file, line, key path and the limit, quickly; numbers
load as YAML 1.2 does, and the forms YAML 1.1 reads otherwise are refused."""

from __future__ import annotations

import math
import os
import threading
import time
from pathlib import Path

import pytest
import yaml

from analysis.cli import main
from model.errors import PvsimError
from model.scenario import ScenarioError, load_scenario, parse_scenario, with_overrides, yamlsafe
from model.scenario.yamlsafe import MAX_BYTES, MAX_DEPTH, YamlError, load_yaml, read_file

DATA = Path(__file__).parent / "data" / "reliability"
SPIN = DATA / "cli_spin.yaml"
DEEP = "[" * 3000 + "]" * 3000
DIGITS = "9" * 5000


@pytest.fixture(params=["libyaml", "python"])
def parser(request, monkeypatch):
    """Each test runs with libyaml's event parser and with PyYAML's pure-Python one."""
    if request.param == "libyaml" and not yaml.__with_libyaml__:
        pytest.skip("PyYAML without libyaml")
    monkeypatch.setattr(yamlsafe, "_PARSER", yaml.cyaml.CParser if request.param == "libyaml"
                        else yamlsafe._PyParser)


def refused(capsys, tmp_path, argv: list[str], *facts: str) -> str:
    """``pvsim ARGV`` exits 2 within 5 s with one error line holding every fact."""
    out = tmp_path / "out"
    start = time.perf_counter()
    status = main([*argv, "-o", str(out)])
    assert time.perf_counter() - start < 5
    err = capsys.readouterr().err
    assert status == 2 and "Traceback" not in err
    assert len(err.splitlines()) == 1 and err.startswith("pvsim: error: "), err
    for fact in facts:
        assert fact in err, (fact, err)
    assert not out.exists()
    return err


@pytest.mark.parametrize(("name", "facts"), [
    ("yaml_deep_nesting.yaml", (":2:", ": guests: more than 64 levels of nesting; at most 64")),
    ("yaml_nested_maps_2000.yaml", (":2:", ": guests.a.a.a.a", "more than 64 levels")),
    ("yaml_huge_int_5000_digits.yaml", (":3:7: seed: an integer of 5,000 digits; at most 100",)),
    ("yaml_recursive_alias.yaml", (":2:13: guests[0]: recursive alias *a",)),
    ("yaml_recursive_alias_map.yaml", (":3:48: guests[0].x: recursive alias *g",
                                       "&g (line 3)")),
])
def test_a_reproducer_scenario_is_refused_in_one_line(name, facts, capsys, tmp_path):
    refused(capsys, tmp_path, ["run", str(DATA / name)], f"pvsim: error: {DATA / name}:", *facts)
    with pytest.raises(ScenarioError, match="at most|recursive alias"):
        load_scenario(str(DATA / name))


def test_a_deep_design_file_is_refused(capsys, tmp_path):
    design = DATA / "sweep_design_yaml_deep.yaml"
    refused(capsys, tmp_path, ["sweep", str(SPIN), "--design", str(design)],
            f"{design}:1:", "more than 64 levels of nesting; at most 64")


@pytest.mark.parametrize(("value", "facts"), [
    (DEEP, ("--set guests:1:", "more than 64 levels of nesting")),
    ("&a [*a]", ("--set guests:1:5: [0]: recursive alias *a",)),
    ({"seed": DIGITS}, ("--set seed:1:1: an integer of 5,000 digits; at most 100",)),
])
def test_a_reproducer_set_value_is_refused(value, facts, capsys, tmp_path):
    override = (f"seed={value['seed']}" if isinstance(value, dict) else f"guests={value}")
    err = refused(capsys, tmp_path, ["run", str(SPIN), "--set", override], *facts)
    assert len(err) < 300  # the override is quoted shortened
    with pytest.raises(PvsimError, match="at most|recursive alias"):
        with_overrides(load_scenario(str(SPIN)), [override])
    with pytest.raises(PvsimError, match="at most|recursive alias"):
        parse_scenario(SPIN.read_text(), "spin.yaml", [override])


def _within(seconds: float, fn):
    """``fn()``'s exception, raised in a thread that must end within ``seconds``."""
    box: list = []

    def call():
        try:
            fn()
        except BaseException as e:  # noqa: B036 - handed back to the test
            box.append(e)

    t = threading.Thread(target=call, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), f"still running after {seconds} s"
    return box[0] if box else None


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs")
def test_devices_fifos_and_directories_are_refused_before_reading(tmp_path, capsys):
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    for path, kind in [("/dev/zero", "a character device"), (fifo, "a FIFO"),
                       (tmp_path, "a directory")]:
        if not os.path.exists(path):
            continue
        e = _within(2, lambda path=path: load_scenario(str(path)))
        assert isinstance(e, ScenarioError)
        assert str(e) == f"{path}: not a regular file ({kind}); give a scenario file"
        refused(capsys, tmp_path, ["run", str(path)], f"{path}: not a regular file ({kind})")


def test_a_large_file_is_refused_before_it_is_parsed(tmp_path, capsys):
    big = tmp_path / "big.yaml"
    big.write_text("name: big\nguests: [{name: a, workload: {profile: spin}}]\n"
                   + ("#" + "x" * 1023 + "\n") * 2048)
    start = time.perf_counter()
    with pytest.raises(ScenarioError, match=r"big.yaml: the file has 2,099,257 bytes; a "
                       r"scenario file may have at most 1,048,576 \(1 MiB\)"):
        load_scenario(str(big))
    assert time.perf_counter() - start < 0.2
    refused(capsys, tmp_path, ["run", str(big)], "at most 1,048,576 (1 MiB)")
    just = tmp_path / "just.yaml"  # exactly at the limit: read and loaded
    head = b"name: just\nguests: [{name: a, workload: {profile: spin}}]\n"
    just.write_bytes(head + b"#" * (MAX_BYTES - len(head) - 1) + b"\n")
    assert len(read_file(just)) == MAX_BYTES and load_scenario(str(just)).name == "just"
    with pytest.raises(YamlError, match="the document has 1,048,577 characters"):
        load_yaml("#" * (MAX_BYTES + 1))


@pytest.mark.parametrize(("text", "value"), [
    ("0x10", 16), ("0o17", 15), ("0", 0), ("-0", 0), ("+5", 5), ("9" * 100, int("9" * 100)),
    ("1e-05", 1e-05), ("-1.5E3", -1500.0), ("1.", 1.0), (".5", 0.5), ("010.5", 10.5),
    (".inf", math.inf), ("-.Inf", -math.inf), ("+.INF", math.inf),
    ("yes", "yes"), ("No", "No"), ("on", "on"), ("OFF", "OFF"), ("y", "y"),
    ("true", True), ("FALSE", False), ("~", None), ("Null", None), ("", None),
    ("'010'", "010"), ('"0x10"', "0x10"), ("!!str 010", "010"), ("!!float 1", 1.0),
    ("!!int '12'", 12), ("!!bool true", True), ("!!null ''", None),
    ("2024-01-01", "2024-01-01"), ("1.2.3", "1.2.3"), ("<<", "<<"), ("=", "="),
    ("0o", "0o"), ("0x", "0x"), (".NaN", math.nan),
])
def test_plain_scalars_load_as_yaml_1_2_does(text, value, parser):
    got = load_yaml(f"v: {text}")[0]["v"]
    assert type(got) is type(value)
    assert got == value or (isinstance(value, float) and math.isnan(got))


@pytest.mark.parametrize(("text", "message"), [
    ("count: 010", "s.yaml:1:8: count: 010 is ambiguous: YAML 1.1 reads it as octal (8), "
                   "YAML 1.2 as 10; write 10, or 0o10 for octal"),
    ("count: -010", "count: -010 is ambiguous: YAML 1.1 reads it as octal (-8), YAML 1.2 as "
                    "-10; write -10"),
    ("count: 09", "count: 09 is ambiguous: YAML 1.1 reads it as a string, YAML 1.2 as 9; "
                  "write 9"),
    ("n: 00", "write 0"),
    ("n: 1_000", "s.yaml:1:4: n: 1_000 is ambiguous: YAML 1.1 reads it as a number, YAML 1.2 "
                 "as a string; write the number in decimal (no '_' or ':'), or quote the string"),
    ("n: 0b11", "0b11 is ambiguous"), ("t: 1:20", "1:20 is ambiguous"),
    ("t: 1:20.5", "1:20.5 is ambiguous"), ("t: 1_0.5", "1_0.5 is ambiguous"),
    ("n: -0x10", "-0x10 is ambiguous"),
    ("n: 1e999", "n: 1e999 is out of the range of a float; write .inf for infinity"),
    ("n: " + "1" * 101, "n: an integer of 101 digits; at most 100 are allowed"),
    ("n: 0x" + "f" * 101, "an integer of 101 digits"),
    ("s: " + "x" * 10_001, "s: a scalar of 10,001 characters; at most 10,000 are allowed"),
    ("n: !!int abc", "n: 'abc' is not a valid !!int"), ("b: !!bool yes", "not a valid !!bool"),
    ("n: !!float true", "not a valid !!float"), ("n: !!int 010", "010 is ambiguous"),
    ("n: ! 12", "tag '!' is not allowed: only plain data"),
    ("name: !!python/object/apply:os.system [ls]", "1:7: name: tag "
     "'tag:yaml.org,2002:python/object/apply:os.system' is not allowed: only plain data"),
    ("a: !!set {x: null}", "tag 'tag:yaml.org,2002:set' is not allowed"),
    ("a: !!map [1]", "is not allowed: only plain data"),
    ("a: 1\na: 2\n", "s.yaml:2:1: duplicate key 'a' at top level"),
    ("a: {b: 1, b: 2}", "1:11: duplicate key 'b' at a"),
    ("a: {1: x, true: y}", "duplicate key True at a"),
    ("[1]: x", "s.yaml:1:1: mapping keys must be plain scalars"),
    ("a: &k [1]\nb: {*k : 2}", "s.yaml:2:5: b: mapping keys must be plain scalars"),
    ("a: 1\n---\nb: 2\n", "s.yaml:2:1: a second YAML document starts here"),
    ("a: &x 1\nb: &x 2\n", "s.yaml:2:4: b: anchor &x is defined twice (first on line 1)"),
    ("a: *x", "s.yaml:1:4: a: alias *x has no anchor &x before it"),
    ("a: &a {b: [1, {c: *a}]}", "s.yaml:1:19: a.b[1].c: recursive alias *a"),
    ("a: [1, 2", "YAML syntax error"), ("a: \x01", "s.yaml: not a text file"),
    ("a: x\x00", "contains NUL bytes"), (b"a: \xff", "invalid UTF-8 at byte 3"),
    ("# only a comment\n", "s.yaml: the file is empty"),
])
def test_a_document_that_cannot_load_safely_is_refused(text, message, parser):
    with pytest.raises(YamlError) as err:
        load_yaml(text, "s.yaml")
    assert message in str(err.value) and "\n" not in str(err.value)


def test_nesting_at_the_limit_loads_and_one_more_level_is_refused(parser):
    data, where = load_yaml("[" * MAX_DEPTH + "]" * MAX_DEPTH)
    for _ in range(MAX_DEPTH - 1):
        data = data[0]
    assert data == [] and where[(0,) * (MAX_DEPTH - 1)] == (1, MAX_DEPTH)
    with pytest.raises(YamlError, match=f"1:{MAX_DEPTH + 1}: .*more than 64 levels"):
        load_yaml("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1))
    def block(n):  # n + 1 mappings, the top level's included
        return "".join(f"{' ' * i}k{i}:\n" for i in range(n)) + " " * n + "v: 1\n"

    assert load_yaml(block(MAX_DEPTH - 1))[0]["k0"]["k1"]
    with pytest.raises(YamlError, match=r"65:65: k0.k1.k2.*k63: more than 64 levels"):
        load_yaml(block(MAX_DEPTH))
    shallow = "a: &a " + "[" * 40 + "]" * 40 + "\nb: " + "[" * 23
    assert load_yaml(shallow + "*a" + "]" * 23)[0]["b"]  # 1 + 23 + 40 = 64 levels
    with pytest.raises(YamlError, match=r"2:28: b\[0\].*\*a nests more than 64 levels deep"):
        load_yaml(shallow + "[*a]" + "]" * 23)
    with pytest.raises(YamlError, match="more than 64 levels"):  # at once, either parser
        load_yaml(DEEP, "--set guests")


def test_aliases_are_copies_and_point_at_their_anchor(parser):
    data, where = load_yaml("a: &j {p: 1, q: [2]}\nb: *j\nc: [*j, &s 5, *s]\n")
    assert data == {"a": {"p": 1, "q": [2]}, "b": {"p": 1, "q": [2]},
                    "c": [{"p": 1, "q": [2]}, 5, 5]}
    data["b"]["q"].append(3)
    assert data["a"]["q"] == [2] and data["c"][0]["q"] == [2]  # a tree: nothing shared
    assert where[("b",)] == (2, 4) and where[("b", "q", 0)] == where[("a", "q", 0)] == (1, 18)
    assert where[("c", 0, "p")] == (1, 11) and where[("c", 2)] == (3, 15)


def test_an_alias_bomb_is_refused_without_being_built(parser):
    laughs = "a: &a [" + ",".join(["x"] * 10) + "]\n" + "".join(
        f"{c}: &{c} [{','.join(['*' + p] * 10)}]\n"
        for p, c in zip("abcdefgh", "bcdefghi", strict=True))
    start = time.perf_counter()
    with pytest.raises(YamlError, match=r"s.yaml:5:29: e\[7\]: the document expands to "
                       "more than 100,000 nodes"):
        load_yaml(laughs, "s.yaml")  # 10**9 nodes if built
    assert time.perf_counter() - start < 2


def test_yaml_1_2_values_in_a_scenario(tmp_path, capsys):
    base = "name: n\nguests:\n  - {name: NAME, count: COUNT, workload: {profile: spin}}\n"
    s = parse_scenario(base.replace("NAME", "no").replace("COUNT", "0x2")
                       + "host: {timeslice_ms: 5e-01}\nrecord: {requests: false}\n", "s.yaml")
    assert s.guests[0].name == "no" and s.guests[0].count == 2
    assert s.host.timeslice_ms == 0.5
    assert s.record.requests is False
    for word in ("off", "maybe"):  # YAML 1.2: strings, and a boolean is true or false
        bad = base.replace("NAME", "a").replace("COUNT", "1") + f"record: {{requests: {word}}}\n"
        with pytest.raises(ScenarioError, match=r"s.yaml:4:20: record.requests: Input should "
                           rf"be a valid boolean \(got '{word}'\): write true or false"):
            parse_scenario(bad, "s.yaml")
    f = tmp_path / "octal.yaml"
    f.write_text(base.replace("NAME", "a").replace("COUNT", "010"))
    refused(capsys, tmp_path, ["run", str(f)], f"{f}:3:22: guests[0].count: 010 is ambiguous",
            "write 10, or 0o10 for octal")
