"""The HTML of the report's pages: escaping, annotated source lines, the index, notebook and module pages.

Everything a user wrote (cell source, markdown, outputs, test names, file paths) reaches the page
only through `esc`/`esc_code` here or through the sanitizing Markdown and output renderers in
`notebook.py`. Pages load no remote resource and run no inline script: their
Content-Security-Policy allows only the report's own CSS and JavaScript files and `data:` images.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nbcov.coverage_internals import Numbers

if TYPE_CHECKING:  # data.py renders its fragments with this module
    from nbcov.html.data import Entry

#: Only the report's own files, and images embedded as data: URIs; nothing remote, nothing inline.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'none'"
)

#: Stands for a cell's anchor prefix in cached fragments ("cell-5-"); never survives `esc_code`.
ANCHOR = "\x00"

# C0/C1 controls (NUL included), and the invisible characters that reorder or hide text
# ("Trojan source"): shown as visible escapes in code, never passed through.
_INVISIBLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_ODD = re.compile(_INVISIBLE.pattern[:-1] + "\ud800-\udfff]")
_TOKEN_CLASS = re.compile("[a-z]{1,5}")
#: Anything `esc` changes: most labels, anchors and numbers have none and are returned as they are.
_SPECIAL = re.compile(_ODD.pattern[:-1] + "&<>\"']")


def _visible(match: re.Match[str]) -> str:
    return f'<span class="ctl" title="invisible character">\\u{ord(match[0]):04x}</span>'


def clean(text: str) -> str:
    """Text that encodes as UTF-8 and carries no control characters (they become U+FFFD)."""
    text = _SURROGATE.sub("\ufffd", text)
    return _INVISIBLE.sub("\ufffd", text) if _INVISIBLE.search(text) else text


def esc(text: Any) -> str:
    """Escape for HTML text and quoted attribute values."""
    s = str(text)
    if not _SPECIAL.search(s):
        return s
    return html.escape(clean(s) if _ODD.search(s) else s, quote=True)


def esc_code(text: str) -> str:
    """Escape source or output text; invisible and control characters are shown as `\\uXXXX`."""
    text = html.escape(_SURROGATE.sub("\ufffd", text), quote=False)
    return _INVISIBLE.sub(_visible, text) if _INVISIBLE.search(text) else text


def json_attr(value: Any) -> str:
    """A JSON value for a quoted attribute (the browser unescapes it before `JSON.parse`)."""
    return esc(json.dumps(value, ensure_ascii=False, separators=(",", ":")))


# -- source lines -------------------------------------------------------------------------------------

_STATUS_TITLE = {
    "run": "covered",
    "mis": "missed",
    "par": "partial: a branch was never taken",
    "exc": "excluded",
    "nm": "not measured: ran before measurement began",
}


#: A line's classes and its number's title attribute, per status (a handful, made once each).
_STATUS_ATTRS: dict[str, tuple[str, str]] = {}


def _status_attrs(status: str) -> tuple[str, str]:
    title = _STATUS_TITLE.get(status.split(" ")[0], "") if status else ""
    _STATUS_ATTRS[status] = (f"l {status}" if status else "l", f' title="{title}"' if title else "")
    return _STATUS_ATTRS[status]


#: The opening tag of each token class, made once: a report has hundreds of thousands of tokens.
_OPEN: dict[str, str] = {}


def _open_tag(kind: str) -> str:
    if kind not in _OPEN:
        _OPEN[kind] = f'<span class="{kind if _TOKEN_CLASS.fullmatch(kind) else "txt"}">'
    return _OPEN[kind]


def tokens_html(tokens: Iterable[tuple[str, str]]) -> str:
    """One line of (class, text) tokens as spans; the text escaped, invisible characters shown."""
    tokens = list(tokens)
    line = "".join([text for _, text in tokens])
    if not _ODD.search(line):
        # Most lines: no control or invisible character (checked once for the whole line).
        if "&" in line or "<" in line or ">" in line:
            tokens = [(k, t.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")) for k, t in tokens]
        tag = _OPEN.get
        return "".join(
            [text if kind == "ws" else (tag(kind) or _open_tag(kind)) + text + "</span>" for kind, text in tokens]
        )
    parts = []
    for kind, text in tokens:
        text = esc_code(text)
        if kind == "ws" and not text.strip(" \t"):
            parts.append(text)
        else:
            parts.append(f"{_open_tag(kind)}{text}</span>")
    return "".join(parts)


def code_lines(
    lines: Sequence[tuple[str, list[tuple[str, str]], str, list[str], list[int]]],
    contexts: Sequence[str],
) -> str:
    """An annotated source listing: one `<p>` per line with its number, status, code and notes.

    `lines` holds (status, tokens, short note, long notes, context ids) per line; `contexts` names
    the context ids. Anchors carry the `ANCHOR` placeholder, replaced with the cell's prefix when a
    page is assembled, so the fragment can be cached and reused wherever the cell appears.
    """
    attrs = f' data-contexts="{json_attr([c or "(empty)" for c in contexts])}"' if contexts else ""
    out = [f'<div class="src"{attrs}>']
    for lineno, (status, tokens, short, notes, ctx) in enumerate(lines, start=1):
        anchor = f"{ANCHOR}L{lineno}"
        classes, title_attr = _STATUS_ATTRS.get(status) or _status_attrs(status)
        extra = f' data-c="{" ".join(map(str, ctx))}"' if ctx else ""
        note = ""
        if short or notes:
            note = f'<span class="r"><span class="sn">{esc(short)}</span>' if short else '<span class="r">'
            note += "".join(f'<span class="why">{esc(n)}</span>' for n in notes) + "</span>"
        out.append(
            f'<p class="{classes}" id="{anchor}"{extra}><a class="n" href="#{anchor}"{title_attr}>{lineno}</a>'
            f"<code>{tokens_html(tokens)}</code>{note}</p>"
        )
    out.append("</div>")
    return "\n".join(out)


def plain_lines(lines: Sequence[list[tuple[str, str]]]) -> str:
    """Source that was never measured (a code cell not run while measuring): numbered, no statuses."""
    out = ['<div class="src">']
    for lineno, tokens in enumerate(lines, start=1):
        out.append(f'<p class="l"><span class="n">{lineno}</span><code>{tokens_html(tokens)}</code></p>')
    out.append("</div>")
    return "\n".join(out)


# -- numbers ------------------------------------------------------------------------------------------


def meter(nums: Numbers) -> str:
    """A bar for the coverage percentage (no inline style: a <meter> the stylesheet colours)."""
    return (
        f'<meter min="0" max="100" low="50" high="90" optimum="100" value="{nums.pc_covered:.2f}"'
        f' title="{nums.pc_covered_str}% covered">{nums.pc_covered_str}%</meter>'
    )


def summary(nums: Numbers, branch: bool) -> str:
    """Statements, missed, excluded (branches, partial) and percent, each in a classed element."""
    parts = [
        f'<span class="n-stmts">{nums.n_statements}</span> {"statement" if nums.n_statements == 1 else "statements"}',
        f'<span class="n-miss">{nums.n_missing}</span> missed',
        f'<span class="n-exc">{nums.n_excluded}</span> excluded',
    ]
    if branch:
        parts += [
            f'<span class="n-br">{nums.n_branches}</span> {"branch" if nums.n_branches == 1 else "branches"}',
            f'<span class="n-part">{nums.n_partial_branches}</span> partial',
        ]
    return (
        '<span class="sum">' + " · ".join(parts)
        + f' · <span class="pc">{nums.pc_covered_str}%</span> {meter(nums)}</span>'
    )


# -- pages ---------------------------------------------------------------------------------------------


@dataclass
class Assets:
    css: str
    js: str


@dataclass
class Page:
    """What every page shares."""

    title: str  # the report's title
    assets: Assets
    footer: str


def page(common: Page, heading: str, body: str, kind: str) -> str:
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="referrer" content="no-referrer">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>{esc(heading)} · {esc(common.title)}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{esc(common.assets.css)}">
<script src="{esc(common.assets.js)}" defer></script>
</head>
<body class="{kind}">
{body}
<footer>{common.footer}</footer>
</body>
</html>
"""


