"""Survey instruments as versioned data: YAML files beside this module, loaded into msgspec Structs.

An instrument file is named `<id>-<version>.yaml` (e.g. `core-1.yaml`). The core survey (`kind: core`)
holds the questions of data-formats.md; optional validated scales (`kind: scale`) are separate
instruments that the core pins by version in its `scales` map and that a provider switches on.

Versioning: a version listed in `PUBLISHED` is immutable, because stored responses name the version
they answered (`Response.instrument_version`) and must keep meaning what the person was asked. The
sha256 of each published file is committed in `published.lock.json`; `load_instrument` refuses a
published file whose bytes differ, and a test does the same. New wording means a new version file.

Condition language (`when` on a question): a list of `{question: <id>, in: [<codes>]}`; the question
is asked only when every condition holds (AND across the list, OR within one `in` list). A condition
holds when the earlier answer (or, for a multi-choice answer, any of its codes) is one of the codes;
an unanswered or skipped question never satisfies a condition, so follow-on questions stay hidden.

Licensed wording: SWEMWBS, PHQ-9 and GAD-7 item texts are licensed, so their files carry paraphrased
placeholders marked `licensed_text: true`; a deployment holding the licence supplies the exact wording
with `apply_licensed_text` at run time, leaving the published files (and their hashes) untouched.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any, Final, Literal

import msgspec

from surveys.messages import SURVEY_FORBIDDEN, find_forbidden

__all__ = [
    "INSTRUMENTS_DIR",
    "LOCK_PATH",
    "PUBLISHED",
    "WAVES",
    "Condition",
    "Instrument",
    "InstrumentError",
    "Option",
    "Question",
    "Wording",
    "apply_licensed_text",
    "file_sha256",
    "instrument_path",
    "load_instrument",
    "questions_for",
    "read_lock",
    "validate_answer",
]

INSTRUMENTS_DIR: Final = Path(__file__).parent
LOCK_PATH: Final = INSTRUMENTS_DIR / "published.lock.json"

PUBLISHED: Final[frozenset[str]] = frozenset({"core-1", "swemwbs-1", "ons4-1", "phq9-1", "gad7-1"})
"""Published instrument versions: their files must match `published.lock.json` byte for byte."""

Wave = Literal["baseline", "exit", "follow_up"]
WAVES: Final[tuple[str, ...]] = ("baseline", "exit", "follow_up")
QuestionType = Literal["scale", "choice", "multi_choice", "text"]
Code = int | str
Answer = int | str | list[int | str] | None

_ID_VERSION = re.compile(r"^([a-z][a-z0-9_]*)-([1-9][0-9]*)$")
_QUESTION_ID = re.compile(r"^[a-z][a-z0-9_]*$")

# Generic messages for answers that could only come from a tampered or stale form (GOV.UK style).
_NOT_AN_OPTION = ("Select an answer from the list", "Dewiswch ateb o'r rhestr")
_EXCLUSIVE = (
    "Select the answers that apply, or select the last answer on its own",
    "Dewiswch yr atebion sy'n berthnasol, neu dewiswch yr ateb olaf ar ei ben ei hun",
)


class InstrumentError(ValueError):
    """An instrument file is missing, malformed, inconsistent, or changed after publication."""


class Wording(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One piece of victim-facing text in English and Welsh."""

    en: str
    cy: str

    def get(self, lang: str) -> str:
        """The text in `lang` (`en` or `cy`)."""
        return self.cy if lang == "cy" else self.en


