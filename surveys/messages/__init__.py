"""Neutral contact messages (invitations and reminders) in English and Welsh, and the neutrality check.

Safe contact: a message may be read by someone the person is not safe with, so it names no
organisation and uses none of the words in `DEFAULT_FORBIDDEN`. Templates live in `templates.yaml`
beside this file, or in an area's own file of the same shape (VOP_MESSAGE_TEMPLATES, checked at
start-up by `load_templates`); `render_message` refuses to return a text that fails `is_neutral`, so
a careless template edit or a revealing link (say, a deployment on a domain that names a service)
fails loudly instead of going out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Literal

import msgspec

__all__ = [
    "CHANNELS",
    "DEFAULT_FORBIDDEN",
    "KINDS",
    "LANGS",
    "SURVEY_FORBIDDEN",
    "find_forbidden",
    "is_neutral",
    "load_templates",
    "reminder_kind",
    "render_message",
    "sender_name",
]

Kind = Literal["invitation", "reminder", "final_reminder"]
Lang = Literal["en", "cy"]
Channel = Literal["email", "sms"]

KINDS: tuple[str, ...] = ("invitation", "reminder", "final_reminder")
LANGS: tuple[str, ...] = ("en", "cy")
CHANNELS: tuple[str, ...] = ("email", "sms")

# Word stems matched at the start of a word, case-insensitively ("victim" also catches "victims",
# "abus" catches "abuse", "abused", "abusive"). Welsh nouns mutate at the start (trosedd -> drosedd,
# throsedd, nhrosedd), so the mutated forms are listed too. Deliberately broad: a false alarm costs
# a rewording, a miss can cost someone's safety.
_VICTIM_CRIME_STEMS: tuple[str, ...] = (
    "victim",
    "crime",
    "crimin",
    # Welsh: dioddefwr/dioddefwyr (victim, and mutations), trosedd (crime, and mutations)
    "dioddefw",
    "ddioddefw",
    "nioddefw",
    "trosedd",
    "drosedd",
    "throsedd",
    "nhrosedd",
    "troseddw",
)
SURVEY_FORBIDDEN: tuple[str, ...] = _VICTIM_CRIME_STEMS
"""Words never used on victim-facing survey pages (which may still name the police and the courts)."""

DEFAULT_FORBIDDEN: tuple[str, ...] = (
    *_VICTIM_CRIME_STEMS,
    "police",
    "abus",
    "offence",
    "offender",
    "assault",
    "violen",
    "rape",
    "sexual",
    "domestic",
    "stalk",
    "harass",
    "court",
    "justice",
    "refuge",
    "safeguard",
    # Welsh: heddlu (police), cam-drin (abuse, and mutations), trais/treisio (violence, rape),
    # llys (court), cyfiawnder (justice), lloches (refuge)
    "heddlu",
    "cam-drin",
    "camdrin",
    "gam-drin",
    "gamdrin",
    "ngham-drin",
    "nghamdrin",
    "cham-drin",
    "chamdrin",
    "trais",
    "drais",
    "thrais",
    "nhrais",
    "treis",
    "dreis",
    "llys",
    "cyfiawnder",
    "gyfiawnder",
    "lloches",
)
"""Words never used in contact messages (email subject and body, SMS). Extend per deployment with the
names of local organisations via the `forbidden` / `extra` parameters."""


def _pattern(stems: Iterable[str]) -> re.Pattern[str]:
    # \b before the stem only: stems deliberately match longer words.
    alternatives = "|".join(re.escape(s.casefold()) for s in sorted(set(stems), key=len, reverse=True))
    return re.compile(rf"\b(?:{alternatives})", re.IGNORECASE)


def _normalise(text: str) -> str:
    # Curly apostrophes and soft hyphens would otherwise split or disguise a word.
    return text.replace("\u00ad", "").replace("\u2019", "'").casefold()


def find_forbidden(text: str, forbidden: Iterable[str] | None = None, extra: Iterable[str] = ()) -> list[str]:
    """Return the forbidden stems found in `text` (empty when the text is neutral).

    `forbidden` replaces the default list (`DEFAULT_FORBIDDEN`); `extra` adds to it (for example the
    names of the deployment's own organisations).
    """
    stems = [*(DEFAULT_FORBIDDEN if forbidden is None else forbidden), *extra]
    stems = [s for s in stems if s.strip()]
    if not stems:
        return []
    found = {m.group(0).casefold() for m in _pattern(stems).finditer(_normalise(text))}
    return sorted(found)


def is_neutral(text: str, forbidden: Iterable[str] | None = None, extra: Iterable[str] = ()) -> bool:
    """True when `text` contains none of the forbidden word stems (see `find_forbidden`)."""
    return not find_forbidden(text, forbidden, extra)


class _Wording(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    body: str
    subject: str | None = None


class _Templates(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    cy_reviewed: bool
    sender_name: dict[str, str]
    templates: dict[str, dict[str, dict[str, _Wording]]]


TEMPLATES_PATH = Path(__file__).with_name("templates.yaml")
_LINK = re.compile(r"^https?://[^\s{}<>\"']+$")


def load_templates(path: Path) -> _Templates:
    """Read and check a templates file (the packaged one, or an area's own: VOP_MESSAGE_TEMPLATES).

    Every kind, channel and language must be there, each body must carry `{link}`, e-mails need a
    subject, and every wording and sender name must be neutral. Raises ValueError saying what is wrong,
    so that a bad file stops start-up instead of a message later.
    """
    try:
        loaded = msgspec.yaml.decode(path.read_bytes(), type=_Templates)
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from exc
    except msgspec.ValidationError as exc:
        raise ValueError(f"{path}: {exc}") from exc
    problems: list[str] = []
    for lang in LANGS:
        name = loaded.sender_name.get(lang, "")
        if not name.strip() or not is_neutral(name):
            problems.append(f"sender_name.{lang} must be present and neutral")
    for kind in KINDS:
        for channel in CHANNELS:
            for lang in LANGS:
                where = f"templates.{kind}.{channel}.{lang}"
                wording = loaded.templates.get(kind, {}).get(channel, {}).get(lang)
                if wording is None:
                    problems.append(f"{where} is missing")
                    continue
                if "{link}" not in wording.body:
                    problems.append(f"{where} has no {{link}}")
                if channel == "email" and not (wording.subject or "").strip():
                    problems.append(f"{where} has no subject")
                if found := find_forbidden(f"{wording.subject or ''}\n{wording.body}"):
                    problems.append(f"{where} is not neutral: {', '.join(found)}")
    if problems:
        raise ValueError(f"{path}: " + "; ".join(problems))
    return loaded


@cache
def _templates() -> _Templates:
    from settings import get_settings

    own = get_settings().message_templates
    return load_templates(Path(own) if own else TEMPLATES_PATH)


def sender_name(lang: str) -> str:
    """The neutral sender name to show for a message in `lang` (email display name, SMS sender id)."""
    return _templates().sender_name[lang]


def reminder_kind(number: int, of: int) -> str:
    """The template kind for reminder `number` (1-based) of `of` reminders: the last one says so."""
    if number < 1 or number > of:
        raise ValueError(f"reminder {number} of {of}")
    return "final_reminder" if number == of else "reminder"


def render_message(
    kind: str,
    lang: str,
    channel: str,
    link: str,
    *,
    forbidden: Iterable[str] | None = None,
    extra_forbidden: Iterable[str] = (),
) -> tuple[str | None, str]:
    """Render a contact message: `(subject, body)`; the subject is None for SMS.

    `kind` is one of `KINDS`, `lang` one of `LANGS`, `channel` one of `CHANNELS` (assisted phone calls
    follow a call script, not a template). `link` must be a plain http(s) URL. Raises ValueError for
    an unknown kind/lang/channel, a malformed link, or a rendered text that is not neutral.
    """
    if kind not in KINDS or lang not in LANGS or channel not in CHANNELS:
        raise ValueError(f"no template for kind={kind!r} lang={lang!r} channel={channel!r}")
    if not _LINK.match(link):
        raise ValueError("link must be a plain http(s) URL")
    wording = _templates().templates[kind][channel][lang]
    # str.replace, not str.format: a brace in a template or link must never be interpreted.
    body = wording.body.replace("{link}", link)
    subject = wording.subject if channel == "email" else None
    found = find_forbidden(f"{subject or ''}\n{body}", forbidden, extra_forbidden)
    if found:
        raise ValueError(f"message {kind}/{channel}/{lang} is not neutral: {', '.join(found)}")
    return subject, body
