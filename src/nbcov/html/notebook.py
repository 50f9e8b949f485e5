"""Notebook pages of the HTML report: reading the file, placing measured cells, Markdown, outputs.

Markdown is rendered by markdown-it-py with raw HTML off (it is shown as text), links limited to
safe schemes by markdown-it's own validation, and images only from the cell's attachments or
`data:` URIs (a remote image becomes a link: the report never loads anything remote). Outputs are
text and images only: stream text, `text/plain`, tracebacks (ANSI colours removed), and PNG/JPEG/
GIF/WebP/SVG images embedded as `data:` URIs in `<img>` (where SVG cannot run scripts).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from nbcov.coverage_internals import Numbers, source_token_lines
from pygments.token import (
    Comment, Error, Keyword, Literal, Name, Number, Operator, Punctuation, String,
)

from nbcov import notebook as notebook_file
from nbcov.cells import digest, read_file
from nbcov.html.data import Entry
from nbcov.html.render import (
    Page,
    cell_head,
    esc,
    esc_code,
    file_header,
    fragment,
    page,
    plain_lines,
    side_panel,
    tokens_html,
)
from nbcov.notebook import NotebookCell
from nbcov.parser import nothing_to_measure
from nbcov.text import strip_ansi

if TYPE_CHECKING:  # imported when first needed: ~0.07 s that a report without Markdown never pays
    from markdown_it import MarkdownIt
    from pygments.lexer import Lexer

#: Longest text output shown per output (the rest is cut, with a note).
MAX_OUTPUT_CHARS = 20_000

_IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")


def _text(value: Any) -> str:
    if isinstance(value, list):
        try:
            return "".join(value)
        except TypeError:  # a damaged notebook: not every item is a string
            return "".join(str(v) for v in value)
    return "" if value is None else str(value)


def read_bytes(path: str | None) -> tuple[bytes | None, str]:
    """The notebook file's bytes, or None and why ("missing")."""
    if path is None:
        return None, "missing"
    try:
        return read_file(path), ""
    except OSError:
        return None, "missing"


def parse_notebook(raw: bytes | None) -> tuple[list[NotebookCell] | None, str]:
    """The notebook's readable cells in order (nbcov's one reader), or None and why it could not be read."""
    if raw is None:
        return None, "missing"
    try:
        return notebook_file.parse_notebook(raw, "notebook").cells, ""
    except notebook_file.NotebookError as exc:  # a damaged notebook still gets a report of its measured cells
        return None, exc.reason


# -- placing measured cells -------------------------------------------------------------------------


@dataclass
class Block:
    """One cell of the page, in order: a notebook cell, and the measured versions shown for it."""

    cell: NotebookCell | None
    entries: list[Entry] = field(default_factory=list)


def layout(cells: list[NotebookCell] | None, entries: list[Entry]) -> tuple[list[Block], list[Entry]]:
    """The notebook's cells in order with their measured versions, and the measured cells not found in it.

    A measured cell is placed by its cell id when the notebook has it, else by its position; the
    version whose source is the notebook's current one comes first.
    """
    if cells is None:  # no notebook file: the measured cells in their order, from their records
        ordered = sorted(entries, key=_entry_order)
        return [Block(None, [e]) for e in ordered if e.cell_index is not None], [
            e for e in ordered if e.cell_index is None
        ]
    code = {c.position: c for c in cells if c.cell_type == "code"}  # positions skip damaged cells
    by_id: dict[str, NotebookCell] = {}
    for c in code.values():
        by_id.setdefault(c.cell_id or "", c)  # the first of duplicate ids, as a kernel locates cells
    placed: dict[int, list[Entry]] = {}
    unplaced = []
    for entry in entries:
        cell = by_id.get(entry.cell_id) if entry.cell_id else None
        index = entry.cell_index
        if cell is None and isinstance(index, int):
            cell = code.get(index)
        if cell is None:
            unplaced.append(entry)
        else:
            placed.setdefault(cell.position, []).append(entry)
    blocks = []
    for cell in cells:
        versions = placed.get(cell.position, [])
        if len(versions) > 1:
            current = digest(cell.source)
            versions.sort(key=lambda e: (e.digest != current, *_entry_order(e)))
        blocks.append(Block(cell, versions))
    return blocks, sorted(unplaced, key=_entry_order)


def _entry_order(entry: Entry) -> tuple[int, int, str]:
    count = entry.execution_count
    return (entry.cell_index or 0, count if count is not None else 1 << 30, entry.name)


