"""The pieces of ``pvsim report``'s HTML: a page with its style inline, sections, tables,
figures embedded as data URIs, collapsible blocks. Standard library only; every text is
escaped here, so a caller passes plain text (or the HTML these functions return).

Examples
--------
>>> from analysis.tablerows import TextTable
>>> print(table(TextTable("guests", ["guest", "cpu ms"], [["a<b", "1.00"]], right={"cpu ms"})))
<p class="title">guests</p>
<div class="scroll"><table>
<thead><tr><th>guest</th><th class="num">cpu ms</th></tr></thead>
<tbody><tr><td>a&lt;b</td><td class="num">1.00</td></tr></tbody></table></div>
"""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable, Mapping

from .tablerows import TextTable

__all__ = ["details", "figure", "key_values", "lines", "note", "page", "png_size", "pre", "section",
           "table"]

_STYLE = """
:root { color-scheme: light; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       color: #1b1f24; background: #fff; margin: 0 auto; padding: 1.5em 2em 4em;
       max-width: 1200px; }
h1 { font-size: 1.6em; margin: 0.2em 0 0.3em; }
h2 { font-size: 1.25em; margin: 1.8em 0 0.5em; padding-bottom: 0.2em;
     border-bottom: 1px solid #d0d7de; }
h3 { font-size: 1.05em; margin: 1.3em 0 0.4em; }
p.meta { color: #57606a; margin: 0 0 1em; }
pre { font: 13px/1.4 ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace;
      background: #f6f8fa; border: 1px solid #d0d7de; border-radius: 6px;
      padding: 0.8em 1em; white-space: pre-wrap; overflow-wrap: anywhere; }
pre.question { background: #fffbe6; border-color: #e3d48f; }
div.scroll { overflow-x: auto; margin: 0.6em 0 1em; }
table { border-collapse: collapse; font-size: 13.5px; font-variant-numeric: tabular-nums; }
p.title { font-weight: 600; margin: 1em 0 -0.3em; }
th, td { border: 1px solid #d0d7de; padding: 0.25em 0.6em; vertical-align: top; }
th { background: #f6f8fa; text-align: left; }
td.num { text-align: right; white-space: nowrap; }
th.num { text-align: right; }
td.prose { min-width: 18em; }
tbody tr:nth-child(even) td { background: #fafbfc; }
p.caption { color: #57606a; font-size: 13px; margin: -0.6em 0 1em; }
ul.lines { margin: 0.4em 0 1em; padding-left: 1.3em; }
.warn { color: #b42318; font-weight: 600; }
.ok { color: #1a7f37; font-weight: 600; }
.none { color: #57606a; font-style: italic; }
figure { margin: 1.2em 0 1.8em; }
figure img { display: block; max-width: 100%; height: auto; border: 1px solid #eaeef2; }
figure.wide { width: calc(100vw - 3em); margin-left: calc(50% - 50vw + 1.5em); }
figure.wide img { max-width: none; }
figure .scroll { margin: 0; }
@media print { figure.wide { width: auto; margin-left: 0; }
               figure.wide img { max-width: 100%; } div.scroll { overflow: visible; } }
figcaption { font: 13px ui-monospace, Menlo, Consolas, monospace; color: #57606a;
             margin-top: 0.3em; }
details { margin: 0.6em 0 1em; }
details > summary { cursor: pointer; font-weight: 600; }
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def page(title: str, body: Iterable[str]) -> str:
    """A whole HTML document: ``title`` as its title and first heading, then ``body``
    (pieces of HTML), its style inline; nothing is fetched from elsewhere."""
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{_e(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
            f"<h1>{_e(title)}</h1>\n" + "\n".join(body) + "\n</body>\n</html>\n")


def section(title: str, *parts: str, level: int = 2) -> str:
    """A heading and its parts (HTML)."""
    return f"<section>\n<h{level}>{_e(title)}</h{level}>\n" + "\n".join(parts) + "\n</section>"


def table(t: TextTable) -> str:
    """``t`` as an HTML table (its title the caption, numbers aligned right) in a box
    that scrolls sideways when the table is wider than the page."""
    def cls(head: str) -> str:
        return ' class="num"' if head in t.right else ' class="prose"' if head in t.prose else ""

    # a dotted metric name may break after each dot (it has no other place to)
    head = "".join(f"<th{cls(h)}>{_e(h).replace('.', '.<wbr>')}</th>" for h in t.columns)
    body = "".join("<tr>" + "".join(f"<td{cls(h)}>{_e(c)}</td>"
                                     for h, c in zip(t.columns, row, strict=True)) + "</tr>"
                   for row in t.rows)
    out = (f'<p class="title">{_e(t.title)}</p>\n' if t.title else "") + (
        f'<div class="scroll"><table>\n'
        f"<thead><tr>{head}</tr></thead>\n<tbody>{body}</tbody></table></div>")
    return out + (f'\n<p class="caption">{_e(t.caption)}</p>' if t.caption else "")


def key_values(block: Mapping, title: str = "") -> str:
    """A nested mapping (such as summary.json's ``engine`` block) as a two-column table,
    nested keys dotted."""
    rows: list[list[str]] = []

    def walk(prefix: str, v: object) -> None:
        if isinstance(v, Mapping) and v:
            for k, x in v.items():
                walk(f"{prefix}.{k}" if prefix else str(k), x)
        elif isinstance(v, bool) or v is None:
            rows.append([prefix, "" if v is None else str(v).lower()])
        elif isinstance(v, int):
            rows.append([prefix, f"{v:,}"])
        elif isinstance(v, float):
            rows.append([prefix, f"{v:,.0f}" if abs(v) >= 1e4 else f"{v:.6g}"])
        elif isinstance(v, list | tuple):
            rows.append([prefix, " ".join(map(str, v))])
        else:
            rows.append([prefix, str(v)])

    walk("", block)
    return table(TextTable(title, ["key", "value"], rows, prose={"value"}))


#: Width (CSS pixels) of the page's column, and how much wider a graph may be before it
#: is shown at its own size (scrolling sideways) rather than shrunk to fit.
COLUMN_PX = 1200
WIDE = 1.6


def png_size(png: bytes) -> tuple[int, int] | None:
    """The width and height of a PNG (from its header), None if it is not one.

    Examples
    --------
    >>> png_size(b"\\x89PNG\\r\\n\\x1a\\n" + bytes(4) + b"IHDR" + (640).to_bytes(4, "big")
    ...          + (480).to_bytes(4, "big"))
    (640, 480)
    """
    if png[:8] != b"\x89PNG\r\n\x1a\n" or png[12:16] != b"IHDR":
        return None
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


def figure(caption: str, png: bytes) -> str:
    """A PNG embedded as a base64 data URI, captioned (its file name). One much wider than
    the page's column takes the window's width, at its own size, and scrolls sideways
    (shrunk to the column its text would be unreadable)."""
    data = base64.b64encode(png).decode("ascii")
    size = png_size(png)
    wide = size is not None and size[0] > WIDE * COLUMN_PX
    note = f" ({size[0]} px wide: scroll sideways)" if wide else ""
    img = (f'<img src="data:image/png;base64,{data}" alt="{_e(caption)}"'
           + (f' width="{size[0]}" height="{size[1]}"' if size else "") + ">")
    attr = ' class="wide"' if wide else ""
    return (f"<figure{attr}>"
            f'<div class="scroll">{img}</div>'
            f"<figcaption>{_e(caption)}{note}</figcaption></figure>")


def pre(text: str, cls: str = "") -> str:
    """Preformatted text (wrapped at the page's width)."""
    attr = f' class="{cls}"' if cls else ""
    return f"<pre{attr}>{_e(text)}</pre>"


def details(summary: str, *parts: str, open_: bool = False) -> str:
    """A collapsible block: ``summary`` shown, ``parts`` (HTML) on a click."""
    return (f"<details{' open' if open_ else ''}><summary>{_e(summary)}</summary>\n"
            + "\n".join(parts) + "\n</details>")


def lines(items: Iterable[str], cls: str = "") -> str:
    """Lines of text as a list (empty string for none)."""
    items = list(items)
    if not items:
        return ""
    c = f' class="{cls}"' if cls else ""
    return '<ul class="lines">' + "".join(f"<li{c}>{_e(i)}</li>" for i in items) + "</ul>"


def note(text: str, cls: str = "none") -> str:
    """A paragraph of text (by default a quiet one: something absent)."""
    return f'<p class="{cls}">{_e(text)}</p>'