LEGEND = (
    '<p class="legend" aria-label="legend"><span class="lg run">covered</span> '
    '<span class="lg mis">missed</span> <span class="lg par">partial</span> '
    '<span class="lg exc">excluded</span> <span class="lg nm">not measured</span></p>'
)

HELP = (
    '<p class="keys">Keys: <kbd>j</kbd>/<kbd>n</kbd> next missed line, <kbd>k</kbd>/<kbd>p</kbd> previous, '
    "<kbd>o</kbd> outputs, <kbd>u</kbd> index</p>"
)


@dataclass
class Row:
    """One line of the index: a notebook, a module or the cells of a terminal IPython session."""

    href: str
    name: str
    kind: str
    detail: str
    nums: Numbers
    tests: dict[str, int] = field(default_factory=dict)


def index_page(common: Page, rows: list[Row], totals: Numbers, branch: bool, tests: list[str], note: str) -> str:
    test_ids = {t: i for i, t in enumerate(tests)}
    head = ['<th class="name" data-sort="s" aria-sort="ascending"><button type="button">Name</button></th>']
    columns = [("Statements", "n-stmts"), ("Missing", "n-miss"), ("Excluded", "n-exc")]
    if branch:
        columns += [("Branches", "n-br"), ("Partial", "n-part")]
    head += [f'<th class="{c}" data-sort="n"><button type="button">{label}</button></th>' for label, c in columns]
    head.append('<th class="pc" data-sort="n"><button type="button">Coverage</button></th>')
    if tests:
        head.append('<th class="by-test" data-sort="n"><button type="button">Run by test</button></th>')

    def cells(nums: Numbers) -> list[str]:
        values = [nums.n_statements, nums.n_missing, nums.n_excluded]
        if branch:
            values += [nums.n_branches, nums.n_partial_branches]
        out = [f'<td class="{c}" data-v="{v}">{v}</td>' for (_, c), v in zip(columns, values)]
        out.append(f'<td class="pc" data-v="{nums.pc_covered:.6f}"><span class="pct">{nums.pc_covered_str}%</span> {meter(nums)}</td>')
        return out

    body_rows = []
    for row in rows:
        data = ""
        if tests:
            counts = " ".join(f"{test_ids[t]}:{n}" for t, n in row.tests.items() if t in test_ids)
            data = f' data-tests="{counts}"'
        tds = [
            f'<td class="name" data-v="{esc(row.name)}"><a href="{esc(row.href)}">{esc(row.name)}</a>'
            f' <span class="kind">{esc(row.detail)}</span></td>',
            *cells(row.nums),
        ]
        if tests:
            tds.append('<td class="by-test" data-v="0"></td>')
        body_rows.append(f'<tr class="{row.kind}" data-stmts="{row.nums.n_statements}"{data}>' + "".join(tds) + "</tr>")
    total = ['<td class="name">Total</td>', *cells(totals)]
    if tests:
        total.append('<td class="by-test"></td>')

    test_filter = ""
    if tests:
        options = "".join(f'<option value="{i}">{esc(t)}</option>' for i, t in enumerate(tests))
        test_filter = (
            '<label class="test-filter">Only the files a test ran: <select id="test-filter">'
            f'<option value="">all tests</option>{options}</select></label>'
        )
    body = f"""<header class="top">
<h1>{esc(common.title)}</h1>
<p class="totals">{summary(totals, branch)}</p>
{note}
<div class="controls"><label>Filter: <input type="search" id="filter" placeholder="name contains…" autocomplete="off"></label>
{test_filter}</div>
</header>
<main>
<table id="index" class="index">
<thead><tr>{"".join(head)}</tr></thead>
<tbody>
{chr(10).join(body_rows)}
</tbody>
<tfoot><tr class="total">{"".join(total)}</tr></tfoot>
</table>
<p id="no-rows" hidden>No file matches the filter.</p>
</main>"""
    return page(common, "index", body, "index")