# -- highlighting code that was not measured --------------------------------------------------------

_CLASSES = [
    (Keyword, "key"),
    (Name, "nam"),
    (Operator, "op"),
    (Punctuation, "op"),
    (Number, "num"),
    (String, "str"),
    (Comment, "com"),
    (Error, "err"),
    (Literal, "str"),
]


@lru_cache(maxsize=None)
def _token_class(ttype: Any) -> str:
    for parent, name in _CLASSES:
        if ttype in parent:
            return name
    return "txt"


@lru_cache(maxsize=None)
def _lexer(language: str) -> Lexer | None:
    from pygments.lexers import get_lexer_by_name
    from pygments.util import ClassNotFound

    options = {"stripnl": False, "ensurenl": True, "tabsize": 8}
    if language in ("ipython", "ipython3", "python", "py", ""):
        # IPython's own lexer knows %magics and !shell lines; plain Python when it is not there.
        for module in ("ipython_pygments_lexers", "IPython.lib.lexers"):
            try:
                lexers = __import__(module, fromlist=["IPython3Lexer"])
                return lexers.IPython3Lexer(**options)
            except Exception:
                continue
        language = "python"
    try:
        return get_lexer_by_name(language, **options)
    except (ClassNotFound, ValueError):
        return None


def highlight(source: str, language: str = "ipython") -> list[list[tuple[str, str]]]:
    """Source split into lines of (class, text) tokens by Pygments, in the classes the report uses."""
    lexer = _lexer(language.lower())
    lines: list[list[tuple[str, str]]] = [[]]
    if lexer is None:
        for i, text in enumerate(source.split("\n")):
            if i:
                lines.append([])
            lines[-1].append(("txt", text))
        return lines
    for ttype, value in lexer.get_tokens(source):
        kind = "ws" if not value.strip(" \t\n") else _token_class(ttype)
        for i, part in enumerate(value.split("\n")):
            if i:
                lines.append([])
            if part:
                lines[-1].append((kind, part))
    if lines and not lines[-1]:
        lines.pop()
    return lines


def code_html(source: str) -> str:
    """A code cell that was not measured: coverage.py's token lines, as measured cells get them
    (Pygments' IPython lexer where Python's tokenizer gives up, e.g. on `?` help lines)."""
    try:
        lines = list(source_token_lines(source))
    except Exception:
        lines = highlight(source.expandtabs(8))
    return plain_lines(lines)


# -- Markdown -------------------------------------------------------------------------------------------


def _fence(code: str, language: str, _attrs: str) -> str:
    if not language:
        return ""
    return "\n".join(tokens_html(line) for line in highlight(code, language)) + "\n"


def _image(self: Any, tokens: list[Any], idx: int, options: Any, env: dict[str, Any]) -> str:
    token = tokens[idx]
    alt = self.renderInlineAsText(token.children or [], options, env)
    src = str(token.attrGet("src") or "")
    title = token.attrGet("title")
    title_attr = f' title="{esc(title)}"' if title else ""
    if src.startswith("attachment:"):
        bundle = (env.get("attachments") or {}).get(src[len("attachment:") :])
        uri = data_uri(bundle) if isinstance(bundle, dict) else None
        if uri:
            return f'<img src="{esc(uri)}" alt="{esc(alt)}"{title_attr}>'
    elif re.match(r"data:image/(png|jpeg|gif|webp);base64,[A-Za-z0-9+/=]*$", src):
        return f'<img src="{esc(src)}" alt="{esc(alt)}"{title_attr}>'
    elif re.match(r"https?://", src, re.IGNORECASE):
        # Never loaded from here: a link the reader may follow.
        return f'<a class="img-link" href="{esc(src)}" rel="noopener noreferrer nofollow">image: {esc(alt or src)}</a>'
    return f'<span class="img-missing" title="{esc(src)}">[image: {esc(alt or src)}]</span>'


def _link_open(self: Any, tokens: list[Any], idx: int, options: Any, env: dict[str, Any]) -> str:
    tokens[idx].attrSet("rel", "noopener noreferrer nofollow")
    return str(self.renderToken(tokens, idx, options, env))


@lru_cache(maxsize=1)
def _markdown() -> MarkdownIt:
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False, "highlight": _fence}).enable(["table", "strikethrough"])
    md.add_render_rule("image", _image)
    md.add_render_rule("link_open", _link_open)
    return md


