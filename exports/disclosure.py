"""Disclosure control on the way out, as ``domain/metrics.md`` defines it.

Every output below whole-area totals (and every VRG view) goes through here:

- a count of 1..threshold (default 4) is shown as ``[c]``; 0 stays 0;
- a percentage, mean or interval whose denominator is under 10 is shown as ``[c]``;
- secondary suppression: where a row or column of a breakdown has exactly one ``[c]`` cell and a shown
  total, the next smallest cell in it is also ``[c]`` (repeated until nothing changes);
- free text only for themes with at least 5 distinct victims.

One solver (:func:`_solve`) does the counting work for every shape: a table is a set of cells and a list
of *lines* (a row or a column: its member cells and the cell holding their total). :func:`suppress_table`
builds lines for a plain 2-D table; :func:`suppress_metrics` builds them for the metrics engine's dict
(columns across the groups of a breakdown, plus the rows whose parts add up to a shown figure, such as
``referrals_by_status.*`` to ``referrals_received``).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from exports.definitions import AREAS, STATUSES

SUPPRESSED = "[c]"
DEFAULT_THRESHOLD = 4
MIN_DENOMINATOR = 10
MIN_THEME_VICTIMS = 5

Cell = int | str
K = TypeVar("K", bound=Hashable)


def is_suppressed(value: object) -> bool:
    """True when a published value is the ``[c]`` marker."""
    return isinstance(value, str) and value == SUPPRESSED


def _is_count(value: object) -> bool:
    # bool is an int subclass; a flag is never a count.
    return isinstance(value, int) and not isinstance(value, bool)


def suppress_count(value: int | None, threshold: int = DEFAULT_THRESHOLD) -> int | str | None:
    """Primary suppression of one count: 1..threshold becomes ``[c]``; 0 and larger counts are shown."""
    if value is not None and 1 <= value <= threshold:
        return SUPPRESSED
    return value


def themes_visible(counts: Mapping[str, int], min_victims: int = MIN_THEME_VICTIMS) -> list[str]:
    """Themes whose free text may be shown: those with at least ``min_victims`` distinct victims.

    ``counts`` maps a theme to its number of distinct victims in the view (not texts: one victim writing
    five times is still one person who could be recognised). Order of ``counts`` is kept.
    """
    return [theme for theme, n in counts.items() if n >= min_victims]


# ---------------------------------------------------------------------------------------------------------
# The solver


def _solve(
    values: Mapping[K, int | None],
    lines: Iterable[tuple[Sequence[K], K | None]],
    threshold: int,
    exempt: frozenset[K] | set[K] = frozenset(),
) -> set[K]:
    """Return the cells to hide: primary (1..threshold) then secondary until stable.

    ``lines`` are (members, total): when the total is shown and exactly one member is hidden, that member
    could be recovered by subtraction, so the next smallest shown member is hidden too. A zero is only
    chosen when no non-zero member is left, because hiding a 0 next to a small count leaves their sum
    equal to the small count, which protects nothing. ``exempt`` cells (whole-area totals) are published
    as they are and never chosen; a line whose only other member is exempt hides its total instead.
    """
    hidden: set[K] = {
        key for key, v in values.items() if v is not None and 1 <= v <= threshold and key not in exempt
    }
    line_list = [(list(members), total) for members, total in lines]
    changed = True
    while changed:
        changed = False
        for members, total in line_list:
            if total is None or values.get(total) is None or total in hidden:
                continue
            hidden_members = [m for m in members if m in hidden]
            if len(hidden_members) != 1:
                continue
            candidates = [
                m for m in members if m not in hidden and m not in exempt and values.get(m) is not None
            ]
            if candidates:
                nonzero = [m for m in candidates if values[m] != 0]
                pool = nonzero or candidates
                # min() keeps the first of equal values, so the choice is deterministic.
                hidden.add(min(pool, key=lambda m: values[m] or 0))
                changed = True
            elif total not in exempt:
                hidden.add(total)
                changed = True
    return hidden


@dataclass
class SuppressedTable:
    """A table after disclosure control: body cells and totals, with ``[c]`` where hidden."""

    cells: list[list[Cell]]
    row_totals: list[Cell] | None = None
    col_totals: list[Cell] | None = None
    grand_total: Cell | None = None
    secondary: set[tuple[int, int]] = field(default_factory=set)


def suppress_table(
    cells: Sequence[Sequence[int]],
    row_totals: Sequence[int] | None = None,
    col_totals: Sequence[int] | None = None,
    threshold: int = DEFAULT_THRESHOLD,
    *,
    grand_total: int | None = None,
    exempt_totals: bool = False,
) -> SuppressedTable:
    """Apply primary and secondary suppression to a breakdown table.

    ``cells[r][c]`` are counts; ``row_totals[r]`` / ``col_totals[c]`` the totals shown beside them (None:
    no totals shown, so no secondary suppression along that direction). ``grand_total`` closes the
    totals row and column, so a hidden total cannot be recovered from it either. ``exempt_totals`` keeps
    the totals unsuppressed (whole-area figures are published as they are).
    Returns the table with ``[c]`` in hidden places; ``secondary`` lists body cells hidden only to
    protect another cell (for tests and diagnostics; never publish which ones they are).
    """
    n_rows = len(cells)
    n_cols = len(cells[0]) if n_rows else 0
    if any(len(row) != n_cols for row in cells):
        raise ValueError("ragged table: every row needs the same number of cells")
    if row_totals is not None and len(row_totals) != n_rows:
        raise ValueError("row_totals must have one total per row")
    if col_totals is not None and len(col_totals) != n_cols:
        raise ValueError("col_totals must have one total per column")

    # Keys: ("c", r, c) body, ("r", r) row total, ("k", c) column total, ("g",) grand total.
    values: dict[tuple[Any, ...], int | None] = {}
    for r, row in enumerate(cells):
        for c, v in enumerate(row):
            values[("c", r, c)] = v
    exempt: set[tuple[Any, ...]] = set()
    lines: list[tuple[list[tuple[Any, ...]], tuple[Any, ...] | None]] = []
    if row_totals is not None:
        for r, v in enumerate(row_totals):
            values[("r", r)] = v
            lines.append(([("c", r, c) for c in range(n_cols)], ("r", r)))
    if col_totals is not None:
        for c, v in enumerate(col_totals):
            values[("k", c)] = v
            lines.append(([("c", r, c) for r in range(n_rows)], ("k", c)))
    if grand_total is not None:
        values[("g",)] = grand_total
        if row_totals is not None:
            lines.append(([("r", r) for r in range(n_rows)], ("g",)))
        if col_totals is not None:
            lines.append(([("k", c) for c in range(n_cols)], ("g",)))
    if exempt_totals:
        exempt = {k for k in values if k[0] != "c"}

    primary = {k for k, v in values.items() if v is not None and 1 <= v <= threshold and k not in exempt}
    hidden = _solve(values, lines, threshold, exempt)

    def show(key: tuple[Any, ...]) -> Cell:
        v = values[key]
        return SUPPRESSED if key in hidden else v  # type: ignore[return-value]

    return SuppressedTable(
        cells=[[show(("c", r, c)) for c in range(n_cols)] for r in range(n_rows)],
        row_totals=None if row_totals is None else [show(("r", r)) for r in range(n_rows)],
        col_totals=None if col_totals is None else [show(("k", c)) for c in range(n_cols)],
        grand_total=None if grand_total is None else show(("g",)),
        secondary={(k[1], k[2]) for k in hidden - primary if k[0] == "c"},
    )


# ---------------------------------------------------------------------------------------------------------
# The metrics engine's dict


def _rate_aliases(name: str) -> tuple[str | None, str | None]:
    """The count metrics that a rate's numerator and denominator repeat, so both hide together.

    If ``helped.cope`` were hidden while ``helped_pct.cope``'s numerator showed the same number, the
    suppression would be undone; mapping both to one cell makes them one decision.
    """
    base, _, suffix = name.partition(".")
    if base == "helped_pct":
        return f"helped.{suffix}", f"helped_n.{suffix}"
    if base == "improved_pct":
        return f"improved.{suffix}", f"paired_n.{suffix}"
    return {
        "exit_response_rate": ("exit_responses", "episodes_closed"),
        "satisfied_pct": ("satisfied", "answered"),
        "helped_cope_and_recover_pct": ("helped_cope_and_recover", None),
    }.get(name, (None, None))


def _row_families(columns: set[str]) -> list[tuple[list[str], str]]:
    """Rows of one group whose parts add up to a published figure of the same group."""
    families: list[tuple[list[str], str]] = []
    statuses = [f"referrals_by_status.{s}" for s in STATUSES]
    extra = sorted(c for c in columns if c.startswith("referrals_by_status.") and c not in statuses)
    statuses = [s for s in statuses + extra if s in columns]
    if statuses and "referrals_received" in columns:
        families.append((statuses, "referrals_received"))
    areas = list(AREAS) + sorted(
        {c.partition(".")[2] for c in columns if c.startswith("paired_n.")} - set(AREAS) - {"swemwbs"}
    )
    for a in areas:
        parts = [f"{p}.{a}" for p in ("improved", "deteriorated", "no_change")]
        if f"paired_n.{a}" in columns and all(p in columns for p in parts):
            families.append((parts, f"paired_n.{a}"))
    return families


def _count_cells(metrics: Mapping[str, Any]) -> tuple[dict[str, int | None], dict[str, tuple[str, str]]]:
    """Flatten a group's metrics into count cells; return them and each rate's (numerator, denominator)
    cell names."""
    cells: dict[str, int | None] = {}
    rate_cells: dict[str, tuple[str, str]] = {}
    for name, value in metrics.items():
        if _is_count(value):
            cells[name] = value
    for name, value in metrics.items():
        if isinstance(value, Mapping):
            num_alias, den_alias = _rate_aliases(name)
            names = []
            for part, alias in (("numerator", num_alias), ("denominator", den_alias)):
                v = value.get(part)
                # Use the alias only when it really carries the same number; else a cell of its own.
                if alias is not None and alias in cells and cells[alias] == v:
                    names.append(alias)
                else:
                    key = f"{name}#{part}"
                    cells[key] = v if _is_count(v) else None
                    names.append(key)
            rate_cells[name] = (names[0], names[1])
    return cells, rate_cells


def _mean_denominator(name: str, metrics: Mapping[str, Any]) -> int | None:
    """The paired n behind ``mean_*.X`` (``paired_n.X``); None when the dict does not carry it."""
    _, _, suffix = name.partition(".")
    n = metrics.get(f"paired_n.{suffix}")
    return n if _is_count(n) else None


def _publish_group(
    metrics: Mapping[str, Any],
    hidden: set[str],
    rate_cells: Mapping[str, tuple[str, str]],
    min_denominator: int,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in metrics.items():
        if _is_count(value):
            out[name] = SUPPRESSED if name in hidden else value
        elif isinstance(value, Mapping):
            num_key, den_key = rate_cells[name]
            rate = dict(value)
            num_hidden = num_key in hidden
            den_hidden = den_key in hidden
            if num_hidden:
                rate["numerator"] = SUPPRESSED
            if den_hidden:
                rate["denominator"] = SUPPRESSED
            den = value.get("denominator")
            # A shown percentage with a shown denominator gives the numerator back (and vice versa),
            # so the percentage hides with either; small denominators hide it by rule.
            small = isinstance(den, int) and not isinstance(den, bool) and den < min_denominator
            if value.get("pct") is not None and (small or num_hidden or den_hidden):
                rate["pct"] = SUPPRESSED
            if value.get("ci95") is not None and (small or num_hidden or den_hidden):
                rate["ci95"] = SUPPRESSED
            out[name] = rate
        elif isinstance(value, float) and name.startswith("mean_"):
            n = _mean_denominator(name, metrics)
            # No paired n to judge by: hiding is the safe side for a figure that could single someone out.
            out[name] = SUPPRESSED if n is None or n < min_denominator else value
        else:
            out[name] = value
    return out


def suppress_metrics(
    result: Mapping[str, Any],
    threshold: int = DEFAULT_THRESHOLD,
    min_denominator: int = MIN_DENOMINATOR,
    *,
    whole_exempt: bool = True,
) -> dict[str, Any]:
    """Return a copy of a metrics-engine result with disclosure control applied to its groups.

    The whole-area group (``"by": {}``) is published as it is when ``whole_exempt`` (the MoJ return's
    totals); set it False when the "whole" is itself below the area total (one provider's report).
    Groups with the same breakdown keys form one table: each count metric is a column whose total is the
    whole-area figure, and rows whose parts add up (statuses to ``referrals_received``; improved,
    deteriorated and no change to ``paired_n``) are lines too. A rate's numerator and denominator
    share the decision of the count they repeat; its percentage and interval hide when either is hidden
    or the denominator is under ``min_denominator``; a mean hides when its paired n is under it.
    """
    out: dict[str, Any] = {k: copy.deepcopy(v) for k, v in result.items() if k != "groups"}
    groups: list[Mapping[str, Any]] = list(result.get("groups", []))
    whole_idx = next((i for i, g in enumerate(groups) if not g.get("by")), None)

    flat: list[dict[str, int | None]] = []
    rates: list[dict[str, tuple[str, str]]] = []
    for g in groups:
        cells, rate_cells = _count_cells(g.get("metrics", {}))
        flat.append(cells)
        rates.append(rate_cells)

    tables: dict[tuple[str, ...], list[int]] = {}
    for i, g in enumerate(groups):
        if i != whole_idx:
            tables.setdefault(tuple(sorted(g.get("by", {}))), []).append(i)
    if whole_idx is not None and not whole_exempt and not tables:
        tables[()] = []

    hidden_by_group: dict[int, set[str]] = {i: set() for i in range(len(groups))}
    for members in tables.values():
        values: dict[tuple[int, str], int | None] = {}
        lines: list[tuple[list[tuple[int, str]], tuple[int, str] | None]] = []
        rows = list(members)
        if whole_idx is not None:
            rows.append(whole_idx)
        for i in rows:
            for col, v in flat[i].items():
                values[(i, col)] = v
            for parts, total in _row_families(set(flat[i])):
                lines.append(([(i, p) for p in parts], (i, total)))
        columns = sorted({col for i in members for col in flat[i]})
        for col in columns:
            total_key = (whole_idx, col) if whole_idx is not None and col in flat[whole_idx] else None
            lines.append(([(i, col) for i in members if col in flat[i]], total_key))  # type: ignore[arg-type]
        exempt = {k for k in values if k[0] == whole_idx} if whole_exempt else set()
        for i, col in _solve(values, lines, threshold, exempt):
            hidden_by_group[i].add(col)

    published: list[dict[str, Any]] = []
    for i, g in enumerate(groups):
        new = {k: copy.deepcopy(v) for k, v in g.items() if k != "metrics"}
        if i == whole_idx and whole_exempt:
            new["metrics"] = copy.deepcopy(dict(g.get("metrics", {})))
        else:
            new["metrics"] = _publish_group(
                g.get("metrics", {}), hidden_by_group[i], rates[i], min_denominator
            )
        published.append(new)
    out["groups"] = published
    return out


def published_numbers(result: Mapping[str, Any]) -> Iterable[tuple[int, str, str, Any]]:
    """Yield (group index, metric, part, value) for every number a published result would show.

    For tests and audits: a check that no published count is 1..threshold walks this.
    """
    for i, g in enumerate(result.get("groups", [])):
        for name, value in g.get("metrics", {}).items():
            if _is_count(value) or (isinstance(value, float) and math.isfinite(value)):
                yield i, name, "value", value
            elif isinstance(value, Mapping):
                for part in ("numerator", "denominator", "pct"):
                    v: Any = value.get(part)
                    if _is_count(v) or isinstance(v, float):
                        yield i, name, part, v
