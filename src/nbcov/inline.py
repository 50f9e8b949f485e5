"""Coverage shown in the notebook itself: a rich display (HTML with a text fallback) of a session.

The HTML uses inline `style=` attributes only: JupyterLab strips `<style>`, `id` and `data-*` from
untrusted notebooks (a notebook opened from a repository), while inline styles and `title=` survive,
so the report reads the same trusted or not, and needs no JavaScript.
"""

from __future__ import annotations

import dataclasses
import html
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from nbcov.report import FileResult, LineStatus, Results, line_statuses


@dataclasses.dataclass(frozen=True)
class _Look:
    """How a line status is shown: CSS class suffix, marker (as `coverage annotate`), label, inline style, colour."""

    css: str
    marker: str
    label: str
    style: str
    ansi: str


_LOOK: dict[LineStatus | None, _Look] = {
    LineStatus.RUN: _Look("covered", ">", "run", "background:rgba(46,160,67,0.16);", "\033[32m"),
    LineStatus.MISSED: _Look("missed", "!", "missed", "background:rgba(248,81,73,0.28);", "\033[31m"),
    LineStatus.PARTIAL: _Look("partial", "~", "partial branch", "background:rgba(210,153,34,0.30);", "\033[33m"),
    LineStatus.EXCLUDED: _Look("excluded", "-", "excluded", "opacity:0.55;", "\033[2m"),
    LineStatus.NOT_MEASURED: _Look("not-measured", "?", "not measured", "opacity:0.55;font-style:italic;", "\033[2m"),
    None: _Look("blank", " ", "", "", ""),
}
_RESET = "\033[0m"
# No var(): JupyterLab's sanitizer drops style values that use it in untrusted notebooks.
_MONO = "font-family:SFMono-Regular,Menlo,Consolas,monospace;font-size:12px;"


@dataclasses.dataclass
class FileView:
    """What the inline report shows of one file: its numbers and each line's status."""

    label: str
    is_cell: bool
    statements: int
    missing: int
    branches: int
    partial_branches: int
    percent: float
    percent_display: str
    lines: list[tuple[int, LineStatus | None, str]]  # (number, status, text)
    explanations: dict[int, list[str]]  # line -> missed branches in words
    tests: dict[int, list[str]]  # line -> tests that ran it

    @property
    def incomplete(self) -> bool:
        return self.missing > 0 or self.partial_branches > 0


def file_view(result: FileResult, contexts: Mapping[int, Sequence[str]] | None = None) -> FileView:
    """Per-line status of one file, from coverage.py's analysis."""
    fr, analysis = result.reporter, result.analysis
    statuses = line_statuses(analysis, fr)
    status_of, missing_arcs = statuses.by_line, statuses.missing_arcs
    lines = [(number, status_of.get(number), text) for number, text in enumerate(fr.source().splitlines(), start=1)]
    explanations = {
        line: [fr.missing_arc_description(line, dest, analysis.arcs_executed) for dest in sorted(dests)]
        for line, dests in missing_arcs.items()
    }
    nums = analysis.numbers
    return FileView(
        label=fr.relative_filename(),
        is_cell=result.is_cell,
        statements=nums.n_statements,
        missing=nums.n_missing,
        branches=nums.n_branches,
        partial_branches=nums.n_partial_branches,
        percent=nums.pc_covered,
        percent_display=nums.pc_covered_str,
        lines=lines,
        explanations=explanations,
        tests={line: sorted(c for c in ctxs if c) for line, ctxs in (contexts or {}).items() if any(ctxs)},
    )