def markdown_snippets(cells: list[NotebookCell]) -> dict[str, str]:
    """The notebook's Markdown cells rendered, by the keys `notebook_page` looks for them under."""
    return {_markdown_key(c): markdown_html(c.source, c.attachments) for c in cells if c.cell_type == "markdown"}


def _markdown_key(cell: NotebookCell) -> str:
    return cache_key("md", cell.source, cell.attachments)


def markdown_html(source: str, attachments: dict[str, Any] | None = None) -> str:
    """A Markdown cell as HTML: raw HTML shown as text, unsafe links left as text, no remote images."""
    return str(_markdown().render(source, {"attachments": attachments or {}}))


# -- outputs --------------------------------------------------------------------------------------------


def data_uri(bundle: dict[str, Any]) -> str | None:
    """A data: URI for the first image in a MIME bundle (base64 checked), or None."""
    for mime in _IMAGE_TYPES:
        if mime in bundle:
            payload = re.sub(r"\s+", "", _text(bundle[mime]))
            if payload and _BASE64.fullmatch(payload):
                try:
                    base64.b64decode(payload, validate=True)
                except (binascii.Error, ValueError):
                    continue
                return f"data:{mime};base64,{payload}"
    if "image/svg+xml" in bundle:
        svg = _text(bundle["image/svg+xml"]).encode("utf-8", "replace")
        return "data:image/svg+xml;base64," + base64.b64encode(svg).decode("ascii")
    return None


def _pre(text: str, kind: str) -> str:
    text = strip_ansi(text)
    cut = ""
    if len(text) > MAX_OUTPUT_CHARS:
        cut = f'<span class="cut">… {len(text) - MAX_OUTPUT_CHARS} more characters not shown</span>'
        text = text[:MAX_OUTPUT_CHARS]
    return f'<pre class="out {kind}">{esc_code(text)}{cut}</pre>'


def output_html(output: dict[str, Any]) -> str:
    kind = output.get("output_type")
    if kind == "stream":
        name = "stderr" if output.get("name") == "stderr" else "stdout"
        return _pre(_text(output.get("text")), name)
    if kind == "error":
        trace = output.get("traceback")
        text = "\n".join(_text(t) for t in trace) if isinstance(trace, list) and trace else (
            f"{_text(output.get('ename'))}: {_text(output.get('evalue'))}"
        )
        return _pre(text, "error")
    if kind in ("execute_result", "display_data", "pyout"):
        data = output.get("data")
        bundle: dict[str, Any] = data if isinstance(data, dict) else {}
        uri = data_uri(bundle)
        if uri:
            alt = _text(bundle.get("text/plain"))[:200] or "output image"
            return f'<p class="out image"><img src="{esc(uri)}" alt="{esc(alt)}"></p>'
        if "text/plain" in bundle:
            return _pre(_text(bundle["text/plain"]), "result")
        kinds = ", ".join(sorted(str(k) for k in bundle))
        return f'<p class="out skipped">(output of type {esc(kinds or "unknown")} not shown)</p>'
    return ""


def outputs_html(outputs: list[dict[str, Any]]) -> str:
    """A cell's stored outputs, collapsed: text and images only."""
    shown = [h for h in (output_html(o) for o in outputs) if h]
    if not shown:
        return ""
    label = "1 output" if len(shown) == 1 else f"{len(shown)} outputs"
    return f'<details class="outputs"><summary>{label}</summary>\n' + "\n".join(shown) + "\n</details>"


def cache_key(*parts: Any) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(json.dumps(part, sort_keys=True, default=str).encode("utf-8", "surrogatepass"))
        h.update(b"\0")
    return h.hexdigest()[:24]


# -- the notebook page ------------------------------------------------------------------------------------


def _cached(cache_in: dict[str, str], cache_out: dict[str, str], key: str, make: Any) -> str:
    html = cache_in.get(key)
    if html is None:
        html = make()
    cache_out[key] = html
    return html


