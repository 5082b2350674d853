"""Instruments as versioned data: loading, schema checks, wording rules, conditions, the published lock."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

import surveys.instruments as inst
from surveys.instruments import (
    PUBLISHED,
    WAVES,
    InstrumentError,
    Wording,
    apply_licensed_text,
    file_sha256,
    load_instrument,
    questions_for,
    read_lock,
    validate_answer,
)
from surveys.messages import SURVEY_FORBIDDEN, is_neutral

STATES = ["cope", "safety", "health", "informed", "cjs", "recover"]
HELPED = [f"helped_{s}" for s in STATES]
TEXTS = ["barriers_text", "gaps_text", "comments_text"]
SATISFACTION = [
    "completely_satisfied",
    "very_satisfied",
    "fairly_satisfied",
    "neither",
    "fairly_dissatisfied",
    "very_dissatisfied",
    "completely_dissatisfied",
]
SCALES = {  # id-version: (item ids, answer codes)
    "swemwbs-1": ([f"swemwbs_{i}" for i in range(1, 8)], [1, 2, 3, 4, 5]),
    "ons4-1": ([f"ons4_{i}" for i in range(1, 5)], list(range(11))),
    "phq9-1": ([f"phq9_{i}" for i in range(1, 10)], [0, 1, 2, 3]),
    "gad7-1": ([f"gad7_{i}" for i in range(1, 8)], [0, 1, 2, 3]),
}


@pytest.fixture(scope="module")
def core() -> inst.Instrument:
    return load_instrument("core-1")


def ids(questions: list[inst.Question]) -> list[str]:
    return [q.id for q in questions]


def all_instruments() -> list[inst.Instrument]:
    return [load_instrument(iv) for iv in sorted(PUBLISHED)]


# --- loading and schema -----------------------------------------------------------------------------


@pytest.mark.parametrize("id_version", sorted(PUBLISHED))
def test_every_published_instrument_loads_and_names_itself(id_version: str) -> None:
    instrument = load_instrument(id_version)
    assert instrument.id_version == id_version
    assert set(instrument.waves) <= set(WAVES)


def test_every_instrument_file_is_published_or_a_loadable_draft() -> None:
    for path in sorted(inst.INSTRUMENTS_DIR.glob("*.yaml")):
        assert load_instrument(path.stem).id_version == path.stem


def test_core_question_ids_are_the_response_columns(core: inst.Instrument) -> None:
    answerable = [q.id for q in core.questions if not q.screening]
    assert sorted(answerable) == sorted([*STATES, *HELPED, "satisfaction", "rights_received", *TEXTS])
    assert [q.id for q in core.questions if q.screening] == ["cjs_involved"]


def test_core_waves(core: inst.Instrument) -> None:
    everything = {"cjs_involved": "yes"}
    assert ids(questions_for(core, "baseline", [], everything)) == [
        "cope",
        "safety",
        "health",
        "informed",
        "cjs_involved",
        "cjs",
        "recover",
    ]
    exit_ids = ids(questions_for(core, "exit", [], everything))
    assert exit_ids[:7] == ids(questions_for(core, "baseline", [], everything))
    assert exit_ids[7:] == [*HELPED, "satisfaction", "rights_received", *TEXTS]
    assert ids(questions_for(core, "follow_up", [], everything)) == [
        *ids(questions_for(core, "baseline", [], everything)),
        *TEXTS,
    ]


def test_core_answer_codes(core: inst.Instrument) -> None:
    for qid in STATES:
        assert [o.code for o in core.question(qid).options] == [1, 2, 3, 4, 5, "na"]
        assert core.question(qid).type == "scale"
    assert core.question("cope").options[0].label.en == "Not at all"
    assert core.question("cope").options[4].label.en == "Completely"
    assert core.question("cope").options[5].label.en == "Prefer not to say"
    for qid in HELPED:
        assert [o.code for o in core.question(qid).options] == ["a_lot", "a_little", "no", "na"]
    assert core.question("helped_cope").options[3].label.en == "This does not apply to me"
    assert [o.code for o in core.question("satisfaction").options] == SATISFACTION
    rights = core.question("rights_received")
    assert rights.type == "multi_choice"
    assert [o.code for o in rights.options] == [*range(1, 13), "none"]
    assert [o.exclusive for o in rights.options] == [False] * 12 + [True]
    for qid in TEXTS:
        question = core.question(qid)
        assert question.type == "text" and not question.required and question.max_length


def test_no_answer_code_is_a_yaml_boolean() -> None:
    # YAML 1.1 reads unquoted yes/no as booleans; a code must stay the text "yes".
    for instrument in all_instruments():
        for q in instrument.questions:
            for o in q.options:
                assert type(o.code) in (int, str), (q.id, o.code)


@pytest.mark.parametrize("id_version", sorted(SCALES))
def test_scales_have_the_right_items_and_answer_scales(id_version: str) -> None:
    scale = load_instrument(id_version)
    item_ids, codes = SCALES[id_version]
    assert scale.kind == "scale"
    assert ids(list(scale.questions)) == item_ids
    for q in scale.questions:
        assert q.type == "scale"
        assert [o.code for o in q.options] == codes


@pytest.mark.parametrize("id_version", ["swemwbs-1", "phq9-1", "gad7-1"])
def test_licensed_scales_are_marked_as_placeholders(id_version: str) -> None:
    scale = load_instrument(id_version)
    assert scale.licensed_text and scale.licence_note
    assert "placeholder" in scale.licence_note.lower()
    assert all(q.licensed_text for q in scale.questions)


def test_self_harm_item_is_marked_for_safeguarding() -> None:
    phq9 = load_instrument("phq9-1")
    flagged = [q.id for q in phq9.questions if q.safeguarding]
    assert flagged == ["phq9_9"]
    hint = phq9.question("phq9_9").hint
    assert hint is not None and "116 123" in hint.en and "116 123" in hint.cy


# --- wording ------------------------------------------------------------------------------------------


def wordings(instrument: inst.Instrument) -> list[tuple[str, Wording]]:
    return inst._texts(instrument)


@pytest.mark.parametrize("id_version", sorted(PUBLISHED))
def test_every_wording_has_english_and_welsh(id_version: str) -> None:
    instrument = load_instrument(id_version)
    assert instrument.cy_reviewed is False  # until a translator signs the Welsh off
    for where, wording in wordings(instrument):
        assert wording.en.strip() and wording.cy.strip(), where
        if not re.fullmatch(r"[\d\s-]+", wording.en):  # bare numbers are the same in both
            assert wording.en != wording.cy, f"{where}: Welsh is a copy of the English"


@pytest.mark.parametrize("id_version", sorted(PUBLISHED))
def test_victim_facing_wording_has_no_forbidden_words(id_version: str) -> None:
    for where, wording in wordings(load_instrument(id_version)):
        for text in (wording.en, wording.cy):
            assert is_neutral(text, SURVEY_FORBIDDEN), f"{where}: {text}"
            assert "victim" not in text.lower() and "crime" not in text.lower()


def test_core_questions_are_short_plain_sentences(core: inst.Instrument) -> None:
    # A rough guard for reading age 9-11: one short question per page.
    for q in core.questions:
        assert q.text.en.count("?") <= 1, q.id
        assert len(q.text.en.split()) <= 16, q.id
        if q.hint:
            for sentence in re.split(r"(?<=[.!?])\s+", q.hint.en):
                assert len(sentence.split()) <= 16, (q.id, sentence)


def test_neutrality_check_catches_forbidden_words() -> None:
    assert not is_neutral("Support for Victims", SURVEY_FORBIDDEN)
    assert not is_neutral("what the criminal did", SURVEY_FORBIDDEN)
    assert not is_neutral("ar ôl y drosedd", SURVEY_FORBIDDEN)  # Welsh soft mutation of "trosedd"
    assert is_neutral("what happened to you", SURVEY_FORBIDDEN)


# --- conditions -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "asked"),
    [(None, False), ("yes", True), ("not_sure", True), ("no", False), ("na", False)],
)
def test_justice_questions_only_when_in_touch_with_police_or_courts(
    core: inst.Instrument, answer: str | None, asked: bool
) -> None:
    answers = {} if answer is None else {"cjs_involved": answer}
    exit_ids = ids(questions_for(core, "exit", [], answers))
    for qid in ("cjs", "helped_cjs", "rights_received"):
        assert (qid in exit_ids) is asked
    assert "cjs_involved" in exit_ids and "cope" in exit_ids


def test_condition_language() -> None:
    cond = msgspec.convert({"question": "q", "in": ["a", 2]}, inst.Condition)
    assert cond.holds({"q": "a"}) and cond.holds({"q": 2}) and cond.holds({"q": "2"})
    assert cond.holds({"q": ["x", "a"]})  # any checkbox ticked
    assert not cond.holds({"q": "b"}) and not cond.holds({}) and not cond.holds({"q": None})
    assert not cond.holds({"q": []})


def test_scales_are_switched_on_per_service_and_asked_after_the_states(core: inst.Instrument) -> None:
    base = ids(questions_for(core, "baseline", [], {}))
    with_scales = ids(questions_for(core, "baseline", ["phq9", "swemwbs-1"], {}))
    at = with_scales.index("recover") + 1
    # Core's declared order (swemwbs, ons4, phq9, gad7), whatever order the service lists them in.
    assert with_scales[at : at + 16] == SCALES["swemwbs-1"][0] + SCALES["phq9-1"][0]
    assert [q for q in with_scales if q in base] == base
    with pytest.raises(InstrumentError):
        questions_for(core, "baseline", ["not_a_scale"], {})
    with pytest.raises(InstrumentError):
        questions_for(core, "midway", [], {})


# --- answers ---------------------------------------------------------------------------------------


def test_validate_scale_answers(core: inst.Instrument) -> None:
    cope = core.question("cope")
    assert validate_answer(cope, "3") == (3, None, None)
    assert validate_answer(cope, "na") == ("na", None, None)
    assert validate_answer(cope, "") == (
        None,
        "Select how well you feel you can cope",
        "Dewiswch pa mor dda rydych chi'n teimlo y gallwch chi ymdopi",
    )
    assert validate_answer(cope, None)[1] == "Select how well you feel you can cope"
    value, en, cy = validate_answer(cope, "9")
    assert value is None and en == "Select an answer from the list" and cy
    assert validate_answer(cope, ["1", "2"])[0] is None


def test_validate_choice_multi_and_text(core: inst.Instrument) -> None:
    assert validate_answer(core.question("helped_cope"), "a_lot") == ("a_lot", None, None)
    assert validate_answer(core.question("satisfaction"), "") == (None, None, None)  # optional
    rights = core.question("rights_received")
    assert validate_answer(rights, ["7", "1", "7"]) == ([1, 7], None, None)
    assert validate_answer(rights, "none") == (["none"], None, None)
    value, en, cy = validate_answer(rights, ["none", "3"])
    assert value is None and en is not None and "'None of these' on its own" in en and cy
    assert validate_answer(rights, [])[1] == "Select the things you got, or select 'None of these'"
    gaps = core.question("gaps_text")
    assert validate_answer(gaps, "  help at night\r\n  ") == ("help at night", None, None)
    assert validate_answer(gaps, "   ") == (None, None, None)
    assert validate_answer(gaps, "x" * 2001) == (
        None,
        "Your answer must be 2000 characters or less",
        "Rhaid i'ch ateb fod yn 2000 nod neu lai",
    )


def test_validated_answers_drive_conditions(core: inst.Instrument) -> None:
    value, _, _ = validate_answer(core.question("cjs_involved"), "yes")
    assert "cjs" in ids(questions_for(core, "baseline", [], {"cjs_involved": value}))


def test_licensed_wording_is_applied_at_run_time_without_touching_the_file() -> None:
    phq9 = load_instrument("phq9-1")
    licensed = apply_licensed_text(
        phq9, {"phq9_1": Wording(en="Licensed item one", cy="Eitem drwyddedig un")}
    )
    assert licensed.question("phq9_1").text.en == "Licensed item one"
    assert licensed.question("phq9_2") == phq9.question("phq9_2")
    assert load_instrument("phq9-1").question("phq9_1").text == phq9.question("phq9_1").text
    with pytest.raises(InstrumentError):
        apply_licensed_text(load_instrument("core-1"), {"cope": Wording(en="x", cy="y")})


# --- versioning: the published lock -------------------------------------------------------------------


def test_published_files_match_the_committed_lock() -> None:
    lock = read_lock()
    # A version once published stays published (stored responses name it), and every one is locked.
    assert set(lock) == set(PUBLISHED)
    for id_version in sorted(PUBLISHED):
        digest = file_sha256(inst.instrument_path(id_version))
        assert digest == lock[id_version], (
            f"{id_version}.yaml changed after publication: put new wording in a new version file"
        )


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A copy of the instruments folder the loader reads instead of the real one."""
    for path in inst.INSTRUMENTS_DIR.glob("*.yaml"):
        shutil.copy(path, tmp_path / path.name)
    shutil.copy(inst.LOCK_PATH, tmp_path / inst.LOCK_PATH.name)
    monkeypatch.setattr(inst, "INSTRUMENTS_DIR", tmp_path)
    monkeypatch.setattr(inst, "LOCK_PATH", tmp_path / inst.LOCK_PATH.name)
    inst._load.cache_clear()
    yield tmp_path
    inst._load.cache_clear()