def file_header(common: Page, path: str, kind: str, nums: Numbers, branch: bool, extra: str = "") -> str:
    return f"""<header class="top">
<nav class="crumbs"><a href="index.html" id="up">{esc(common.title)}</a> › <span>{esc(kind)}</span></nav>
<h1>{esc(path)}</h1>
<p class="totals">{summary(nums, branch)}</p>
{extra}
{LEGEND}
</header>"""


def side_panel(kind: str, tests: list[str], items: list[tuple[str, str]]) -> str:
    """The sticky side panel of a file page: navigation controls, test filter, the missed lines."""
    test_filter = ""
    if tests:
        options = "".join(f"<option>{esc(t)}</option>" for t in tests)
        test_filter = (
            '<label class="test-filter">Lines run by test:<br><select id="test-filter">'
            f'<option value="">all tests</option>{options}</select></label>'
        )
    outputs = '<button type="button" id="toggle-outputs" aria-pressed="false">show outputs</button>' if kind == "notebook" else ""
    if items:
        links = "\n".join(f'<li><a href="#{esc(anchor)}">{esc(label)}</a></li>' for anchor, label in items)
        jump = f'<h2>Missed lines ({len(items)})</h2>\n<ol>\n{links}\n</ol>'
    else:
        jump = "<h2>Missed lines</h2><p>None.</p>"
    return f"""<aside class="side">
<div class="controls">
<button type="button" id="prev-missed" title="previous missed line (k)">↑ previous</button>
<button type="button" id="next-missed" title="next missed line (j)">next missed ↓</button>
{outputs}
{test_filter}
</div>
{HELP}
<nav class="jump" aria-label="missed lines">
{jump}
</nav>
</aside>"""


def fragment(entry: Entry, prefix: str) -> str:
    """A cached source fragment with its anchors made unique on this page."""
    return entry.fragment.replace(ANCHOR, esc(prefix))


def module_page(common: Page, entry: Entry, nums: Numbers, branch: bool, tests: list[str]) -> str:
    items = [(f"L{line}", f"line {line}{' (partial)' if status == 'par' else ''}") for line, status in entry.missed]
    body = (
        file_header(common, entry.label, "module", nums, branch)
        + '\n<div class="layout">\n'
        + side_panel("module", tests, items)
        + f'\n<main>\n<section class="module">\n{fragment(entry, "")}\n</section>\n</main>\n</div>'
    )
    return page(common, entry.label, body, "file module")


def cell_head(anchor: str, label: str, prompt: str, extra: str) -> str:
    return (
        f'<div class="head"><a class="cellno" href="#{esc(anchor)}">{esc(label)}</a>'
        f' <span class="prompt">{esc(prompt)}</span> {extra}</div>'
    )