class Option(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """An allowed answer: its stored code (int for scale points, str otherwise) and its label."""

    code: Code
    label: Wording
    hint: Wording | None = None
    # Checkboxes: an exclusive option ("None of these") cannot be combined with others.
    exclusive: bool = False


class Condition(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`{question: id, in: [codes]}`: holds when the earlier answer is one of `codes`."""

    question: str
    codes: tuple[Code, ...] = msgspec.field(name="in")

    def holds(self, answers: Mapping[str, Any]) -> bool:
        """Whether the condition holds for the answers given so far."""
        value = answers.get(self.question)
        if value is None or value == "" or value == []:
            return False
        given = value if isinstance(value, list | tuple) else [value]
        wanted = {str(c) for c in self.codes}
        # Compare as text so raw form values ("1") and validated values (1) behave the same.
        return any(str(v) in wanted for v in given)


class Question(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One question, shown on a page of its own.

    `id` is the response column (or, for scale items, the key in `Response.extra_answers`);
    `screening` questions only steer routing (`when`) and have no response column.
    """

    id: str
    type: QuestionType
    text: Wording
    error: Wording  # shown when a required question is left unanswered
    hint: Wording | None = None
    options: tuple[Option, ...] = ()
    waves: tuple[Wave, ...] | None = None  # None: the instrument's waves
    when: tuple[Condition, ...] = ()
    required: bool = True
    max_length: int | None = None  # text questions
    error_exclusive: Wording | None = None
    screening: bool = False
    licensed_text: bool = False
    # The answer may signal risk (e.g. thoughts of self-harm): the hint carries where to get help now,
    # and the survey flow should show that help after the answer.
    safeguarding: bool = False

    def option(self, code: object) -> Option | None:
        """The option whose code matches `code` (compared as text), or None."""
        for opt in self.options:
            if str(opt.code) == str(code):
                return opt
        return None


class Instrument(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A versioned questionnaire: the core survey or one optional scale."""

    id: str
    version: int
    kind: Literal["core", "scale"]
    title: Wording
    waves: tuple[Wave, ...]
    questions: tuple[Question, ...]
    cy_reviewed: bool = False
    licensed_text: bool = False
    licence_note: str | None = None
    # Core only: scale name -> pinned scale instrument ("swemwbs" -> "swemwbs-1"), and where they go.
    scales: dict[str, str] = {}
    scales_after: str | None = None
    # Free space for YAML anchors (shared option lists); not used by the loader.
    definitions: dict[str, Any] = {}

    @property
    def id_version(self) -> str:
        """`<id>-<version>`, the value stored with every response."""
        return f"{self.id}-{self.version}"

    def question(self, question_id: str) -> Question:
        """The question with this id (KeyError when absent)."""
        for q in self.questions:
            if q.id == question_id:
                return q
        raise KeyError(question_id)

    def waves_of(self, question: Question) -> tuple[str, ...]:
        """The waves in which `question` is asked."""
        return question.waves if question.waves is not None else self.waves


def instrument_path(id_version: str) -> Path:
    """The YAML file of an instrument version (it may not exist)."""
    if not _ID_VERSION.match(id_version):
        raise InstrumentError(f"not an instrument id-version: {id_version!r}")
    return INSTRUMENTS_DIR / f"{id_version}.yaml"


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes (the published lock compares these)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_lock() -> dict[str, str]:
    """The committed `{id_version: sha256}` of published instruments."""
    return dict(json.loads(LOCK_PATH.read_text(encoding="utf-8")))


def load_instrument(id_version: str) -> Instrument:
    """Load and check an instrument version, e.g. `load_instrument("core-1")`.

    Raises InstrumentError when the file is missing or malformed, fails the consistency checks, or is
    published but differs from its locked hash. Results are cached (instruments are immutable).
    """
    return _load(id_version)


@cache
def _load(id_version: str) -> Instrument:
    path = instrument_path(id_version)
    if not path.is_file():
        raise InstrumentError(f"no instrument file {path.name}")
    if id_version in PUBLISHED:
        locked = read_lock().get(id_version)
        if locked is None:
            raise InstrumentError(f"published instrument {id_version} has no entry in {LOCK_PATH.name}")
        if file_sha256(path) != locked:
            raise InstrumentError(
                f"published instrument {id_version} has changed since publication; "
                "put new wording in a new version file"
            )
    try:
        instrument = msgspec.yaml.decode(path.read_bytes(), type=Instrument)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise InstrumentError(f"{path.name}: {exc}") from exc
    problems = _problems(instrument, id_version)
    if problems:
        raise InstrumentError(f"{path.name}: " + "; ".join(problems))
    return instrument


def _texts(instrument: Instrument) -> list[tuple[str, Wording]]:
    """Every victim-facing wording with a label saying where it is."""
    out: list[tuple[str, Wording]] = [("title", instrument.title)]
    for q in instrument.questions:
        out += [(f"{q.id}.text", q.text), (f"{q.id}.error", q.error)]
        if q.hint:
            out.append((f"{q.id}.hint", q.hint))
        if q.error_exclusive:
            out.append((f"{q.id}.error_exclusive", q.error_exclusive))
        for opt in q.options:
            out.append((f"{q.id}.{opt.code}", opt.label))
            if opt.hint:
                out.append((f"{q.id}.{opt.code}.hint", opt.hint))
    return out


def _problems(inst: Instrument, id_version: str) -> list[str]:
    """Consistency checks msgspec's typing cannot express."""
    problems: list[str] = []
    if inst.id_version != id_version:
        problems.append(f"file says {inst.id_version}, name says {id_version}")
    if not inst.waves or not set(inst.waves) <= set(WAVES):
        problems.append("waves must be a non-empty subset of baseline/exit/follow_up")
    if inst.kind == "scale" and (inst.scales or inst.scales_after):
        problems.append("a scale cannot include scales")
    for name, pinned in inst.scales.items():
        match = _ID_VERSION.match(pinned)
        if not match or match.group(1) != name:
            problems.append(f"scale {name!r} must pin a version of itself, got {pinned!r}")
    seen: dict[str, Question] = {}
    for q in inst.questions:
        if not _QUESTION_ID.match(q.id) or q.id in seen:
            problems.append(f"question id {q.id!r} is malformed or repeated")
        if q.waves is not None and not set(q.waves) <= set(inst.waves):
            problems.append(f"{q.id}: waves outside the instrument's waves")
        if q.type == "text":
            if q.options:
                problems.append(f"{q.id}: a text question has no options")
            if not q.max_length or q.max_length < 1:
                problems.append(f"{q.id}: a text question needs max_length")
        else:
            codes = [str(o.code) for o in q.options]
            if len(q.options) < 2 or len(set(codes)) != len(codes):
                problems.append(f"{q.id}: needs two or more options with distinct codes")
            if q.type == "scale" and not any(isinstance(o.code, int) for o in q.options):
                problems.append(f"{q.id}: a scale needs numeric points")
            if q.type != "multi_choice" and any(o.exclusive for o in q.options):
                problems.append(f"{q.id}: only checkboxes have exclusive options")
        if q.licensed_text and not inst.licensed_text:
            problems.append(f"{q.id}: licensed item in an instrument not marked licensed_text")
        for cond in q.when:
            earlier = seen.get(cond.question)
            if earlier is None:
                problems.append(f"{q.id}: condition on {cond.question!r}, which is not an earlier question")
            elif any(earlier.option(c) is None for c in cond.codes) or not cond.codes:
                problems.append(f"{q.id}: condition codes {list(cond.codes)} not all options of {earlier.id}")
        seen[q.id] = q
    if inst.scales_after is not None and inst.scales_after not in seen:
        problems.append(f"scales_after names an unknown question {inst.scales_after!r}")
    for where, wording in _texts(inst):
        for lang in ("en", "cy"):
            text = wording.get(lang)
            if not text.strip():
                problems.append(f"{where}: empty {lang} wording")
            elif found := find_forbidden(text, SURVEY_FORBIDDEN):
                problems.append(f"{where}: {lang} wording uses {', '.join(found)}")
    return problems


def _scale_instrument(core: Instrument, name: str) -> Instrument:
    pinned = core.scales.get(name)
    if pinned is None and name in core.scales.values():
        pinned = name
    if pinned is None:
        raise InstrumentError(f"{core.id_version} has no scale {name!r}")
    return load_instrument(pinned)


def _asked(instrument: Instrument, wave: str, answers: Mapping[str, Any]) -> list[Question]:
    return [
        q
        for q in instrument.questions
        if wave in instrument.waves_of(q) and all(c.holds(answers) for c in q.when)
    ]


def questions_for(
    instrument: Instrument, wave: str, scales: Sequence[str], answers: Mapping[str, Any]
) -> list[Question]:
    """The questions to ask, in order, for `wave` given the answers so far.

    `scales` are the optional scales the provider has switched on, by name (`"swemwbs"`) or pinned
    id-version (`"swemwbs-1"`), as declared in the core instrument's `scales`; they are asked after
    `scales_after`, in the core's declared order. Conditions are evaluated against `answers`; call
    again after each answer, since an answer can reveal (or hide) later questions. An unknown wave or
    scale raises InstrumentError: a misconfigured service should fail loudly, not ask the wrong survey.
    """
    if wave not in WAVES:
        raise InstrumentError(f"unknown wave {wave!r}")
    core = _asked(instrument, wave, answers)
    wanted = {_scale_instrument(instrument, s).id for s in scales}
    extra: list[Question] = []
    for name in instrument.scales:
        if name in wanted:
            extra += _asked(_scale_instrument(instrument, name), wave, answers)
    if not extra:
        return core
    ids = [q.id for q in core]
    at = ids.index(instrument.scales_after) + 1 if instrument.scales_after in ids else len(core)
    return core[:at] + extra + core[at:]


def _err(wording: Wording) -> tuple[None, str, str]:
    return None, wording.en, wording.cy


def validate_answer(
    question: Question, raw: str | Sequence[str] | None
) -> tuple[Answer, str | None, str | None]:
    """Check one raw form answer: `(value, error_en, error_cy)`, the errors None when valid.

    `raw` is a form value (str) or, for checkboxes, a list of them. The value is the option code
    (int for scale points, str otherwise; "na" stays "na"), a list of codes in option order for
    checkboxes, the stripped text for text questions, or None when an optional question is skipped.
    Error messages follow the GOV.UK style and come from the instrument ("Select how well you feel
    you can cope").
    """
    if question.type == "text":
        text = raw if isinstance(raw, str) else ""
        # Normalise line endings so max_length counts what the person sees; NULs never reach storage.
        text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "").strip()
        if not text:
            return (None, None, None) if not question.required else _err(question.error)
        limit = question.max_length or 0
        if len(text) > limit:
            return (
                None,
                f"Your answer must be {limit} characters or less",
                f"Rhaid i'ch ateb fod yn {limit} nod neu lai",
            )
        return text, None, None

    given = [raw] if isinstance(raw, str) else list(raw or [])
    given = [g.strip() for g in given if isinstance(g, str) and g.strip()]
    if not given:
        return (None, None, None) if not question.required else _err(question.error)
    chosen = [question.option(g) for g in given]
    if any(opt is None for opt in chosen):
        return None, *_NOT_AN_OPTION
    picked = {str(opt.code) for opt in chosen if opt is not None}
    if question.type != "multi_choice":
        if len(picked) > 1:
            return None, *_NOT_AN_OPTION
        only = chosen[0]
        assert only is not None
        return only.code, None, None
    in_order = [o for o in question.options if str(o.code) in picked]
    if len(in_order) > 1 and any(o.exclusive for o in in_order):
        if question.error_exclusive:
            return _err(question.error_exclusive)
        return None, *_EXCLUSIVE
    return [o.code for o in in_order], None, None


def apply_licensed_text(instrument: Instrument, texts: Mapping[str, Wording]) -> Instrument:
    """A copy of `instrument` with licensed item wording replaced by the deployment's licensed text.

    `texts` maps question id -> Wording. Only questions marked `licensed_text` may be replaced (the
    rest of an instrument is the platform's own, published wording). The published file is not
    touched, so its lock hash and the stored `instrument_version` stay valid.
    """
    unknown = set(texts) - {q.id for q in instrument.questions if q.licensed_text}
    if unknown:
        raise InstrumentError(f"not licensed items of {instrument.id_version}: {sorted(unknown)}")
    questions = tuple(
        msgspec.structs.replace(q, text=texts[q.id]) if q.id in texts else q for q in instrument.questions
    )
    return msgspec.structs.replace(instrument, questions=questions)
