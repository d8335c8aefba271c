"""``pvsim report DIR``: one self-contained HTML file per results directory (issue 15,
item 2). Each kind of directory is made once, small, by the command itself, so the
report can be checked against what the command printed."""

from __future__ import annotations

import contextlib
import io
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest

from analysis.cli import main
from analysis.report import REPORT_FILE, ReportError, build_report, kind_of, write_report
from analysis.results import Results
from analysis.resultsdir import check_replaceable
from model.scenario import parse_scenario, with_overrides

QUESTION = "Does a CPU hog slow a small web server down?"
RUN = f"""# {QUESTION}
#
#   pvsim run tiny.yaml   (a <small> & quick run)
name: tiny
seed: 1
duration: 20ms
hardware: nehalem-2.93ghz-ept
host:
  pcpus: 2
  devices: {{ssd0: {{kind: ssd}}, nic0: {{kind: nic}}}}
guests:
  - {{name: web, mode: pv, memory_mb: 64, devices: [{{device: ssd0}}, {{device: nic0}}],
     workload: {{profile: web_server, params: {{requests: 1000, workers: 1,
                 arrivals: {{kind: closed, users: 1, think_ms: 0.5}}}}}}}}
  - {{name: hog, mode: pv, memory_mb: 64, workload: {{profile: spin}}}}
"""
COMPARE = """# How much does each mode cost a disk reader?
name: cmp
duration: 10ms
hardware: nehalem-2.93ghz-ept
host: {pcpus: 2, devices: {ssd0: {kind: ssd}}}
guests:
  - {name: reader, workload: {profile: disk_io}, devices: [{device: ssd0}]}
  - {name: legacy, os: unmodified, mode: hvm, workload: {profile: spin}}
"""
SPIN = """# How many CPU hogs before the host is 90% busy?
name: hogs
duration: 5ms
hardware: nehalem-2.93ghz-ept
host: {pcpus: 2}
guests:
  - {name: a, workload: {profile: spin}}
"""


def made(tmp: Path, name: str, text: str, *args: str) -> tuple[Path, str]:
    """Run ``pvsim ARGS`` on scenario ``text`` into ``tmp/name``; the directory and what
    the command printed."""
    f = tmp / f"{name}.yaml"
    f.write_text(text)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main([args[0], str(f), *args[1:], "-o", str(tmp / name)]) == 0
    return tmp / name, out.getvalue()


@pytest.fixture(scope="module")
def dirs(tmp_path_factory) -> dict[str, tuple[Path, str]]:
    tmp = tmp_path_factory.mktemp("report")
    return {
        "run": made(tmp, "run", RUN, "run"),
        "compare": made(tmp, "compare", COMPARE, "compare", "--modes", "native,pv"),
        "sweep": made(tmp, "sweep", SPIN, "sweep", "--vary", "guests.a.count=1,2,3",
                      "--replications", "2"),
        "plan": made(tmp, "plan", SPIN, "plan", "--vary", "guests.a.count", "--slo",
                     "host.busy_fraction < 0.9", "--limit", "4", "--replications", "2"),
    }


