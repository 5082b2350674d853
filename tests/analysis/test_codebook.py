"""The codebook as versioned data: loading and the VRG's edits."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from analysis.codebook import Codebook, CodebookError, Theme, load_codebook

DOC = Path("/work/shared/domain/codebook.md")


def test_v1_has_the_fifteen_themes_in_order(codebook: Codebook) -> None:
    assert codebook.version == 1
    assert codebook.parent_version is None
    assert len(codebook) == 15
    assert codebook.codes[0] == "police_response"
    assert codebook.codes[-1] == "positive_support"
    assert {t.kind for t in codebook.themes} == {"barrier", "gap", "need", "experience"}
    assert codebook.theme("respect").name == "Respect and dignity"


@pytest.mark.skipif(not DOC.exists(), reason="shared domain docs not mounted")
def test_v1_matches_the_codebook_document(codebook: Codebook) -> None:
    rows = re.findall(r"^\| `(\w+)` \| (\w+) \| ([^|]+) \|", DOC.read_text(), flags=re.M)
    assert [(c, k, n.strip()) for c, k, n in rows] == [(t.code, t.kind, t.name) for t in codebook.themes]


def test_rename_keeps_code_and_bumps_version(codebook: Codebook) -> None:
    new = codebook.rename("housing", "Somewhere safe to live")
    assert new.version == 2 and new.parent_version == 1
    assert new.codes == codebook.codes
    assert new.theme("housing").name == "Somewhere safe to live"
    assert new.theme("housing").description == codebook.theme("housing").description
    assert codebook.theme("housing").name == "Housing"  # the old version is untouched
    assert new.fingerprint == codebook.fingerprint  # names do not change what a model predicts


def test_merge_replaces_codes_and_records_lineage(codebook: Codebook) -> None:
    into = Theme("service_capacity", "gap", "Service capacity", "Waiting and time-limited support.")
    new = codebook.merge(["waiting_times", "support_ended"], into)
    assert "waiting_times" not in new and "support_ended" not in new
    assert new.codes.index("service_capacity") == codebook.codes.index("waiting_times")
    assert len(new) == 14
    assert new.carry_labels(["support_ended", "housing"]) == (["service_capacity", "housing"], False)
    assert new.fingerprint != codebook.fingerprint


def test_split_and_add(codebook: Codebook) -> None:
    parts = [Theme("police_attitude", "barrier", "Police attitude", "How officers behaved."),
             Theme("police_inaction", "barrier", "Police inaction", "Nothing done.")]
    split = codebook.split("police_response", parts)
    assert split.codes[:2] == ("police_attitude", "police_inaction")
    labels, ambiguous = split.carry_labels(["police_response"])
    assert ambiguous and labels == ["police_attitude", "police_inaction"]
    added = split.add(Theme("online_abuse", "need", "Online abuse", "Image-based and online abuse."))
    assert added.version == 3 and added.codes[-1] == "online_abuse"


@pytest.mark.parametrize("edit", [
    lambda cb: cb.add(Theme("housing", "gap", "Dup", "")),
    lambda cb: cb.merge(["housing"], Theme("x_y", "gap", "X", "")),
    lambda cb: cb.merge(["housing", "nope"], Theme("x_y", "gap", "X", "")),
    lambda cb: cb.merge(["housing", "safety"], Theme("respect", "gap", "X", "")),
    lambda cb: cb.split("housing", [Theme("only_one", "gap", "X", "")]),
    lambda cb: cb.split("housing", [Theme("safety", "gap", "X", ""), Theme("h2", "gap", "Y", "")]),
    lambda cb: cb.rename("nope", "Nope"),
])
def test_inconsistent_edits_are_refused(codebook: Codebook, edit) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CodebookError):
        edit(codebook)


@pytest.mark.parametrize("bad", [
    {"code": "Bad Code", "kind": "gap", "name": "x", "description": ""},
    {"code": "ok_code", "kind": "feeling", "name": "x", "description": ""},
    {"code": "ok_code", "kind": "gap", "name": " ", "description": ""},
])
def test_theme_validation(bad: dict[str, str]) -> None:
    with pytest.raises(CodebookError):
        Theme(**bad)


def test_yaml_round_trip(tmp_path: Path, codebook: Codebook) -> None:
    new = codebook.merge(["safety", "housing"], Theme("safe_home", "need", "Safe home", "Both."))
    path = new.save(tmp_path / "cb.yaml")
    back = load_codebook(path)
    assert back == new
    assert back.lineage["housing"] == ("safe_home",)


def test_malformed_file_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text("version: 1\nthemes:\n  - code: x_y\n")
    with pytest.raises(CodebookError):
        load_codebook(p)
