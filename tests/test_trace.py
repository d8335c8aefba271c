"""Arrival traces (model.app.trace): the CSV format a trace file is written in, what it
reads as, and each way a file is refused, with the exact ``file:line:col`` message."""

from __future__ import annotations

import hashlib
import os
import pickle
import threading
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model.app import trace
from model.app.trace import (
    MAX_BYTES,
    MAX_ROWS,
    Trace,
    TraceError,
    cached_trace,
    load_trace,
    parse_trace,
)
from model.errors import ConfigError, PvsimError

SIZES_VALID = ("valid: a whole number of bytes from 0 to 1,099,511,627,776 (2**40), "
               "written as digits")
SECONDS_VALID = "valid: a number of seconds >= 0, such as 0.25 or 1.5e-3"
COLUMNS_VALID = ("valid columns: one time column (time_s, time_ms or time_us), and "
                 "optionally type and size, in any order")


def refusal(data: bytes) -> str:
    with pytest.raises(TraceError) as e:
        parse_trace(data, "t.csv")
    return str(e.value)


# -- what a trace reads as ------------------------------------------------------------


def test_a_small_trace_with_all_three_columns():
    data = b"time_s,type,size\n0,get,512\n0.25,put,4096\n0.25,get,0\n1.5,scan,1099511627776\n"
    t = parse_trace(data, "small.csv")
    assert t.path == "small.csv"
    assert t.times_s.dtype == np.float64 and t.times_s.tolist() == [0.0, 0.25, 0.25, 1.5]
    assert t.type_names == ("get", "put", "scan")
    assert t.types.dtype == np.int32 and t.types.tolist() == [0, 1, 0, 2]
    assert t.sizes.dtype == np.int64 and t.sizes.tolist() == [512, 4096, 0, 2**40]
    assert t.digest == hashlib.sha256(data).hexdigest()
    assert len(t) == 4 and t.duration_s == 1.5


def test_the_columns_are_read_only():
    t = parse_trace(b"time_s\n0.5\n")
    for column in (t.times_s, t.types, t.sizes):
        assert not column.flags.writeable
        with pytest.raises(ValueError, match="read-only"):
            column[0] = 1
    again = pickle.loads(pickle.dumps(t))  # also in a sweep's worker
    assert again.times_s.tolist() == [0.5] and not again.times_s.flags.writeable


def test_without_type_and_size_columns_every_request_is_of_type_default_and_has_no_size():
    t = parse_trace(b"time_s\n0.1\n0.2\n")
    assert t.type_names == ("default",) and t.types.tolist() == [0, 0]
    assert t.sizes.tolist() == [-1, -1]


@pytest.mark.parametrize("column, text, seconds", [
    ("time_s", "1.5", 1.5), ("time_ms", "1500", 1.5), ("time_us", "250", 0.00025),
    ("time_ms", "0.5", 0.0005), ("time_s", "1.5e-3", 0.0015), ("time_s", "-0", 0.0),
])
def test_times_are_in_the_unit_of_the_time_column_and_read_as_seconds(column, text, seconds):
    t = parse_trace(f"{column}\n{text}\n".encode())
    assert t.times_s.tolist() == [seconds] and str(t.times_s[0]) != "-0.0"


def test_comments_blank_lines_spaces_crlf_and_column_order():
    data = (b"\xef\xbb\xbf# an arrival trace\r\n"  # a byte order mark, CRLF line ends
            b"\r\n"
            b"  size , time_ms,type  \r\n"  # the columns in any order, spaces around
            b"# the first second\r\n"
            b"100,\t0, a\r\n"
            b"\r\n"
            b"   # indented comment\r\n"
            b"200 , 1000 ,b\r\n")
    t = parse_trace(data)
    assert t.times_s.tolist() == [0.0, 1.0] and t.sizes.tolist() == [100, 200]
    assert t.type_names == ("a", "b") and t.types.tolist() == [0, 1]


def test_types_get_ids_in_order_of_first_appearance():
    t = parse_trace(b"time_s,type\n0,write\n1,read\n2,write\n3,meta.v2\n4,read\n")
    assert t.type_names == ("write", "read", "meta.v2")
    assert t.types.tolist() == [0, 1, 0, 2, 1]
    assert [t.type_names[i] for i in t.types] == ["write", "read", "write", "meta.v2", "read"]


# -- what is refused -------------------------------------------------------------------