def test_a_changed_published_file_is_refused(sandbox: Path) -> None:
    path = sandbox / "core-1.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("Partly", "Somewhat"), encoding="utf-8")
    with pytest.raises(InstrumentError, match="changed since publication"):
        load_instrument("core-1")


def test_a_published_version_missing_from_the_lock_is_refused(sandbox: Path) -> None:
    lock = json.loads((sandbox / "published.lock.json").read_text())
    del lock["gad7-1"]
    (sandbox / "published.lock.json").write_text(json.dumps(lock))
    with pytest.raises(InstrumentError, match="no entry"):
        load_instrument("gad7-1")


DRAFT = """
id: draft
version: 1
kind: core
title: {en: "Draft", cy: "Drafft"}
waves: [baseline]
questions:
  - id: first
    type: choice
    text: {en: "First?", cy: "Cyntaf?"}
    error: {en: "Select one", cy: "Dewiswch un"}
    options:
      - {code: "yes", label: {en: "Yes", cy: "Ie"}}
      - {code: "no", label: {en: "No", cy: "Na"}}
  - id: second
    type: text
    max_length: 100
    when: [{question: first, in: ["yes"]}]
    text: {en: "Second?", cy: "Ail?"}
    error: {en: "Enter an answer", cy: "Rhowch ateb"}
"""


