"""The theme codebook as versioned data.

The Victim Reference Group (VRG) owns the codebook: it can rename, merge, split and add themes. Every
edit returns a *new* :class:`Codebook` with the next version number, and records where each old code
went (``lineage``) so that labelled answers can be carried forward after a merge. Trained theme models
store the version they were trained on and refuse to load against another one (see
:mod:`analysis.themes`), because a model that predicts retired codes would silently mislabel answers.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

__all__ = ["KINDS", "Codebook", "CodebookError", "Theme", "load_codebook"]

KINDS: tuple[str, ...] = ("barrier", "gap", "need", "experience")
_CODE = re.compile(r"^[a-z][a-z0-9_]{1,48}$")
DEFAULT_CODEBOOK = "codebook-v1.yaml"


class CodebookError(ValueError):
    """An edit or a file would leave the codebook inconsistent."""


@dataclass(frozen=True)
class Theme:
    """One theme: a stable ``code`` for machines, ``name`` and ``description`` for people."""

    code: str
    kind: str
    name: str
    description: str

    def __post_init__(self) -> None:
        if not _CODE.match(self.code):
            raise CodebookError(f"theme code {self.code!r} must be snake_case ascii (a-z, 0-9, _)")
        if self.kind not in KINDS:
            raise CodebookError(f"theme {self.code!r}: kind {self.kind!r} is not one of {KINDS}")
        if not self.name.strip():
            raise CodebookError(f"theme {self.code!r} needs a name")


@dataclass(frozen=True)
class Codebook:
    """An immutable, versioned list of themes.

    ``lineage`` maps each code of the parent version to the codes it became in this version (a
    renamed theme maps to itself, a merged one to the merged code, a split one to its parts). It is
    empty for a version without a parent.
    """

    version: int
    themes: tuple[Theme, ...]
    parent_version: int | None = None
    change: str = ""
    lineage: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.version < 1:
            raise CodebookError("codebook versions start at 1")
        codes = [t.code for t in self.themes]
        duplicates = sorted({c for c in codes if codes.count(c) > 1})
        if duplicates:
            raise CodebookError(f"duplicate theme codes: {duplicates}")
        if not self.themes:
            raise CodebookError("a codebook needs at least one theme")

    # -- reading -------------------------------------------------------------------------------
    @property
    def codes(self) -> tuple[str, ...]:
        """Theme codes in codebook order (the column order of theme models)."""
        return tuple(t.code for t in self.themes)

    def theme(self, code: str) -> Theme:
        """Return the theme with ``code``; raise ``KeyError`` if there is none."""
        for t in self.themes:
            if t.code == code:
                return t
        raise KeyError(code)

    def __contains__(self, code: object) -> bool:
        return code in self.codes

    def __len__(self) -> int:
        return len(self.themes)

    @property
    def fingerprint(self) -> str:
        """sha256 of the codes and kinds: what a model depends on (names and wording are not)."""
        payload = json.dumps([[t.code, t.kind] for t in self.themes]).encode()
        return hashlib.sha256(payload).hexdigest()

    # -- edits (each returns the next version) -----------------------------------------------------
    def _next(self, themes: Iterable[Theme], change: str, lineage: Mapping[str, tuple[str, ...]]) -> Codebook:
        full: dict[str, tuple[str, ...]] = {code: (code,) for code in self.codes}
        full.update(lineage)
        return Codebook(
            version=self.version + 1,
            themes=tuple(themes),
            parent_version=self.version,
            change=change,
            lineage=full,
        )

    def _require(self, *codes: str) -> None:
        missing = [c for c in codes if c not in self]
        if missing:
            raise CodebookError(f"unknown theme codes: {missing}")

    def rename(self, code: str, name: str, description: str | None = None) -> Codebook:
        """Give ``code`` a new human name (and optionally description); the code itself is kept."""
        self._require(code)
        old = self.theme(code)
        new = replace(old, name=name, description=old.description if description is None else description)
        themes = [new if t.code == code else t for t in self.themes]
        return self._next(themes, f"renamed {code!r} to {name!r}", {})

    def add(self, theme: Theme) -> Codebook:
        """Append a new theme."""
        if theme.code in self:
            raise CodebookError(f"theme {theme.code!r} already exists")
        return self._next([*self.themes, theme], f"added {theme.code!r}", {})

    def merge(self, codes: Sequence[str], into: Theme) -> Codebook:
        """Replace the themes ``codes`` by the single theme ``into``, placed where the first one was.

        ``into.code`` may reuse one of the merged codes or be new, but may not clash with a theme
        that is kept.
        """
        if len(set(codes)) < 2:
            raise CodebookError("merge needs at least two distinct codes")
        self._require(*codes)
        if into.code in self and into.code not in codes:
            raise CodebookError(f"theme {into.code!r} already exists and is not being merged")
        first = min(self.codes.index(c) for c in codes)
        themes = [t for i, t in enumerate(self.themes) if t.code not in codes or i == first]
        themes = [into if t.code in codes else t for t in themes]
        lineage = {c: (into.code,) for c in codes}
        return self._next(themes, f"merged {list(codes)} into {into.code!r}", lineage)

    def split(self, code: str, into: Sequence[Theme]) -> Codebook:
        """Replace ``code`` by two or more themes ``into`` (answers must then be re-labelled by people)."""
        self._require(code)
        if len(into) < 2:
            raise CodebookError("split needs at least two themes")
        new_codes = [t.code for t in into]
        clash = [c for c in new_codes if c in self and c != code]
        if clash or len(set(new_codes)) != len(new_codes):
            raise CodebookError(f"split would duplicate theme codes: {clash or new_codes}")
        themes: list[Theme] = []
        for t in self.themes:
            themes.extend(into if t.code == code else [t])
        return self._next(themes, f"split {code!r} into {new_codes}", {code: tuple(new_codes)})

    def carry_labels(self, labels: Iterable[str]) -> tuple[list[str], bool]:
        """Map labels of the parent version into this version.

        Returns ``(labels, ambiguous)``; ``ambiguous`` is True when a label was split, because then
        a person has to choose between the parts (all parts are returned as candidates).
        """
        out: list[str] = []
        ambiguous = False
        for label in labels:
            targets = self.lineage.get(label, (label,) if label in self else ())
            ambiguous = ambiguous or len(targets) > 1
            out.extend(t for t in targets if t not in out)
        return out, ambiguous

    # -- serialisation -------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (what the YAML file holds)."""
        data: dict[str, Any] = {
            "version": self.version,
            "parent_version": self.parent_version,
            "change": self.change,
            "themes": [
                {"code": t.code, "kind": t.kind, "name": t.name, "description": t.description}
                for t in self.themes
            ],
        }
        if self.lineage:
            data["lineage"] = {k: list(v) for k, v in self.lineage.items()}
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Codebook:
        """Build a codebook from :meth:`to_dict` output, validating it."""
        try:
            themes = tuple(
                Theme(code=t["code"], kind=t["kind"], name=t["name"], description=t.get("description", ""))
                for t in data["themes"]
            )
            return cls(
                version=int(data["version"]),
                themes=themes,
                parent_version=data.get("parent_version"),
                change=data.get("change", "") or "",
                lineage={k: tuple(v) for k, v in (data.get("lineage") or {}).items()},
            )
        except (KeyError, TypeError) as exc:
            raise CodebookError(f"malformed codebook data: {exc!r}") from exc

    def to_yaml(self) -> str:
        """YAML text of the codebook."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True, width=110)

    def save(self, path: str | Path) -> Path:
        """Write the codebook to ``path`` as YAML and return the path."""
        p = Path(path)
        p.write_text(self.to_yaml(), encoding="utf-8")
        return p


def load_codebook(path: str | Path | None = None) -> Codebook:
    """Load a codebook YAML file; without a path, the packaged starting codebook (version 1)."""
    if path is None:
        text = resources.files("analysis.data").joinpath(DEFAULT_CODEBOOK).read_text(encoding="utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise CodebookError("codebook file must hold a mapping")
    return Codebook.from_dict(data)