@pytest.mark.parametrize("data, message", [
    # the header
    (b"type,size\nget,1\n", "t.csv:1:1: no time column (columns: 'type', 'size'); "
     + COLUMNS_VALID),
    (b"time_s,kind\n0,a\n", "t.csv:1:8: unknown column 'kind'; " + COLUMNS_VALID),
    (b"time_s,,size\n0,,1\n", "t.csv:1:8: an empty column name; " + COLUMNS_VALID),
    (b"time_s,type,type\n0,a,a\n", "t.csv:1:13: column 'type' appears twice (first in "
     "column 8); each column appears once"),
    (b"time_s,time_ms\n0,0\n", "t.csv:1:8: a second time column 'time_ms' (the first is "
     "'time_s'); a trace has exactly one of time_s, time_ms, time_us"),
    # the number of fields: where the missing field would be, or the first extra one
    (b"time_s,type,size\n0.1,a\n", "t.csv:2:6: 2 fields ('size' missing); the header has "
     "3: time_s, type, size"),
    (b"time_s,type\n0.1,a,5\n", "t.csv:2:7: 3 fields (too many); the header has 2: "
     "time_s, type"),
    (b"time_s\n0,5\n", "t.csv:2:3: 2 fields (too many); the header has 1: time_s"),
    # times
    (b"time_s\nabc\n", "t.csv:2:1: time_s 'abc' is not a number; " + SECONDS_VALID),
    (b"time_s\n1_000\n", "t.csv:2:1: time_s '1_000' is not a number; " + SECONDS_VALID),
    (b"time_s\n\n", "t.csv:1:1: a header and no data rows; a trace needs at least one "
     "request (a row under the header)"),
    (b"time_s,size\n,1\n", "t.csv:2:1: time_s is empty; " + SECONDS_VALID),
    (b"time_s\n0.5\n-0.5\n", "t.csv:3:1: time_s -0.5 is negative; " + SECONDS_VALID),
    (b"time_s\n0.5\n# c\n0.5\n0.3\n", "t.csv:5:1: time_s 0.3 is earlier than 0.5 on line 4; "
     "times must not decrease (equal times are simultaneous arrivals)"),
    (b"time_ms\nNaN\n", "t.csv:2:1: time_ms 'NaN' is not a finite number; valid: a number "
     "of milliseconds >= 0, such as 0.25 or 1.5e-3"),
    (b"time_s\ninf\n", "t.csv:2:1: time_s 'inf' is not a finite number; " + SECONDS_VALID),
    (b"time_s\n1e999\n", "t.csv:2:1: time_s '1e999' is beyond the range of a float; "
     + SECONDS_VALID),
    # sizes
    (b"time_s,size\n0,-5\n", "t.csv:2:3: size -5 is negative; " + SIZES_VALID),
    (b"time_s,size\n0, 1.5\n", "t.csv:2:4: size '1.5' is not a whole number of bytes; "
     + SIZES_VALID),
    (b"time_s,size\n0,1e3\n", "t.csv:2:3: size '1e3' is not a whole number of bytes; "
     + SIZES_VALID),
    (b"time_s,size\n0,+7\n", "t.csv:2:3: size '+7' is not a whole number of bytes; "
     + SIZES_VALID),
    (b"time_s,size\n0,1099511627777\n", "t.csv:2:3: size 1099511627777 is too large; "
     + SIZES_VALID),
    # types
    (b"time_s,type\n0,a b\n", "t.csv:2:3: type 'a b' is not a valid type name; valid: 1 "
     "to 64 letters, digits, '_', '.' and '-'"),
    (b"time_s,type\n0," + b"x" * 65 + b"\n", "t.csv:2:3: type '" + "x" * 65 + "' is not "
     "a valid type name; valid: 1 to 64 letters, digits, '_', '.' and '-'"),
    # no rows
    (b"", "t.csv:1:1: no header row (the file is empty or only comments); a trace starts "
     "with a header naming its columns (time_s, time_ms, time_us, type, size), then a row "
     "per request"),
    (b"# nothing yet\n\n", "t.csv:1:1: no header row (the file is empty or only comments); "
     "a trace starts with a header naming its columns (time_s, time_ms, time_us, type, "
     "size), then a row per request"),
    (b"# c\ntime_s\n# c\n", "t.csv:2:1: a header and no data rows; a trace needs at least "
     "one request (a row under the header)"),
])
def test_a_bad_trace_is_refused_at_its_position(data, message):
    assert refusal(data) == message