class Page(HTMLParser):
    """An HTML document read with the standard library's parser: whether every tag
    opened is closed in order, every ``src``/``href``, the images' sources, and each
    table's title (the ``p.title`` before it) and rows of cell text."""

    VOID = {"meta", "img", "br", "wbr", "hr", "link", "input"}

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.refs: list[str] = []
        self.tables: list[tuple[str, list[list[str]]]] = []
        self.text: list[str] = []
        self._title: list[str] | None = None
        self._last_title = ""
        self._cell: list[str] | None = None
        self.feed(text)
        self.close()
        if self.stack:
            self.problems.append(f"never closed: {self.stack}")

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.refs += [a[k] for k in ("src", "href") if k in a]
        if tag in self.VOID:
            return
        self.stack.append(tag)
        if tag == "p" and a.get("class") == "title":
            self._title = []
        elif tag == "table":
            self.tables.append((self._last_title, []))
        elif tag == "tr":
            self.tables[-1][1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in self.VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()
        if tag == "p" and self._title is not None:
            self._last_title, self._title = "".join(self._title), None
        elif tag in ("td", "th"):
            self.tables[-1][1][-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data):
        self.text.append(data)
        for part in (self._title, self._cell):
            if part is not None:
                part.append(data)

    def table(self, title_start: str) -> list[list[str]]:
        """The rows (the heads first) of the first table whose title starts so."""
        return next(rows for title, rows in self.tables if title.startswith(title_start))

    @property
    def all_text(self) -> str:
        return "".join(self.text)

    @property
    def images(self) -> list[str]:
        return [r for r in self.refs if r.startswith("data:image/png;base64,")]


def printed_tables(out: str) -> list[list[list[str]]]:
    """The body rows of each table rich printed, as cell text."""
    tables, rows = [], []
    for line in out.splitlines():
        if line.startswith("│"):
            rows.append([c.strip() for c in line.split("│")[1:-1]])
        elif line.startswith("└"):
            tables.append(rows)
            rows = []
    return tables


def report(d: Path) -> tuple[str, Page]:
    text = build_report(d)
    page = Page(text)
    assert page.problems == [], page.problems[:5]
    return text, page


def pngs(d: Path) -> list[Path]:
    return sorted(d.rglob("*.png"))


@pytest.mark.parametrize("kind", ["run", "compare", "sweep", "plan"])
def test_each_report_is_balanced_html_with_every_png_inline_and_nothing_fetched(dirs, kind):
    d, _ = dirs[kind]
    assert kind_of(d) == kind
    text, page = report(d)
    assert len(pngs(d)) >= 1 and len(page.images) == len(pngs(d))
    assert {f.relative_to(d).as_posix() for f in pngs(d)} <= set(page.text)  # the captions
    assert [r for r in page.refs if not r.startswith("data:")] == []
    assert "http://" not in text and "https://" not in text
    assert "<details><summary>The resolved scenario" in text


def test_a_run_report_asks_the_question_and_shows_the_tables_as_printed(dirs):
    d, out = dirs["run"]
    text, page = report(d)
    assert f"{QUESTION}\n\n  pvsim run tiny.yaml   (a <small> & quick run)" in page.all_text
    guests, streams, requests = printed_tables(out)
    run = page.table("pvsim run tiny: 0.020 s simulated")
    assert run[0][:3] == ["guest", "mode", "cpu ms"] and run[1:] == guests
    cpu_ms = {row[0]: row[2] for row in guests}  # as printed, such as {'web': '4.21', ...}
    assert set(cpu_ms) == {"web", "hog"} and all(re.fullmatch(r"\d+\.\d\d", v)
                                                 for v in cpu_ms.values())
    assert page.table("application requests")[1:] == requests
    assert page.table("I/O requests per stream")[1:] == streams  # a device and a direction
    assert {row[1] for row in streams} >= {"ssd0:read"}
    assert "device ssd0: utilization" in text and "device ssd0: utilization" in out
    engine = dict(page.table("engine")[1:])
    assert int(engine["events"].replace(",", "")) == Results.load(d).summary["engine"]["events"]


def test_a_compare_report_has_the_per_mode_table_and_the_guests_not_reported(dirs):
    d, out = dirs["compare"]
    _, page = report(d)
    assert "How much does each mode cost a disk reader?" in page.all_text
    table = page.table("pvsim compare cmp: performance relative to native")
    assert table[0] == ["guest", "metric", "native", "pv"]
    assert table[1:] == printed_tables(out)[0]
    skipped = [line for line in out.splitlines() if line.startswith("not reported:")]
    assert skipped and set(skipped) <= set(page.text)  # legacy cannot run in pv
    assert sum(title.startswith("pvsim run cmp") for title, _ in page.tables) == 2  # a run each


def test_a_sweep_report_has_the_table_of_points_as_printed(dirs):
    d, out = dirs["sweep"]
    _, page = report(d)
    assert "How many CPU hogs before the host is 90% busy?" in page.all_text
    points = page.table("pvsim sweep hogs: 3 points x 2 replications")
    assert points[0][0] == "guests.a.count" and points[1:] == printed_tables(out)[0]


def test_a_plan_report_has_the_answer_the_slos_and_the_decision_per_value(dirs):
    d, out = dirs["plan"]
    _, page = report(d)
    answer = next(line for line in out.splitlines() if line.startswith("capacity:"))
    assert answer == "capacity: guests.a.count = 1; 2 fails — at 1: host.busy_fraction < 0.9: " \
                     "0.5 (slack 0.4)"
    assert answer in page.text and "SLO: host.busy_fraction < 0.9" in page.text
    decided = {v: verdict for v, verdict in re.findall(r"guests\.a\.count = (\d+): (\w+)", out)}
    table = page.table("the decision at each value of guests.a.count")
    assert {row[0]: row[1] for row in table[1:]} == decided == {"1": "holds", "2": "fails"}


def test_the_command_writes_the_file_into_the_directory_and_keeps_it_pvsims(dirs, tmp_path,
                                                                            capsys):
    d, _ = dirs["run"]
    copy = tmp_path / "run"
    shutil.copytree(d, copy)
    assert main(["report", str(copy)]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {copy / REPORT_FILE}"
    check_replaceable(copy)  # in the manifest: pvsim run -o may still replace the directory
    assert main(["report", str(copy), "-o", str(tmp_path / "elsewhere.html")]) == 0
    assert (tmp_path / "elsewhere.html").read_text() == (copy / REPORT_FILE).read_text()


def test_a_directory_without_graphs_says_so_rather_than_drawing_them(dirs, tmp_path):
    d, _ = dirs["run"]
    shutil.copytree(d, tmp_path / "run", ignore=shutil.ignore_patterns("plots"))
    _, page = report(tmp_path / "run")
    assert page.images == [] and any("This directory has no graphs" in t for t in page.text)
    assert not (tmp_path / "run" / "plots").exists()


@pytest.mark.parametrize("make, expected", [
    (lambda p: p.mkdir(), "not a pvsim results directory: expected a run (summary.json), "
                          "a compare"),
    (lambda p: None, "no such directory"),
    (lambda p: p.write_text("x"), "not a directory"),
])
def test_anything_else_is_refused_in_one_line_naming_the_path(make, expected, tmp_path,
                                                              capsys):
    target = tmp_path / "notes"
    make(target)
    assert main(["report", str(target)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1
    assert err.startswith(f"pvsim: error: {target}: ") and expected in err
    with pytest.raises(ReportError, match=re.escape(expected)):
        write_report(target)
    assert not (tmp_path / REPORT_FILE).exists()


def test_the_question_travels_with_the_scenario_and_is_not_part_of_it(dirs):
    s = parse_scenario(RUN, "tiny.yaml")
    assert s.header.splitlines()[0] == QUESTION
    assert with_overrides(s, ["seed=2"]).header == s.header  # a variant asks it too
    assert s == parse_scenario(RUN.split("\n", 3)[3], "tiny.yaml")  # comments aside, equal
    loaded = Results.load(dirs["run"][0]).scenario
    assert loaded.header == s.header and loaded.resolved() == s.resolved()
