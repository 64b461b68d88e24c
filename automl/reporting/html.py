"""The report's HTML pieces: the page around the sections, tables, embedded images, escaped text.

The page is one self-contained file: inline CSS, images as base64 PNG data
URIs, no script and no link to anything outside it, so it opens offline and
can be mailed or archived as it is.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Iterable, Sequence
from typing import Any

CSS = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; color: #222;
  margin: 0; background: #f4f5f7; }
main { max-width: 980px; margin: 0 auto; padding: 24px 32px 48px; background: #fff; }
h1 { font-size: 26px; margin: 8px 0 4px; }
h2 { font-size: 19px; margin: 34px 0 8px; padding-bottom: 4px; border-bottom: 2px solid #e3e6ea; }
h3 { font-size: 15px; margin: 18px 0 6px; }
p, li { font-size: 14px; line-height: 1.45; }
.note { color: #666; font-size: 13px; }
.facts { display: grid; grid-template-columns: repeat(4, 1fr); gap: 8px; margin: 14px 0; }
.fact { background: #f4f5f7; border-radius: 6px; padding: 8px 10px; }
.fact b { display: block; font-size: 17px; }
.fact span { color: #666; font-size: 12px; }
table { border-collapse: collapse; font-size: 12.5px; margin: 8px 0; max-width: 100%; }
th, td { text-align: left; padding: 3px 7px; border-bottom: 1px solid #e3e6ea; vertical-align: top; }
th { background: #f4f5f7; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.chosen td { background: #eef6ee; }
code { font-size: 12px; background: #f4f5f7; padding: 1px 4px; border-radius: 3px; }
img { max-width: 100%; display: block; margin: 6px 0; }
.grid { display: flex; flex-wrap: wrap; gap: 12px; }
.grid > div { flex: 1 1 300px; }
"""


def esc(value: Any) -> str:
    """``value`` as text safe inside HTML."""
    return html.escape(str(value), quote=True)


def image(png: bytes, alt: str) -> str:
    """An ``<img>`` holding ``png`` itself (a base64 data URI)."""
    return f'<img alt="{esc(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'


def number(value: Any, digits: int = 4) -> str:
    """A number for a table cell: ``digits`` significant digits, blank when missing."""
    if value is None:
        return ""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return esc(value)
    if value != value:  # NaN
        return ""
    return f"{value:.{digits}g}" if abs(value) < 10 ** digits else f"{value:.0f}"


def score(value: Any) -> str:
    """A metric's value for a table cell: four decimals (so a column of scores lines up), blank when missing."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return "" if value is None else esc(value)
    if not math.isfinite(value):
        return "" if math.isnan(value) else str(value)
    return f"{value:.4f}" if abs(value) < 1e4 else f"{value:.0f}"


def short_params(params: dict[str, Any], width: int = 90) -> str:
    """``k=v, ...`` with floats to 4 significant digits, cut to ``width`` characters."""
    text = ", ".join(f"{k}={number(v) if isinstance(v, float) else v}" for k, v in params.items())
    return text if len(text) <= width else text[: width - 1] + "…"


def table(header: Sequence[str], rows: Iterable[Sequence[str]], numeric: Sequence[int] = (),
          highlight: Sequence[bool] | None = None) -> str:
    """A table of cells that are HTML already; columns in ``numeric`` align right; ``highlight``-ed rows are tinted."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = []
    for index, row in enumerate(rows):
        cells = "".join(f'<td class="num">{cell}</td>' if i in numeric else f"<td>{cell}</td>"
                        for i, cell in enumerate(row))
        tinted = ' class="chosen"' if highlight is not None and highlight[index] else ""
        body.append(f"<tr{tinted}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def facts(items: Sequence[tuple[str, str]]) -> str:
    """A grid of headline figures: (value, caption) pairs."""
    return ('<div class="facts">'
            + "".join(f'<div class="fact"><b>{esc(v)}</b><span>{esc(c)}</span></div>' for v, c in items) + "</div>")


def page(title: str, body: str) -> str:
    """The whole HTML document."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head>\n<body><main>\n{body}\n</main></body></html>\n"
    )
