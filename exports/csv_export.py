"""Any metrics dict as a tidy CSV: one row per (group, metric), one column per breakdown key.

Columns: ``period``, every breakdown key of metrics.md (blank when the group is not split by it; any
other key the dict uses is appended), ``metric``, ``numerator``, ``denominator``, ``value``, ``pct``,
``ci_lo``, ``ci_hi``. A count fills ``value``; a mean fills ``value``; a rate fills numerator,
denominator, pct and the interval, with ``value`` equal to ``pct`` (0-100, unrounded) so one column
sorts every figure. Disclosure control is on by default (``[c]`` in hidden places). A breakdown
value that was not recorded (null) is written ``[x]``, so it never reads as the blank of an unsplit key.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping
from typing import Any

from exports.definitions import BREAKDOWN_KEYS
from exports.disclosure import DEFAULT_THRESHOLD, MIN_DENOMINATOR, suppress_metrics

VALUE_COLUMNS: tuple[str, ...] = ("metric", "numerator", "denominator", "value", "pct", "ci_lo", "ci_hi")


def csv_columns(result: Mapping[str, Any]) -> list[str]:
    """The header of :func:`metrics_to_csv` for this result."""
    extra: list[str] = []
    for g in result.get("groups", []):
        extra.extend(k for k in g.get("by", {}) if k not in BREAKDOWN_KEYS and k not in extra)
    return ["period", *BREAKDOWN_KEYS, *extra, *VALUE_COLUMNS]


def metrics_to_rows(
    result: Mapping[str, Any],
    *,
    suppress: bool = True,
    threshold: int = DEFAULT_THRESHOLD,
    min_denominator: int = MIN_DENOMINATOR,
) -> Iterator[dict[str, Any]]:
    """Yield the tidy rows of a metrics dict (values as Python numbers, None, or ``[c]``)."""
    published = suppress_metrics(result, threshold, min_denominator) if suppress else result
    columns = csv_columns(result)
    period = published.get("period", {})
    code = period.get("code", "") if isinstance(period, Mapping) else str(period)
    for g in published.get("groups", []):
        base: dict[str, Any] = dict.fromkeys(columns)
        base["period"] = code
        # A group whose attribute was not recorded (null) must not read as "not split by it" (blank):
        # it gets the GSS shorthand for not available.
        base.update({k: "[x]" if v is None else v for k, v in g.get("by", {}).items()})
        for name, value in g.get("metrics", {}).items():
            row = dict(base)
            row["metric"] = name
            if isinstance(value, Mapping):
                row["numerator"] = value.get("numerator")
                row["denominator"] = value.get("denominator")
                row["pct"] = value.get("pct")
                row["value"] = value.get("pct")
                ci = value.get("ci95")
                if isinstance(ci, list | tuple):
                    row["ci_lo"], row["ci_hi"] = ci[0], ci[1]
                else:
                    row["ci_lo"] = row["ci_hi"] = ci
            else:
                row["value"] = value
            yield row


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    text = str(value)
    # A breakdown value typed into a provider's system could be a spreadsheet formula; the quote
    # keeps it text when the CSV is opened in Excel (OWASP's CSV injection advice).
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        try:
            float(text)
        except ValueError:
            return "'" + text
    return text


def metrics_to_csv(
    result: Mapping[str, Any],
    *,
    suppress: bool = True,
    threshold: int = DEFAULT_THRESHOLD,
    min_denominator: int = MIN_DENOMINATOR,
) -> str:
    """Render a metrics dict as tidy CSV text (header first, ``\\r\\n`` line ends as RFC 4180 says).

    ``suppress=False`` is for internal use only (unsuppressed figures below whole-area totals must not
    leave the platform).
    """
    columns = csv_columns(result)
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(columns)
    for row in metrics_to_rows(
        result, suppress=suppress, threshold=threshold, min_denominator=min_denominator
    ):
        writer.writerow([_cell(row[c]) for c in columns])
    return buf.getvalue()