@pytest.mark.parametrize("data, message", [
    (b"time_s\n0.1\n\xff\xfe\x00junk\n", "t.csv:3:1: not a text file: byte 0xff is not "
     "UTF-8 (invalid start byte); a trace is UTF-8 CSV text"),
    (b"time_s\n0.1\n0.\x002\n", "t.csv:3:3: not a text file: a NUL byte; a trace is CSV "
     "text (tab, CR and LF are the only control characters allowed)"),
    (b"time_s,type\n0,\xc3\xa9t\xc3\xa9\x07\n", "t.csv:2:6: not a text file: control "
     "character U+0007; a trace is CSV text (tab, CR and LF are the only control "
     "characters allowed)"),  # the column counts characters, not bytes
    (b"time_s\n\xc2\x85\n", "t.csv:2:1: not a text file: control character U+0085; a trace "
     "is CSV text (tab, CR and LF are the only control characters allowed)"),
    (b"\x89PNG\r\n\x1a\n", "t.csv:1:1: not a text file: byte 0x89 is not UTF-8 (invalid "
     "start byte); a trace is UTF-8 CSV text"),
    (b"time_s\n0.\x00\xff\n", "t.csv:2:3: not a text file: a NUL byte; a trace is CSV text "
     "(tab, CR and LF are the only control characters allowed)"),  # the first bad byte
])
def test_binary_junk_is_refused_at_the_first_bad_byte(data, message):
    assert refusal(data) == message


def test_up_to_ten_problems_are_reported_in_file_order():
    rows = b"".join(b"x%d,%d\n" % (i, -i) for i in range(1, 7))
    lines = refusal(b"time_s,size\n" + rows).split("\n")
    assert lines[:3] == [
        f"t.csv:2:1: time_s 'x1' is not a number; {SECONDS_VALID}",
        f"t.csv:2:4: size -1 is negative; {SIZES_VALID}",
        f"t.csv:3:1: time_s 'x2' is not a number; {SECONDS_VALID}",
    ]
    assert len(lines) == 11
    assert lines[-1] == "t.csv:7:1: (more problems from here on; only the first 10 are shown)"
    assert refusal(b"time_s,size\nx1,-1\nx2,-2\n").count("\n") == 3  # 4 problems, no note


def test_more_rows_than_the_limit_are_refused():
    assert refusal(b"time_s\n" + b"0\n" * (MAX_ROWS + 1)) == (
        "t.csv:10000002:1: more than 10,000,000 data rows; a trace may have at most "
        "10,000,000 requests")


def test_bytes_over_the_size_limit_are_refused():
    assert refusal(bytes(MAX_BYTES + 1)) == (
        "t.csv: the trace has 67,108,865 bytes; a trace may have at most 67,108,864 (64 MiB)")


def test_every_refusal_is_a_config_error():
    assert issubclass(TraceError, ConfigError) and issubclass(TraceError, PvsimError)


# -- files ------------------------------------------------------------------------------