def test_a_draft_version_loads_and_conditions_apply(sandbox: Path) -> None:
    (sandbox / "draft-1.yaml").write_text(DRAFT, encoding="utf-8")
    draft = load_instrument("draft-1")
    assert ids(questions_for(draft, "baseline", [], {})) == ["first"]
    assert ids(questions_for(draft, "baseline", [], {"first": "yes"})) == ["first", "second"]


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        ('en: "Second?"', 'en: "Tell us about the crime"', "uses crime"),
        ('cy: "Ail?"', 'cy: "Y dioddefwr"', "uses dioddefw"),
        ('in: ["yes"]', 'in: ["maybe"]', "not all options"),
        ("question: first", "question: second", "not an earlier question"),
        ("max_length: 100", "max_length: 0", "needs max_length"),
        ('cy: "Drafft"', 'cy: ""', "empty cy"),
        ("waves: [baseline]", "waves: [baseline]\ncolour: red", "unknown field"),
        ("version: 1", "version: 2", "name says draft-1"),
    ],
)
def test_malformed_drafts_are_refused(sandbox: Path, old: str, new: str, problem: str) -> None:
    assert old in DRAFT
    (sandbox / "draft-1.yaml").write_text(DRAFT.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(InstrumentError, match=problem):
        load_instrument("draft-1")


def test_unknown_or_malformed_ids_are_refused() -> None:
    with pytest.raises(InstrumentError):
        load_instrument("core-99")
    with pytest.raises(InstrumentError):
        load_instrument("../core-1")
