"""The notebooks in notebooks/ run from top to bottom, are committed without outputs, and
say the figures their own runs compute.

Each notebook is executed once, with nbclient, in a fresh ``python3`` kernel whose working
directory is notebooks/ (as when it is opened in Jupyter); a cell that raises fails the
test with the cell's traceback. Together they are budgeted to run in under 3 minutes.

Quoted figures
--------------
A notebook's prose quotes figures of its own run ("web-pv cost the host 4.15 ms"). Each
notebook has one code cell, just before its concluding markdown cell (its last cell), that
sets ``QUOTED``: what each figure is -> the figure as the text writes it, computed from the
run (``f"{cpu_ms:.2f} ms"``), and prints it as JSON. The executed notebook is checked both
ways (:func:`misquoted`):

- every quoted string occurs in the notebook's markdown (emphasis and code marks removed,
  white space collapsed) and not as part of a longer number ("4.1" is not in "4.15"): a
  figure that the model changes no longer matches the text, until the text says the new one;
- every number that looks like a figure (:func:`figures`: with a decimal point, a thousands
  separator, an exponent or a percent sign, or of two or more digits; not a number inside a
  word, such as ``p99``, ``x86-64`` or ``web-7``, nor one in a code span) in the concluding
  cell, and in any markdown cell tagged ``figures``, is quoted or is a number literal of the
  notebook's code outside the QUOTED cell (a parameter the reader sees set, such as
  ``duration=150ms``): a figure cannot be typed into the text without being computed. Single
  digits are left out ("the 2 replications", "8 channels"), and so are the cells that
  describe a scenario before it runs.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
EXPECTED = ["01-getting-started.ipynb", "02-pv-full-hvm.ipynb", "03-noisy-neighbours.ipynb",
            "04-capacity.ipynb"]

#: A number as prose writes one: 4.15, 1,215, 1.1e-16, 12% (a thousands separator only
#: between groups of three digits); not the digits of a longer number or word.
NUMBER = re.compile(r"(?<![\w.,])(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:e-?\d+)?%?"
                    r"(?!\d|[.,]\d|e-?\d)")
#: Words with digits that are names, not figures: x86-64, web-7 (p99, 2D have no boundary).
NAME_WITH_DIGITS = re.compile(r"\b[A-Za-z_]\w*(?:-\d+)+")
CODE_SPAN = re.compile(r"`[^`]*`")
TAG = "figures"  # a markdown cell tagged so has its figures checked as the concluding one's


def prose(markdown: str) -> str:
    """Markdown as the reader reads it: no emphasis or code marks, single spaces."""
    return " ".join(re.sub(r"[*`]", "", markdown).split())


def figures(markdown: str) -> list[str]:
    """The numbers of ``markdown`` that look like figures (see the module), in order.

    >>> figures("`web-7` cost 4.15 ms (12%, 1,215 I/Os, p99 of 35; `seed=1`), 2 guests")
    ['4.15', '12%', '1,215', '35']
    """
    text = NAME_WITH_DIGITS.sub(" ", CODE_SPAN.sub(" ", markdown))
    return [n for n in NUMBER.findall(text)
            if any(ch in n for ch in ".,e%") or len(n) >= 2]


def quoted_in(value: str, text: str) -> bool:
    """Whether ``value`` occurs in ``text``, not as a part of a longer number."""
    return re.search(r"(?<![\w.,])" + re.escape(value) + r"(?!\d|[.,]\d|e-?\d)", text) is not None


def quoted_of(nb: nbformat.NotebookNode) -> dict[str, str]:
    """``QUOTED`` as the executed notebook printed it (the cell before the last)."""
    cells = [c for c in nb.cells if c.cell_type == "code"
             and any(line.startswith("QUOTED = ") for line in c.source.splitlines())]
    assert len(cells) == 1, f"{len(cells)} cells set QUOTED (one, please)"
    assert nb.cells[-2] is cells[0] and nb.cells[-1].cell_type == "markdown", (
        "the QUOTED cell is the one just before the concluding markdown cell")
    out = "".join(o.text for o in cells[0].outputs
                  if o.output_type == "stream" and o.name == "stdout")
    quoted = json.loads(out)
    assert quoted and all(isinstance(v, str) and v for v in quoted.values()), quoted
    return quoted


def misquoted(nb: nbformat.NotebookNode) -> list[str]:
    """What the executed notebook's text and its ``QUOTED`` disagree on (see the module):
    each problem in a sentence, none if they agree."""
    quoted = quoted_of(nb)
    markdown = [c for c in nb.cells if c.cell_type == "markdown"]
    text = prose("\n".join(c.source for c in markdown))
    problems = [f"{key!r}: {value!r} is not in the text" for key, value in quoted.items()
                if not quoted_in(value, text)]
    known = {n for v in quoted.values() for n in NUMBER.findall(v)}
    known |= {n for c in nb.cells[:-2] if c.cell_type == "code"  # not the QUOTED cell's own
              for n in NUMBER.findall(c.source)}
    checked = [c for c in markdown[:-1] if TAG in c.metadata.get("tags", ())] + markdown[-1:]
    for cell in checked:
        unknown = dict.fromkeys(n for n in figures(cell.source) if n not in known)
        problems += [f"{n!r} in {_around(n, prose(cell.source))!r} is neither in QUOTED nor "
                     "in the code" for n in unknown]
    return problems


def _around(figure: str, text: str, width: int = 25) -> str:
    """``figure`` in its context in ``text``, for a message."""
    at = text.find(figure)
    return text[max(at - width, 0):at + len(figure) + width]


_executed: dict[Path, nbformat.NotebookNode | Exception] = {}


def executed(path: Path) -> nbformat.NotebookNode:
    """The notebook at ``path`` run from top to bottom (once per test session)."""
    if path not in _executed:
        nb = nbformat.read(path, as_version=4)
        client = NotebookClient(nb, kernel_name="python3", timeout=300,
                                resources={"metadata": {"path": str(path.parent)}})
        try:
            client.execute()  # raises CellExecutionError, naming the cell, if a cell fails
            _executed[path] = nb
        except Exception as e:  # noqa: BLE001 - kept, so the other test fails alike
            _executed[path] = e
    result = _executed[path]
    if isinstance(result, Exception):
        raise result
    return result


def test_the_four_notebooks_are_there():
    names = [p.name for p in NOTEBOOKS]
    assert len(names) >= 4
    assert set(EXPECTED) <= set(names), f"missing: {sorted(set(EXPECTED) - set(names))}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"
             and (c.get("outputs") or c.get("execution_count") is not None)]
    assert not dirty, f"{path.name}: code cells {dirty} have outputs or an execution count"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path):
    nb = executed(path)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"]
    assert not errors
    assert any(o.get("data", {}).get("image/png") for c in nb.cells if c.cell_type == "code"
               for o in c.outputs), f"{path.name} drew no graph"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_text_says_the_figures_it_computes(path):
    problems = misquoted(executed(path))
    assert not problems, f"{path.name}:\n  " + "\n  ".join(problems)


# --- the check itself, on a notebook made here (no kernel) ----------------------------------
def _notebook(conclusion: str, quoted: dict[str, str], code: str = "r = simulate(s)",
              tagged: str | None = None) -> nbformat.NotebookNode:
    """A notebook as if executed: a run, optionally a tagged markdown cell, the QUOTED
    cell with its printed output, and the conclusion."""
    v4 = nbformat.v4
    cells = [v4.new_markdown_cell("# A run\n\nThe file asks for 200 ms and 100 requests."),
             v4.new_code_cell(code)]
    if tagged is not None:
        cells.append(v4.new_markdown_cell(tagged, metadata={"tags": [TAG]}))
    out = v4.new_output("stream", name="stdout", text=json.dumps(quoted, indent=0))
    cells += [v4.new_code_cell("QUOTED = {...}\nprint(json.dumps(QUOTED))", outputs=[out]),
              v4.new_markdown_cell(conclusion)]
    return v4.new_notebook(cells=cells)


def test_a_text_that_says_its_figures_passes():
    nb = _notebook("- `web-pv` cost **4.15 ms**\n  (11.7% virt share), 1,215 I/Os; p99 of 35.",
                   {"cpu": "4.15 ms", "share": "11.7% virt share", "ios": "1,215",
                    "n": "35"})
    assert misquoted(nb) == []


def test_a_figure_the_model_changed_fails_until_the_text_says_it():
    text = "- `web-pv` cost **6.9 ms** of CPU."
    assert misquoted(_notebook(text, {"web-pv cpu": "4.15 ms"})) == [
        "'web-pv cpu': '4.15 ms' is not in the text",
        "'6.9' in '- web-pv cost 6.9 ms of CPU.' is neither in QUOTED nor in the code"]
    assert misquoted(_notebook(text.replace("6.9", "4.15"), {"web-pv cpu": "4.15 ms"})) == []


def test_a_figure_is_not_found_inside_a_longer_number():
    for text in ("cost 4.15 ms", "cost 14.1 ms", "cost 4.1e-3 ms", "1,4.1"):
        assert not quoted_in("4.1", prose(text)), text
    assert quoted_in("4.1", prose("cost 4.1 ms, then")) and quoted_in("4.1", "(4.1)")


def test_a_figure_typed_into_the_conclusion_must_be_quoted_or_set_by_the_code():
    conclusion = "150 ms of 200 ms simulated; 8 guests in `web-7`; p99 0.42 ms (1.1e-16)"
    unquoted = misquoted(_notebook(conclusion, {"p99": "0.42 ms", "gap": "1.1e-16"}))
    assert [p.split(" in ")[0] for p in unquoted] == ["'150'", "'200'"]
    # a parameter set in the code is not a figure to compute
    nb = _notebook(conclusion, {"p99": "0.42 ms", "gap": "1.1e-16"},
                   code='simulate(s, ["duration=150ms"])')
    assert [p.split(" in ")[0] for p in misquoted(nb)] == ["'200'"]


def test_a_tagged_cell_is_checked_as_the_conclusion_is():
    assert misquoted(_notebook("p99 0.42 ms", {"p99": "0.42 ms"}, tagged="It took 93 ms.")) == [
        "'93' in 'It took 93 ms.' is neither in QUOTED nor in the code"]
    # the untagged first cell's 200 ms and 100 requests describe the scenario: not checked
    assert misquoted(_notebook("p99 0.42 ms", {"p99": "0.42 ms"})) == []