def test_load_trace_reads_a_file(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes(b"time_us,size\n10,1\n20,2\n")
    t = load_trace(path)
    assert t.path == str(path) and t.times_s.tolist() == [1e-05, 2e-05]
    assert t.digest == hashlib.sha256(path.read_bytes()).hexdigest()
    path.write_bytes(b"time_us,size\n10,1\n5,2\n")
    with pytest.raises(TraceError, match=f"^{path}:3:1: time_us 5 is earlier than 10 on "
                       "line 2; "):
        load_trace(path)


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(tmp_path):
    big = tmp_path / "big.csv"
    with open(big, "wb") as f:  # sparse: no disk space, and nothing is read
        f.truncate(MAX_BYTES + 1)
    start = time.perf_counter()
    with pytest.raises(TraceError) as e:
        load_trace(big)
    assert time.perf_counter() - start < 0.5
    assert str(e.value) == (f"{big}: the file has 67,108,865 bytes; a trace file may have at "
                            "most 67,108,864 (64 MiB)")
    with open(big, "wb") as f:  # at the limit it is read (and refused for its contents)
        f.truncate(MAX_BYTES)
    with pytest.raises(TraceError, match=f"^{big}:1:1: not a text file: a NUL byte"):
        load_trace(big)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs")
def test_directories_devices_and_fifos_are_refused_before_reading(tmp_path):
    fifo = tmp_path / "fifo.csv"
    os.mkfifo(fifo)
    for path, kind in [(tmp_path, "a directory"), ("/dev/zero", "a character device"),
                       (fifo, "a FIFO")]:
        if not os.path.exists(path):
            continue
        box: list[str] = []
        t = threading.Thread(target=lambda p=path, b=box: b.append(_refused(p)), daemon=True)
        t.start()
        t.join(2)
        assert not t.is_alive(), f"reading {path} blocked"
        assert box == [f"{path}: not a regular file ({kind}); give a trace file"]


def _refused(path) -> str:
    try:
        load_trace(path)
    except TraceError as e:
        return str(e)
    return "loaded"


def test_a_missing_file_is_a_trace_error(tmp_path):
    with pytest.raises(TraceError, match=r"nope.csv: cannot read: No such file or directory"):
        load_trace(tmp_path / "nope.csv")
    with pytest.raises(TraceError, match=r"nope.csv: cannot read: No such file or directory"):
        cached_trace(tmp_path / "nope.csv")


# -- the cache ---------------------------------------------------------------------------


def test_cached_trace_parses_a_file_once_while_it_stays_the_same(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes(b"time_s\n0.5\n")
    first = cached_trace(path)
    assert cached_trace(path) is first and cached_trace(path, first.digest) is first
    other = cached_trace(os.path.join(tmp_path, ".", "t.csv"))  # the same file by another name:
    assert other.path.endswith("/./t.csv") and other.times_s is first.times_s  # one parse
    os.utime(path, ns=(1, 1))  # the same size, another modification time: parsed again
    again = cached_trace(path)
    assert again is not first and again.times_s.tolist() == [0.5]
    path.write_bytes(b"time_s\n0.5\n0.75\n")  # another size
    assert cached_trace(path).times_s.tolist() == [0.5, 0.75]


def test_cached_trace_refuses_a_file_changed_since_it_was_validated(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes(b"time_s\n0.5\n")
    validated = cached_trace(path).digest
    path.write_bytes(b"time_s\n0.5\n1.0\n")
    now = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(TraceError) as e:
        cached_trace(path, validated)
    assert str(e.value) == (f"{path}: the trace file changed since the scenario was "
                            f"validated (sha256 {validated[:12]}... then, {now[:12]}... now); "
                            "validate the scenario again")
    path.write_bytes(b"time_s\nbroken\n")  # changed and broken: the change is the news
    with pytest.raises(TraceError, match="changed since the scenario was validated"):
        cached_trace(path, validated)
    with pytest.raises(ValueError, match="64 hex digits"):
        cached_trace(path, validated[:12])


# -- properties ----------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=0, allow_infinity=False, allow_nan=False), min_size=1,
                max_size=50))
def test_times_written_with_repr_read_back_exactly(values):
    values.sort()
    t = parse_trace(("time_s\n" + "".join(f"{v!r}\n" for v in values)).encode())
    assert t.times_s.tolist() == values
    assert t.times_s.view(np.int64).tolist() == np.array(values).view(np.int64).tolist()


_ODD = st.sampled_from(["0", "-1", "-0", "nan", "1e999", "", "x", "a b", "007", "0" * 30 + "5",
                        "1099511627777", "1.5", "\t4", "#", "\u00e9", "1,2"])
_GOOD = {"time_ms": lambda i: st.sampled_from([f"{i}", f" {i}.5 ", f"{i}e0", f"{i}"]),
         "type": lambda i: st.sampled_from(["get", "put", "a.b-c_1"]),
         "size": lambda i: st.sampled_from(["0", "4096", " 12 ", "1099511627776"])}


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_the_fast_parser_agrees_with_the_row_by_row_one(data):
    """Whole-column parsing is only a shortcut: on any input it gives what parsing row by
    row gives, the same columns or the same message."""
    header = data.draw(st.permutations(["time_ms", *data.draw(
        st.sampled_from([[], ["type"], ["size"], ["type", "size"]]))]))
    junk = data.draw(st.booleans())  # some odd fields, or only good ones
    rows = []
    for i in range(data.draw(st.integers(1, 8))):
        fields = [data.draw(_ODD if junk and data.draw(st.integers(0, 3)) == 0 else
                            _GOOD[c](i)) for c in header]
        rows.append(",".join(fields))
    text = (",".join(header) + "\n" + "".join(r + "\n" for r in rows)).encode()
    outcomes = []
    for fast in (True, False):
        try:
            t = trace._parse(text, "t.csv", fast=fast)
            outcomes.append((t.times_s.tolist(), t.types.tolist(), t.type_names,
                             t.sizes.tolist()))
        except TraceError as e:
            outcomes.append(str(e))
    assert outcomes[0] == outcomes[1]


def test_a_trace_can_be_made_in_code_and_is_checked():
    t = Trace("made", [0.0, 1.0], [0, 1], ("a", "b"), [10, -1], "0" * 64)
    assert t.times_s.dtype == np.float64 and not t.types.flags.writeable
    assert repr(t) == "Trace('made': 2 requests in 1 s, types a, b, sha256 000000000000)"
    with pytest.raises(ValueError, match="not decreasing"):
        Trace("made", [1.0, 0.0], [0, 0], ("a",), [1, 1], "0" * 64)
    with pytest.raises(ValueError, match="ids from 0 to 0"):
        Trace("made", [0.0], [1], ("a",), [1], "0" * 64)
    times = np.array([0.0, 1.0])
    Trace("made", times, [0, 0], ("a",), [1, 1], "0" * 64)
    assert times.flags.writeable  # a writeable array given is copied, not frozen