class InlineReport:
    """A session's coverage as a rich display: summary table, then each incomplete cell annotated."""

    def __init__(
        self,
        views: Iterable[FileView],
        totals: Mapping[str, Any],
        branch: bool,
        heading: str,
        color: bool = False,
    ) -> None:
        # Worst first: what needs attention is at the top.
        self.views = sorted(views, key=lambda v: (v.percent, v.label))
        self.totals = totals
        self.branch = branch
        self.heading = heading
        self.color = color

    @classmethod
    def from_results(
        cls, results: Results, contexts: Mapping[str, Mapping[int, Sequence[str]]], heading: str, color: bool = False
    ) -> InlineReport:
        views = [file_view(r, contexts.get(r.name)) for r in results.files]
        return cls(views, results.totals, results.branch, heading, color)

    # -- HTML -------------------------------------------------------------------------------------

    def _repr_html_(self) -> str:
        parts = [f'<div class="nbcov-report" style="{_MONO}line-height:1.35;">']
        parts.append(f'<div style="font-weight:bold;margin:4px 0;">{_e(self.heading)}</div>')
        parts.append(self._html_table())
        for view in self.views:
            if view.is_cell and view.incomplete:
                parts.append(self._html_file(view))
        parts.append("</div>")
        return "".join(parts)

    def _html_table(self) -> str:
        cols = ["Name", "Stmts", "Miss"] + (["Branch", "BrPart"] if self.branch else []) + ["Cover", ""]
        head = "".join(f'<th style="text-align:{"left" if i == 0 else "right"};padding:2px 8px;">{c}</th>' for i, c in enumerate(cols))
        rows = []
        for view in self.views:
            nums = [view.statements, view.missing] + ([view.branches, view.partial_branches] if self.branch else [])
            rows.append(self._html_row(view.label, nums, view.percent, view.percent_display, "nbcov-row"))
        t = self.totals
        nums = [t["num_statements"], t["missing_lines"]]
        if self.branch:
            nums += [t.get("num_branches", 0), t.get("num_partial_branches", 0)]
        rows.append(self._html_row("TOTAL", nums, t["percent_covered"], t["percent_covered_display"], "nbcov-total"))
        return (
            '<table class="nbcov-summary" style="border-collapse:collapse;margin:4px 0;">'
            f'<thead><tr style="border-bottom:1px solid rgba(128,128,128,0.5);">{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>"
        )

    @staticmethod
    def _html_row(label: str, nums: list[int], percent: float, shown: str, cls: str) -> str:
        cells = "".join(f'<td style="text-align:right;padding:1px 8px;">{n}</td>' for n in nums)
        bar = (
            '<span style="display:inline-block;width:80px;height:8px;background:rgba(248,81,73,0.45);">'
            f'<span style="display:block;height:8px;width:{percent:.1f}%;background:rgba(46,160,67,0.85);"></span></span>'
        )
        weight = "font-weight:bold;" if cls == "nbcov-total" else ""
        return (
            f'<tr class="{cls}" style="{weight}"><td style="text-align:left;padding:1px 8px;">{_e(label)}</td>{cells}'
            f'<td style="text-align:right;padding:1px 8px;">{_e(shown)}%</td><td style="padding:1px 8px;">{bar}</td></tr>'
        )

    def _html_file(self, view: FileView) -> str:
        summary = f"{_e(view.label)} — {_e(view.percent_display)}% ({view.missing} of {view.statements} lines missed"
        if self.branch:
            summary += f", {view.partial_branches} partial branches"
        summary += ")"
        lines = []
        for number, status, text in view.lines:
            look = _LOOK[status]
            title = look.label
            if number in view.explanations:
                title += ": " + "; ".join(view.explanations[number])
            if number in view.tests:
                title += " — ran by: " + ", ".join(view.tests[number])
            lines.append(
                f'<div class="nbcov-line nbcov-{look.css}" title="{_e(title)}" style="white-space:pre;{look.style}">'
                f'<span style="opacity:0.6;">{number:>4} {look.marker} </span>{_e(text) or " "}</div>'
            )
        notes = []
        for number in sorted(view.explanations):
            for words in view.explanations[number]:
                notes.append(f'<li class="nbcov-branch">{_e(words)}</li>')
        tested = []
        for number in sorted(view.tests):
            tested.append(f"<li>line {number}: {_e(', '.join(view.tests[number]))}</li>")
        extra = ""
        if notes:
            extra += f'<ul style="margin:2px 0 2px 16px;padding:0;">{"".join(notes)}</ul>'
        if tested:
            extra += (
                '<details style="margin:2px 0 2px 0;"><summary>tests that ran each line</summary>'
                f'<ul class="nbcov-tests" style="margin:2px 0 2px 16px;padding:0;">{"".join(tested)}</ul></details>'
            )
        return (
            f'<details class="nbcov-file" open style="margin:6px 0;"><summary style="cursor:pointer;">{summary}</summary>'
            f'<div style="border-left:3px solid rgba(128,128,128,0.4);padding-left:4px;">{"".join(lines)}</div>{extra}</details>'
        )

    # -- text -------------------------------------------------------------------------------------

    def __repr__(self) -> str:
        return self.text()

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.text())

    def text(self) -> str:
        """The plain-text form: the table, then each incomplete cell annotated like `coverage annotate`."""
        header = ["Name", "Stmts", "Miss"] + (["Branch", "BrPart"] if self.branch else []) + ["Cover"]
        rows = []
        for view in self.views:
            nums = [view.statements, view.missing] + ([view.branches, view.partial_branches] if self.branch else [])
            rows.append([view.label, *map(str, nums), view.percent_display + "%"])
        t = self.totals
        nums = [t["num_statements"], t["missing_lines"]] + (
            [t.get("num_branches", 0), t.get("num_partial_branches", 0)] if self.branch else []
        )
        total = ["TOTAL", *map(str, nums), t["percent_covered_display"] + "%"]
        widths = [max(len(r[i]) for r in [header, *rows, total]) for i in range(len(header))]

        def fmt(r: list[str]) -> str:
            return "  ".join([r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:])])

        rule = "-" * len(fmt(header))
        out = [self.heading, fmt(header), rule, *map(fmt, rows), rule, fmt(total)]
        for view in self.views:
            if view.is_cell and view.incomplete:
                out += ["", f"{view.label} — {view.percent_display}%"]
                for number, status, text in view.lines:
                    look = _LOOK[status]
                    line = f"{number:>4} {look.marker} {text}"
                    if self.color and look.ansi:
                        line = f"{look.ansi}{line}{_RESET}"
                    if number in view.explanations:
                        line += "   # " + "; ".join(view.explanations[number])
                    out.append(line)
        return "\n".join(out)


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)
