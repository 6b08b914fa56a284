"""A ``Page`` as one self-contained HTML file: every script and style inline, so the report
opens offline and behind a firewall.

Text from the record (study names, architecture labels, error messages all come from a
user's config) reaches the page two ways, both inert: HTML-escaped in the header, and as
JSON in a ``<script type="application/json">`` block with ``<``, ``>`` and ``&`` written as
``\\u003c`` ... (a ``</script>`` inside a label cannot end the block), which the page's
script reads with ``JSON.parse`` and puts into the DOM as text, never as markup.
"""

from __future__ import annotations

import json
import re
from html import escape
from importlib import resources
from typing import Any

from archsearch.report.page import Page, Section

#: plotly.js's own "basic" bundle (scatter, bar, pie; MIT, assets/PLOTLY-LICENSE), shipped as
#: npm publishes it (`npm pack plotly.js-basic-dist-min@4.1.1`, the plotly.js version of the
#: plotly 7.1 wheel).  Not the wheel's full bundle: the report draws scatter traces only, and
#: the full 4.8 MB took a cold browser 2-3 s to compile before a plot was drawn (1.2 MB here;
#: benchmarks/report_size.py).  It also leaves the report without an extra to install.
PLOTLY_BUNDLE = "plotly-basic.min.js"

_CLOSING_SCRIPT = re.compile(r"</(script)", re.IGNORECASE)
_CLOSING_STYLE = re.compile(r"</(style)", re.IGNORECASE)


def render(page: Page) -> str:
    """The page's HTML."""
    body = "\n".join(_section(page, s) for s in page.sections)
    nav = " · ".join(f'<a href="#sec-{escape(s.element)}">{escape(s.heading)}</a>'
                     for s in page.sections)
    facts = "\n".join(f"<dt>{escape(label)}</dt><dd>{escape(text)}</dd>"
                      for label, text in page.facts)
    number = "" if page.best_number is None else f' data-value="{page.best_number!r}"'
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="archsearch report">
<title>{escape(page.title)} · archsearch report</title>
<style>{_inline(_asset("report.css"), _CLOSING_STYLE)}</style>
</head>
<body>
<header>
<h1>{escape(page.title)}</h1>
<p class="subtitle">{escape(page.subtitle)}</p>
<p class="best"><span class="label">{escape(page.best_label)}</span>
<span id="best-value"{number}>{escape(page.best_text)}</span></p>
<dl class="facts">
{facts}
</dl>
<nav>{nav}</nav>
</header>
<main>
{body}
</main>
<aside id="trial-detail" hidden></aside>
<script type="application/json" id="report-data">{data_json(page.data)}</script>
<script>{_inline(_asset(PLOTLY_BUNDLE), _CLOSING_SCRIPT)}</script>
<script>{_inline(_asset("diagram.js"), _CLOSING_SCRIPT)}</script>
<script>{_inline(_asset("report.js"), _CLOSING_SCRIPT)}</script>
</body>
</html>
"""


def data_json(data: Any) -> str:
    """Compact JSON that is safe inside a script block (see the module docstring); NaN is
    refused here rather than by the browser's ``JSON.parse``."""
    text = json.dumps(data, separators=(",", ":"), allow_nan=False, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _section(page: Page, section: Section) -> str:
    element = escape(section.element)
    note = f'<p class="note">{escape(section.note)}</p>' if section.note else ""
    if section.kind == "table":
        inner = (f'<div class="pager" id="{element}-pager"></div><div class="table-wrap">'
                 f'<table id="{element}"><thead></thead><tbody></tbody></table></div>')
    elif section.kind == "config":
        inner = f'<pre id="{element}">{escape(page.config_text)}</pre>'
    elif section.kind == "drawings":
        inner = f'<div id="{element}" class="drawings"></div>'
    elif section.element in page.data.get("figures", {}):
        inner = f'<div id="{element}" class="plot"></div>'
    else:
        inner = f'<div id="{element}" class="plot empty">{escape(section.empty)}</div>'
    return (f'<section id="sec-{element}"><h2>{escape(section.heading)}</h2>{note}'
            f"{inner}</section>")


def _asset(name: str) -> str:
    return resources.files("archsearch.report").joinpath("assets").joinpath(name).read_text("utf-8")


def _inline(text: str, closing: re.Pattern[str]) -> str:
    """``text`` that cannot close its own block: ``</script`` becomes ``<\\/script``, the
    same string to JavaScript (and plotly.js has none today, so nothing changes)."""
    return closing.sub(r"<\\/\1", text)
