"""One row per check, and the printed report."""

from __future__ import annotations

import enum
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass


class Status(enum.Enum):
    OK = "ok"
    WARNING = "warning"  # deploys, but something will not work as configured
    PROBLEM = "problem"  # the deploy (or every GPU node) would fail: exit status 1
    UNCHECKED = "could not check"  # listed, does not fail the run


@dataclass(frozen=True)
class Row:
    status: Status
    check: str  # what was checked
    detail: str  # what was found
    fix: str = ""  # what to do about it (empty when nothing)


_WIDTH = 100
_STATUS_WIDTH = max(len(s.value) for s in Status)


def render(rows: Sequence[Row]) -> str:
    """The rows as an aligned list, the details wrapped under their check; a fix stays on
    one line, so a command in it can be copied."""
    check_width = max(len(row.check) for row in rows)
    indent = " " * (_STATUS_WIDTH + check_width + 4)
    lines = []
    for row in rows:
        head = f"{row.status.value:<{_STATUS_WIDTH}}  {row.check:<{check_width}}  "
        lines += textwrap.wrap(row.detail, _WIDTH, initial_indent=head,
                               subsequent_indent=indent, break_on_hyphens=False,
                               break_long_words=False)
        if row.fix:
            lines.append(f"{indent}fix: {row.fix}")
    return "\n".join(lines)


def summary(rows: Sequence[Row]) -> str:
    counts = {status: sum(row.status is status for row in rows) for status in Status}
    plural = {Status.WARNING: "warnings", Status.PROBLEM: "problems"}
    text = ", ".join(f"{n} {plural.get(status, status.value) if n > 1 else status.value}"
                     for status, n in counts.items() if n)
    if counts[Status.PROBLEM]:
        return f"preflight: {text}: fix the problems before `cdk deploy`."
    if counts[Status.UNCHECKED]:
        return (f"preflight: {text}: no problem found, but some checks could not run "
                "(grant the actions named above to check them).")
    return f"preflight: {text}: ready to deploy."


def exit_status(rows: Sequence[Row]) -> int:
    return 1 if any(row.status is Status.PROBLEM for row in rows) else 0