def notebook_page(
    common: Page,
    shown: str,
    path: str | None,
    cells: list[NotebookCell] | None,
    problem: str,
    entries: list[Entry],
    nums: Numbers,
    branch: bool,
    tests: list[str],
    cache_in: dict[str, str],
    cache_out: dict[str, str],
) -> str:
    """A notebook as a page: its cells in order, measured cells annotated, Markdown rendered.

    `cache_in` holds Markdown and unmeasured code already rendered by an earlier run (by content
    hash); what this page uses goes into `cache_out`.
    """
    blocks, unplaced = layout(cells, entries)
    parts: list[str] = []
    jump: list[tuple[str, str]] = []
    used: set[str] = set()

    def anchor_for(base: str) -> str:
        anchor, n = base, 1
        while anchor in used:
            n += 1
            anchor = f"{base}-v{n}"
        used.add(anchor)
        return anchor

    def measured(entry: Entry, position: int | None, outputs: str, note: str) -> str:
        count = entry.execution_count
        prompt = f"In [{count}]" if count is not None else "In [ ]"
        if position is not None:
            label, where, anchor = f"Cell {position}", f"cell {position}", anchor_for(f"cell-{position}")
        else:  # no place in a notebook: named by its prompt, as `nbcov report` names it
            label, where, anchor = prompt, prompt, anchor_for(f"in-{count if count is not None else 'x'}")
        prefix = f"{anchor}-"
        for line, status in entry.missed:
            jump.append((f"{prefix}L{line}", f"{where} · line {line}{' (partial)' if status == 'par' else ''}"))
        head = cell_head(anchor, label, prompt, entry.summary)
        return (
            f'<section class="cell code measured" id="{esc(anchor)}">\n{head}\n{note}'
            f"{fragment(entry, prefix)}\n{outputs}</section>"
        )

    code_cells = 0
    for block in blocks:
        cell = block.cell
        if cell is None:
            for entry in block.entries:
                parts.append(measured(entry, entry.cell_index, "", ""))
            continue
        outputs = outputs_html(cell.outputs) if cell.cell_type == "code" else ""
        if cell.cell_type == "markdown":
            body = _cached(cache_in, cache_out, _markdown_key(cell), lambda c=cell: markdown_html(c.source, c.attachments))
            anchor = anchor_for(f"cell-{cell.position}")
            parts.append(f'<section class="cell md" id="{anchor}">\n<div class="md-body">\n{body}</div>\n</section>')
        elif cell.cell_type == "code":
            code_cells += 1
            if not block.entries:
                key = cache_key("code", cell.source)
                body = _cached(cache_in, cache_out, key, lambda c=cell: code_html(c.source))
                anchor = anchor_for(f"cell-{cell.position}")
                count = f"In [{cell.execution_count}]" if cell.execution_count is not None else "In [ ]"
                # A cell of comments (or of nbcov's own magics) never has measured lines: say why.
                state = "no code to measure" if nothing_to_measure(cell.source) else "not run while measuring"
                head = cell_head(anchor, f"Cell {cell.position}", count, f'<span class="not-run">{state}</span>')
                parts.append(f'<section class="cell code unmeasured" id="{anchor}">\n{head}\n{body}\n{outputs}</section>')
            current = digest(cell.source) if block.entries else ""
            for k, entry in enumerate(block.entries):
                note = ""
                if entry.digest != current:
                    note = '<p class="note">This cell was edited after it was measured: the measured version is shown.</p>\n'
                parts.append(measured(entry, cell.position, outputs if k == 0 else "", note))
        else:
            anchor = anchor_for(f"cell-{cell.position}")
            parts.append(f'<section class="cell raw" id="{anchor}">\n<pre class="raw">{esc_code(cell.source)}</pre>\n</section>')

    if unplaced:
        if path is not None:
            parts.append('<h2 class="unplaced">Measured cells not found in the saved notebook</h2>')
        for entry in unplaced:
            parts.append(measured(entry, None, "", ""))

    if path is None:
        extra = '<p class="counts">Cells run in terminal IPython: there is no notebook file.</p>'
    elif problem == "missing":
        extra = (f'<p class="note warn">The notebook file {esc(path or shown)} was not found: only its measured cells '
                 "are shown, from nbcov's records of them.</p>")
    elif problem:
        extra = (f'<p class="note warn">The notebook file {esc(path or shown)} could not be read ({esc(problem)}): '
                 "only its measured cells are shown, from nbcov's records of them.</p>")
    else:
        extra = f'<p class="counts">{_count(len(entries), "measured cell")} · {_count(code_cells, "code cell")} in the notebook</p>'
    header = file_header(common, shown, "notebook" if path is not None else "IPython session", nums, branch, extra)
    body = f'{header}\n<div class="layout">\n{side_panel("notebook", tests, jump)}\n<main>\n' + "\n".join(parts) + "\n</main>\n</div>"
    return page(common, shown, body, "file notebook")


def _count(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
