"""Redaction of personal identifiers in victims' free-text answers.

Nobody but the supporting provider may read a victim's words before they pass through here, so the
detector is built for recall: every pattern is precompiled once at import, and names (there is no NER
model in this stack) are found by titles, relationship and naming cues, a list of common UK first names
and a few grammatical cues, with stop lists that keep organisations, days and months readable.

Public interface: :class:`Redactor` (a stateless scikit-learn transformer), :func:`find_entities`,
:func:`redact` and :func:`evaluation_report`.

Conventions: a title is redacted with its name ("PC Smith" -> "[NAME]", since "Mrs" tells the sex);
social media handles ("@name") count as ``URL``; spelled-out emails ("jo dot smith at gmail dot com")
as ``EMAIL``; dates are redacted only as birth dates. Known limits: a name that is not in the list,
has no cue and starts a sentence ("Kwame from the council ...") is missed; so are house names without
a number ("3 The Green" is kept). The labelled sets are ``redaction_dev.jsonl`` (for development) and
``redaction_eval.jsonl`` (held out, for :func:`evaluation_report`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from sklearn.base import BaseEstimator, TransformerMixin

__all__ = [
    "ENTITY_TYPES",
    "Redactor",
    "evaluate",
    "evaluation_report",
    "find_entities",
    "load_labelled",
    "redact",
]

DATA_DIR = Path(__file__).parent / "data"
FIRST_NAMES_FILE = DATA_DIR / "redaction_first_names.txt"
EVAL_FILE = DATA_DIR / "redaction_eval.jsonl"
DEV_FILE = DATA_DIR / "redaction_dev.jsonl"

# Order is priority: when two detectors claim overlapping text the earlier type wins. Context-led types
# (a crime reference or date of birth announced as such) come before the shape-only ones that could
# also match part of them (a phone-like number inside a reference).
ENTITY_TYPES: tuple[str, ...] = (
    "EMAIL",
    "URL",
    "CRIME_REF",
    "DOB",
    "NI_NUMBER",
    "PHONE",
    "POSTCODE",
    "VEHICLE_REG",
    "ADDRESS",
    "NAME",
)

Span = tuple[str, int, int]

# --------------------------------------------------------------------------------------------------
# Shape patterns
# --------------------------------------------------------------------------------------------------

# The lookbehind starts the local part only at the start of a token: without it a long run of letters
# before an "@" is rescanned from every position (quadratic; 15 s for a 20,000-character token).
_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]+\s?(?:@|\(at\)|\[at\])\s?[A-Za-z0-9\-]+"
    r"(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}"
)

# "jo dot smith at gmail dot com": spelled-out addresses are how people dodge spam filters and forms.
_EMAIL_SPOKEN = re.compile(
    r"(?<![A-Za-z0-9._\-])[A-Za-z0-9._\-]+(?:\s+dot\s+[A-Za-z0-9_\-]+){0,4}\s+(?:at|\(at\))\s+[A-Za-z0-9\-]+"
    r"(?:\s+dot\s+[A-Za-z0-9\-]+){0,3}\s+dot\s+(?:com|co\s+dot\s+uk|co|uk|org|net)\b",
    re.IGNORECASE,
)

_TLD = r"(?:co\.uk|org\.uk|gov\.uk|ac\.uk|nhs\.uk|police\.uk|com|org|net|uk|io|me|info|ly|tv)"
# Bare domains ("facebook.com/dave.r") are as identifying as full URLs, so both are caught.
_URL = re.compile(
    r"(?:https?://|www\.)[^\s<>\"]+"
    rf"|\b[A-Za-z0-9][A-Za-z0-9\-]*(?:\.[A-Za-z0-9\-]+)*\.{_TLD}\b(?:/[^\s<>\"]*)?",
    re.IGNORECASE,
)
# Social media handles ("@dave_smith_99") identify a person as surely as a profile URL, so they are
# redacted as [URL] (an online identifier); an email's "@" is claimed by EMAIL first.
_HANDLE = re.compile(r"(?<![\w@.])@[A-Za-z0-9_][A-Za-z0-9_.]{2,29}\b")

# UK numbers: +44 / 0044 / 0 prefix, optional (0), optional brackets round the area code, spaces or
# hyphens between groups. The digit count is validated in code, which is simpler and stricter than
# encoding every area-code length in the pattern.
_PHONE = re.compile(
    r"(?<![\w+/])(?:(?:\+|00)\s?44\s?(?:\(0\)\s?)?\d|\(\s?0\d{2,4}\s?\)\s?\d|0\d)[\d\- ]{4,16}\d(?![\d/])"
)

_POSTCODE = re.compile(r"\b(?:[A-Z]{1,2}\d[A-Z\d]?|GIR)\s?\d[ABD-HJLNP-UW-Z]{2}\b", re.IGNORECASE)

_NI = re.compile(r"\b[A-Z]{2}\s?\d{2}\s?\d{2}\s?\d{2}\s?[A-D]\b", re.IGNORECASE)
# Without the suffix letter the shape is too loose on its own, so it needs to be announced.
_NI_CONTEXT = re.compile(
    r"(?i:\bN\.?I\.?(?: number| no\.?)?|national insurance(?: number| no\.?)?)\s*(?:is|was|:|-)?\s*"
    r"(?P<v>[A-Z]{2}\s?\d{2}\s?\d{2}\s?\d{2}\s?[A-D]?)\b",
    re.IGNORECASE,
)

_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
    r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_DATE = (
    r"(?:\d{1,2}\s?[/.\-]\s?\d{1,2}\s?[/.\-]\s?\d{2,4}"
    rf"|\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH}\.?,?(?:\s+\d{{2,4}})?"
    rf"|{_MONTH}\.?\s+\d{{1,2}}(?:st|nd|rd|th)?,?(?:\s+\d{{4}})?)"
)
# Dates are redacted only where they are a birth date: other dates (the day of the crime, a court date)
# are what the VRG needs to read.
_DOB = re.compile(
    r"\b(?:d\.?o\.?b\.?|date of birth|birth ?date|born(?: on)?|birthday(?: is| was)?)"
    r"\s*(?:is|was|:|-|=|\()?\s*(?:on\s+)?(?:the\s+)?"
    rf"(?P<v>{_DATE})(?![\w/])",
    re.IGNORECASE,
)

# Crime references: announced ones in any shape that contains a digit, plus the distinctive police
# formats (force/serial/year, Action Fraud NFRC numbers) that need no announcement.
_CRIME_REF_CONTEXT = re.compile(
    r"\b(?:crime\s+(?:ref(?:erence)?|number|no\.?|num)(?:\s+(?:number|no\.?))?|ref(?:erence)?\s*(?:number"
    r"|no\.?|num)?"
    r"|crn|c\.r\.n\.?|incident\s+(?:number|no\.?|ref(?:erence)?|log)|log\s+(?:number|no\.?)|occurrence"
    r"(?:\s+number)?"
    r"|case\s+(?:number|no\.?|ref(?:erence)?)|urn|cad(?:\s+number)?|action\s+fraud\s+(?:ref(?:erence)?"
    r"|number)"
    r"|police\s+(?:ref(?:erence)?|number))"
    r"\s*(?:is|was|:|#|-|=|,|\()?\s*(?:number\s+)?"
    r"(?P<v>\d{1,5}\s+of\s+\d{1,2}/\d{1,2}/\d{2,4}|CAD\s?\d{3,6}"
    r"|(?=[A-Z0-9/\-]*\d)[A-Z0-9][A-Z0-9/\-]{2,}[A-Z0-9])",
    re.IGNORECASE,
)
_CRIME_REF_SHAPE = re.compile(
    r"\b(?:\d{2}/\d{4,8}/\d{2,4}|\d{2}[A-Z]{1,3}/\d{4,8}/\d{2}|NFRC\d{8,14}|\d{4}/\d{2}[A-Z]{3}\d{2}"
    r"|\d{1,5}\s+of\s+\d{1,2}/\d{1,2}/\d{2,4})\b",
    re.IGNORECASE,
)

_VEHICLE_KEYWORDS = (
    r"(?:reg(?:istration)?(?:\s+(?:number|no\.?|plate))?|number\s*plates?|plates?|cars?|vans?|vehicle"
    r"|motorbike|bike|taxi|lorry|truck|4x4|jeep|audi|bmw|ford|vauxhall|corsa|golf|mercedes)"
)
_REG_CURRENT = r"[A-Z]{2}\d{2}\s?[A-Z]{3}"
_REG_PREFIX_SUFFIX = r"[A-HJ-PR-Y]\d{1,3}\s?[A-Z]{3}|[A-Z]{3}\s?\d{1,3}\s?[A-HJ-PR-Y]"
# Dateless plates ("DAZ 1") look like too many ordinary tokens ("on 12") in any case but capitals.
_REG_OLDER = rf"{_REG_PREFIX_SUFFIX}|(?-i:[A-Z]{{1,3}}\s?\d{{1,4}}|\d{{1,4}}\s?[A-Z]{{1,3}})"
# The current and prefix/suffix formats in capitals are distinctive enough alone; lower case and the
# dateless formats are too close to ordinary tokens ("A1", "M40") unless a vehicle word comes shortly
# before.
_REG_BARE = re.compile(rf"\b(?:{_REG_CURRENT}|{_REG_PREFIX_SUFFIX})\b")
_REG_CONTEXT = re.compile(
    rf"\b{_VEHICLE_KEYWORDS}\b[^.!?\n]{{0,40}}?\b(?P<v>{_REG_CURRENT}|{_REG_OLDER})\b",
    re.IGNORECASE,
)

_STREET_SUFFIX = (
    r"(?:Road|Rd|Street|St|Lane|Ln|Close|Cl|Avenue|Ave|Drive|Dr|Way|Crescent|Cres|Place|Pl|Gardens|Gdns"
    r"|Grove|Terrace|Court|Ct|Row|Hill|Walk|Mews|Square|Sq|Park|View|Rise|Green|Parade|Boulevard|Vale"
    r"|Croft|Fields|Meadow|Meadows|Wharf|Yard|Gate|Chase|End)"
)
# Words that may not stand between a house number and a street suffix: they are how ordinary phrases
# ("2 buses down the road", "3 times on the way") would otherwise look like an address.
_ADDR_STOP = (
    r"(?:the|a|an|my|his|her|our|their|your|its|this|that|to|of|down|up|on|in|at|and|or|for|from|by|with"
    r"|into|onto|across|over|along|off|times?|days?|weeks?|months?|years?|hours?|mins?|minutes?|seconds?"
    r"|miles?|yards?|am|pm|kids?|children|people|men|women|police|officers?|calls?|more|other|different"
    r"|separate|same|one|two|three|four|five|six|seven|eight|nine|ten|was|were|is|are|went|got|then)"
)
_ADDR_WORD = rf"(?!{_ADDR_STOP}\b)[A-Za-z][A-Za-z'\-]*"
_ADDRESS = re.compile(
    rf"\b(?:(?:flat|apartment|apt|unit)\s+\d+[A-Za-z]?,?\s+)?\d{{1,4}}[A-Za-z]?(?:-\d{{1,4}})?,?\s+"
    rf"(?:{_ADDR_WORD}\s+){{1,3}}(?i:{_STREET_SUFFIX})\b\.?"
    r"|\b(?:flat|apartment|apt)\s+\d+[A-Za-z]?,?\s+[A-Z][a-z]+\s+(?:House|Court|Tower|Lodge|Mansions"
    r"|Point)\b",
    re.IGNORECASE,
)
# Without a house number the street name alone still points at a home, but only capitalised names with
# an unambiguous suffix are taken, so that "the road" or "Hyde Park" stay.
_ADDRESS_NAMED = re.compile(
    r"\b(?:[A-Z][a-z'\-]+\s+){1,2}(?:Road|Street|Lane|Close|Avenue|Drive|Crescent|Gardens|Grove|Terrace"
    r"|Mews)\b"
)

# --------------------------------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------------------------------

_NAME_TOKEN = r"(?:O'|D')?[A-Z][a-z]+(?:[A-Z][a-z]+)?(?:-[A-Z][a-z]+)?"
_CAP_TOKEN = re.compile(rf"\b{_NAME_TOKEN}")
_TITLE_NAME = re.compile(
    r"\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|PC|DC|DS|DI|DCI|DSU|PCSO|Sgt|Sergeant|Inspector|Constable|Detective"
    r"|Judge|Cllr|Councillor|Prof|Professor)\.?\s+"
    rf"(?P<v>{_NAME_TOKEN}(?:\s+{_NAME_TOKEN})?)"
)
_RELATION = (
    r"(?:ex(?:-|\s)?(?:partner|husband|wife|boyfriend|girlfriend|bf|gf)?|partner|husband|wife|hubby|boyfriend"
    r"|girlfriend|bf|gf|fianc[eé]e?|son|daughter|child|stepson|stepdaughter|step-son|step-daughter|stepdad"
    r"|stepmum|step-dad|step-mum|brother|sister|cousin|uncle|aunt|auntie|nephew|niece|grandson"
    r"|granddaughter|nan|gran|grandad|grandma|father|mother|dad|mum|mom|friend|mate|best\s+friend"
    r"|neighbour|neighbor|landlord|landlady|boss|manager|colleague|flatmate|housemate|carer|worker"
    r"|support\s+worker|case\s?worker|key\s?worker|social\s+worker|counsellor|counselor|therapist|officer"
    r"|police\s+officer|detective|isva|idva|advocate|solicitor|barrister|teacher|doctor|gp|nurse|abuser"
    r"|attacker|stalker|offender|perpetrator|baby|youngest|eldest|oldest|little\s+boy|little\s+girl"
    r"|boy|girl|lad|kid|twin|twins)"
)
_REL_CUE = re.compile(
    rf"\b(?i:(?:my|his|her|our|their|your|the|me|mine)\s+{_RELATION}),?\s+(?:(?i:called|named|is|was)\s+)?"
    r"(?P<v>[A-Za-z][a-z'\-]+)\b"
)
_NAMING_CUE = re.compile(
    r"\b(?i:called|named|name\s+is|name\s+was|name's|names\s+are|known\s+as|goes\s+by|signed|"
    r"spoke\s+to|speak\s+to|talked\s+to|talk\s+to|ask\s+for|asked\s+for|thanks\s+to|thank\s+you\s+to"
    r"|thank|(?:supported|helped|attacked|assaulted|abused|raped|hit|stalked|harassed|threatened|contacted"
    r"|visited|seen|let\s+down|groomed|followed|interviewed|represented)\s+by)\s+(?P<v>[A-Za-z][a-z'\-]+)\b"
)
# After these verbs a capitalised mid-sentence word is almost always the person doing them.
_VERB_AFTER = re.compile(
    r"(?:'s)?\s+(?:said|says|told|tells|came|comes|kept|keeps|was|is|has|had|hit|hits|punched|kicked"
    r"|threatened|threatens|messaged|texted|rang|phoned|followed|attacked|stole|took|turned|started|got"
    r"|shouted|broke|pushed|grabbed|stalked|lives|lived|knows|knew|did|does|would|will|wouldn't|didn't"
    r"|won't|isn't|wasn't|who|and\s+I|and\s+me|from\s+(?:the\s+)?(?:police|victim|refuge|rosa|safeline))\b"
)
# "Zbigniew's wife": a possessive before a relationship word marks a person.
_POSSESSIVE_REL = re.compile(rf"'s\s+(?i:{_RELATION})\b")
_AND_BEFORE = re.compile(r"\s+(?:and|&)\s+$")
_AND_AFTER = re.compile(r"\s+(?:and|&)\s+")
_LOWER_SPLIT = re.compile(r"[^a-z]+")
_LOWER_WORD = re.compile(r"\b[a-z]+\b")
_SURNAME_AFTER = re.compile(rf"\s+(?P<v>{_NAME_TOKEN})")


def _word_set(words: str) -> frozenset[str]:
    """Lower-cased set of the whitespace-separated words in ``words`` (keeps long word lists readable)."""
    return frozenset(words.lower().split())


# Capitalised words that are never taken as names: days, months, the organisations and places the
# answers talk about, roles, and words that often start sentences. Kept readable on purpose.
_NOT_NAMES = _word_set(
    """
    I I'm I've I'd I'll A An The This That These Those It Its It's He She They We You Me Him Her Them Us
    His Hers Their Our Your My Mine Who What When Where Why How Which Whose Whoever There Here Then Now
    Yes No Not Nobody Nothing Noone Someone Somebody Something Everyone Everybody Everything Anyone
    Anybody Anything All Any Some Most Many Much More Less Few Each Every Both Either Neither None And
    But Or So If Because As Since Until Unless Although Though While Whilst After Before During Also
    Just Only Even Still Again Never Always Sometimes Often Really Very Too Maybe Perhaps Please Thanks
    Thank Sorry Hello Hi Dear Ok Okay Well Oh Being Having Getting Going Trying Feeling Not Monday
    Tuesday Wednesday Thursday Friday Saturday Sunday Mon Tue Tues Wed Thu Thurs Fri Sat Sun January
    February March April May June July August September October November December Jan Feb Mar Apr Jun
    Jul Aug Sep Sept Oct Nov Dec Christmas Easter Eid Diwali Ramadan Xmas Police Policing Victim Victims
    Support Supports Refuge Rosa Safeline Barnardo Barnardo's Barnardos Court Courts Crown Magistrates
    Magistrate Family Council Housing Mind Samaritans Citizens Advice Action Fraud Women's Aid Aid
    Witness Service Services Social Care Hospital Health NHS Trust Team Unit Centre Center Office
    Department Home Bureau Probation Prison Jail Law Legal Solicitors Chambers Church Mosque Temple
    School College University Academy Nursery Surgery Practice Clinic Ward Pharmacy Station Warwickshire
    Warwick Coventry Leamington Spa Rugby Nuneaton Stratford Kenilworth Bedworth Atherstone Alcester
    Southam Shipston Birmingham Solihull London Manchester Leeds Leicester Northampton Oxford England
    English Wales Welsh Scotland Scottish Ireland Irish Britain British UK Europe European Polish
    Romanian Indian Pakistani Asian African Caribbean Muslim Christian Hindu Sikh Jewish Facebook
    Instagram WhatsApp Snapchat TikTok Twitter Google Amazon Tesco Asda Sainsbury's Aldi Lidl Morrisons
    Boots Costa Uber Zoom Teams Youtube YouTube Gmail Hotmail Outlook Iphone iPhone Android Officer
    Officers Sergeant Constable Detective Inspector Judge Jury Mr Mrs Ms Miss Dr Sir Madam Lord Lady Mum
    Mummy Mam Mom Dad Daddy Nan Nana Nanna Gran Granny Grandma Grandad Grandpa Grandmother Grandfather
    Auntie Aunty Uncle Son Daughter Brother Sister Baby Partner Husband Wife Ex Counsellor Counselling
    Doctor Nurse Worker Caseworker Advocate Isva Idva Therapist Teacher Landlord God Jesus Allah Lord
    Road Street Lane Close Avenue Drive Way Crescent Place Gardens Grove Terrace House Lodge Hall Tower
    Point Mansions Building Estate Flats Covid Lockdown Universal Credit Benefits Jobcentre Council's
    Government Ministry Justice Commissioner PCC OPCC Crimestoppers Crime Stoppers Domestic Abuse Sexual
    Violence Hate Cyber Road Trauma Line Helpline Sorry Thankyou Honestly Basically Obviously Luckily
    Unfortunately Eventually Finally Overall Firstly Secondly Lastly Initially Apparently Clearly
    Definitely Absolutely Hopefully Without Within About Above Across Against Along Among Around At By
    Down For From In Into Like Near Of Off On Onto Out Over Past Round Through To Towards Under Up Upon
    With Was Were Is Are Am Be Been Had Has Have Do Does Did Done Can Could Should Would Will Shall
    Might Must Let Get Got Give Gave Go Went Tell Told Said Say Ask Asked Called Call Rang Phoned Waited
    Wait Still Having Felt Feel Felt Keep Kept Lost Took Made Make Once Twice First Second Third Last
    Next Other Another Same Different New Old Good Bad Great Best Worst Day Days Week Weeks Month Months
    Year Years Night Morning Evening Afternoon Today Tonight Tomorrow Yesterday Weekend Hour Hours Time
    Times Text Email Phone Letter Message Messages Report Reported Case Statement Evidence Trial Hearing
    Sentence Bail Charge Charged Investigation Order Orders Injunction Non Molestation Restraining
    Protection Notice Help Advice Information Info Nothing Everything Which Whoever Whatever However
    Whenever Wherever Therefore Otherwise Meanwhile Anyway
    """
)

# First names that are also everyday words or months: taken as names only with a cue or a surname.
_AMBIGUOUS_NAMES = _word_set(
    """
    will may june april august hope faith joy grace rose ruby amber dawn summer mark bill jack pat sue
    bob frank dean jay jo jan kim lee max rob rick jude ivy holly poppy daisy lily jade glen carol eve
    ray mason austin logan jordan harley aston chelsea georgia victoria sandra ali sara nick harry pam dan
    mel jean sally terry
    """
)


# The first word of every naming cue: an answer without any of them (most answers) skips the pattern,
# whose case-insensitive alternation is slow to scan. Each alternative starts with one of these as a
# whole word, so the check never hides a match.
_NAMING_FIRST_WORDS = _word_set(
    """
    called named name names known goes signed spoke speak talked talk ask asked thanks thank supported
    helped attacked assaulted abused raped hit stalked harassed threatened contacted visited seen let
    groomed followed interviewed represented
    """
)


@lru_cache(maxsize=1)
def _first_names() -> frozenset[str]:
    """The shipped first-names list, lower case, read once per process."""
    lines = FIRST_NAMES_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(s.strip().lower() for s in lines if s.strip() and not s.startswith("#"))


def _is_sentence_start(text: str, pos: int) -> bool:
    """True when ``pos`` begins a sentence (ignoring spaces and opening quotes/brackets)."""
    i = pos - 1
    while i >= 0 and text[i] in " \t\"'(“‘-":
        i -= 1
    return i < 0 or text[i] in ".!?\n:;…"


def _name_candidate(word: str, *, strong: bool) -> bool:
    """Whether a token after a cue is a name: any capitalised non-stop word, or a known lower-case one."""
    lw = word.lower()
    if lw in _NOT_NAMES:
        return False
    if word[0].isupper():
        return True
    # Lower-case names ("my ex dave") are common on phones but need a strong cue and the names list,
    # and never an everyday word ("my son will").
    return strong and lw in _first_names() and lw not in _AMBIGUOUS_NAMES


def _find_names(text: str) -> list[tuple[int, int]]:
    """Spans of person names, found by titles, cues, the first-names list and verb cues."""
    names = _first_names()
    found: list[tuple[int, int]] = []

    for m in _TITLE_NAME.finditer(text):
        # The title goes with the name: "Mrs [NAME]" would still tell the reader the person's sex.
        start, end = m.start(), m.end("v")
        # A title followed by two words: keep the second only if it is not an ordinary word.
        parts = m.group("v").split()
        if len(parts) == 2 and parts[1].lower() in _NOT_NAMES:
            end = m.start("v") + len(parts[0])
        if parts[0].lower() not in _NOT_NAMES:
            found.append((start, end))

    # Lower-cased words of the answer, for the cheap checks below.
    words = set(_LOWER_SPLIT.split(text.lower()))
    cues = (_REL_CUE, _NAMING_CUE) if not words.isdisjoint(_NAMING_FIRST_WORDS) else (_REL_CUE,)
    for rx in cues:
        for m in rx.finditer(text):
            if _name_candidate(m.group("v"), strong=True):
                s, e = m.span("v")
                if text.endswith("'s", s, e):
                    e -= 2
                found.append((s, e))

    for m in _CAP_TOKEN.finditer(text):
        word = m.group()
        lw = word.lower()
        # "St Mary's", "St John Ambulance": a saint's name is a place or an organisation.
        if lw in _NOT_NAMES or text.endswith(("St ", "St. "), 0, m.start()):
            continue
        if lw in names:
            if lw not in _AMBIGUOUS_NAMES:
                found.append(m.span())
                continue
            # "Will Thompson" is a name; "Will the police call" is not.
            nxt = _SURNAME_AFTER.match(text, m.end())
            if nxt and nxt.group("v").lower() not in _NOT_NAMES:
                found.append(m.span())
                continue
        # "Zbigniew's wife", or a mid-sentence capitalised word doing something ("... and Marek said").
        possessive = _POSSESSIVE_REL.match(text, m.end()) is not None
        acting = not _is_sentence_start(text, m.start()) and _VERB_AFTER.match(text, m.end()) is not None
        if possessive or acting:
            found.append(m.span())

    # Lower-case names typed on phones ("dave keeps texting me"): only listed names that are not also
    # everyday words. A set intersection first, because almost no answer has one.
    lower_hits = names.intersection(words) - _AMBIGUOUS_NAMES
    if lower_hits:
        for m in _LOWER_WORD.finditer(text):
            if m.group() in lower_hits:
                found.append(m.span())

    if not found:
        return []
    # "Ellie and Mason": a capitalised word joined to a found name by "and"/"&" is a name too, which
    # catches ambiguous and unlisted names that have no cue of their own.
    starts = {s for s, _ in found}
    ends = {e for _, e in found}
    for m in _CAP_TOKEN.finditer(text):
        if m.start() in starts or m.group().lower() in _NOT_NAMES:
            continue
        before = _AND_BEFORE.search(text, max(0, m.start() - 8), m.start())
        after = _AND_AFTER.match(text, m.end())
        if (before and before.start() in ends) or (after and after.end() in starts):
            found.append(m.span())
    # Extend each name with following capitalised surname tokens ("Sarah Jones", "Tom Smith-Wright").
    extended: list[tuple[int, int]] = []
    for s, e in found:
        for _ in range(2):
            nxt = _SURNAME_AFTER.match(text, e)
            if not nxt or nxt.group("v").lower() in _NOT_NAMES:
                break
            e = nxt.end("v")
        extended.append((s, e))
    extended.sort()
    merged: list[tuple[int, int]] = [extended[0]]
    for s, e in extended[1:]:
        ps, pe = merged[-1]
        if s <= pe + 1 and text[pe:s].strip() == "":
            merged[-1] = (ps, max(pe, e))
        else:
            merged.append((s, e))
    return merged


# --------------------------------------------------------------------------------------------------
# Detection
# --------------------------------------------------------------------------------------------------


_DIGIT = re.compile(r"\d")
# Cheap pre-check (a superset of what _URL can match): a literal-led search is ten times faster than
# the full pattern, which almost every answer fails.
_URL_HINT = re.compile(rf"www\.|\.{_TLD}\b", re.IGNORECASE)
_NON_DIGIT = re.compile(r"\D")


def _phone_spans(text: str) -> Iterable[tuple[int, int]]:
    """UK phone numbers, with the digit count checked (10 or 11 national digits)."""
    pos = 0
    while (m := _PHONE.search(text, pos)) is not None:
        raw = m.group()
        start = m.start()
        found_end = None
        # The pattern is greedy across spaces, so two numbers in a row ("07700 900123 07700 900456") or a
        # number followed by a count ("... 12 times") come as one candidate: trailing groups are dropped
        # until the count is right, and the scan resumes after the number kept.
        while raw:
            digits = _NON_DIGIT.sub("", raw)
            if digits.startswith("0044"):
                digits = "0" + digits[4:]
            elif digits.startswith("44"):
                digits = "0" + digits[2:]
            if digits.startswith("00"):  # "+44 (0)1926 ..." keeps the trunk 0 after the country code
                digits = digits[1:]
            if len(digits) in (10, 11):
                found_end = start + len(raw.rstrip(" -"))
                break
            if len(digits) < 10:
                break
            cut = max(raw.rfind(" "), raw.rfind("-"))
            if cut <= 0:
                break
            raw = raw[:cut].rstrip(" -)")
        if found_end is not None:
            yield (start, found_end)
            pos = found_end
        else:
            pos = start + 1


def _raw_spans(text: str, types: frozenset[str]) -> list[Span]:
    """Every candidate span from every detector, in priority order (may overlap)."""
    spans: list[Span] = []
    # Most answers hold no digit at all, and every numeric detector needs one: skip them all.
    has_digit = _DIGIT.search(text) is not None
    if "EMAIL" in types:
        if "@" in text or "(at)" in text or "[at]" in text:
            spans.extend(("EMAIL", *m.span()) for m in _EMAIL.finditer(text))
        if " dot " in text.lower():
            spans.extend(("EMAIL", *m.span()) for m in _EMAIL_SPOKEN.finditer(text))
    if "URL" in types and ("/" in text or _URL_HINT.search(text) is not None):
        for m in _URL.finditer(text):
            s, e = m.span()
            # Sentence punctuation after a URL is not part of it.
            while e > s and text[e - 1] in ".,;:!?)]'\"":
                e -= 1
            spans.append(("URL", s, e))
    if "URL" in types and "@" in text:
        spans.extend(("URL", *m.span()) for m in _HANDLE.finditer(text))
    if has_digit:
        if "CRIME_REF" in types:
            spans.extend(("CRIME_REF", *m.span("v")) for m in _CRIME_REF_CONTEXT.finditer(text))
            spans.extend(("CRIME_REF", *m.span()) for m in _CRIME_REF_SHAPE.finditer(text))
        if "DOB" in types:
            spans.extend(("DOB", *m.span("v")) for m in _DOB.finditer(text))
        if "NI_NUMBER" in types:
            spans.extend(("NI_NUMBER", *m.span()) for m in _NI.finditer(text))
            spans.extend(("NI_NUMBER", *m.span("v")) for m in _NI_CONTEXT.finditer(text))
        if "PHONE" in types:
            spans.extend(("PHONE", s, e) for s, e in _phone_spans(text))
        if "POSTCODE" in types:
            spans.extend(("POSTCODE", *m.span()) for m in _POSTCODE.finditer(text))
        if "VEHICLE_REG" in types:
            spans.extend(("VEHICLE_REG", *m.span()) for m in _REG_BARE.finditer(text))
            spans.extend(("VEHICLE_REG", *m.span("v")) for m in _REG_CONTEXT.finditer(text))
        if "ADDRESS" in types:
            spans.extend(("ADDRESS", *m.span()) for m in _ADDRESS.finditer(text))
    if "ADDRESS" in types:
        spans.extend(("ADDRESS", *m.span()) for m in _ADDRESS_NAMED.finditer(text))
    if "NAME" in types:
        spans.extend(("NAME", s, e) for s, e in _find_names(text))
    return spans


def _resolve(spans: list[Span]) -> list[Span]:
    """Keep non-overlapping spans: higher-priority types first, then longer spans."""
    rank = {t: i for i, t in enumerate(ENTITY_TYPES)}
    ordered = sorted(spans, key=lambda s: (rank[s[0]], -(s[2] - s[1]), s[1]))
    kept: list[Span] = []
    for span in ordered:
        _, s, e = span
        if e <= s:
            continue
        if all(e <= ks or s >= ke for _, ks, ke in kept):
            kept.append(span)
    kept.sort(key=lambda s: s[1])
    return kept


def find_entities(text: str, entity_types: Iterable[str] | None = None) -> list[Span]:
    """Return the personal identifiers in ``text`` as sorted, non-overlapping ``(type, start, end)``.

    ``entity_types`` limits detection to some of :data:`ENTITY_TYPES` (default: all).
    """
    types = frozenset(ENTITY_TYPES if entity_types is None else entity_types)
    unknown = types - set(ENTITY_TYPES)
    if unknown:
        raise ValueError(f"unknown entity types: {sorted(unknown)}")
    return _resolve(_raw_spans(text, types))


def redact(text: str, entity_types: Iterable[str] | None = None, placeholder: str = "[{}]") -> str:
    """Return ``text`` with each identifier replaced by its placeholder, e.g. ``[NAME]``."""
    entities = find_entities(text, entity_types)
    if not entities:
        return text
    out: list[str] = []
    pos = 0
    for etype, s, e in entities:
        out.append(text[pos:s])
        out.append(placeholder.format(etype))
        pos = e
    out.append(text[pos:])
    return "".join(out)


# --------------------------------------------------------------------------------------------------
# Estimator
# --------------------------------------------------------------------------------------------------


def _as_texts(X: Any) -> list[str]:
    """Validate a 1-D sequence of strings (a list, tuple, Series or 1-D array)."""
    if isinstance(X, str):
        raise ValueError("Redactor expects a sequence of strings, not a single string.")
    shape = getattr(X, "shape", None)
    if shape is not None and len(shape) != 1:
        raise ValueError(f"Redactor expects 1-D input of strings, got shape {shape}.")
    texts = list(X)
    for t in texts:
        if not isinstance(t, str):
            raise ValueError(f"Redactor expects strings, got {type(t).__name__}.")
    return texts


class Redactor(TransformerMixin, BaseEstimator):
    """Replace personal identifiers in free text with typed placeholders.

    Stateless: ``fit`` learns nothing and ``transform`` works on an unfitted instance too, so it can sit
    first in a ``Pipeline`` in front of vectorisers.

    Parameters
    ----------
    entity_types : sequence of str or None
        Which of :data:`ENTITY_TYPES` to redact; ``None`` means all.
    placeholder : str
        Format string for the replacement, filled with the entity type.
    """

    def __init__(self, entity_types: Sequence[str] | None = None, placeholder: str = "[{}]") -> None:
        self.entity_types = entity_types
        self.placeholder = placeholder

    def fit(self, X: Any, y: Any = None) -> Redactor:
        """Validate the input and parameters; nothing is learned. Returns ``self``."""
        _as_texts(X)
        types = tuple(ENTITY_TYPES if self.entity_types is None else self.entity_types)
        unknown = set(types) - set(ENTITY_TYPES)
        if unknown:
            raise ValueError(f"unknown entity types: {sorted(unknown)}")
        self.entity_types_ = types
        return self

    def transform(self, X: Any) -> list[str]:
        """Return the redacted texts, in order."""
        texts = _as_texts(X)
        types = frozenset(ENTITY_TYPES if self.entity_types is None else self.entity_types)
        placeholder = self.placeholder
        return [redact(t, types, placeholder) for t in texts]

    def __sklearn_tags__(self) -> Any:
        """Declare 1-D string input and no fitting requirement (see module docstring)."""
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        tags.requires_fit = False
        tags.transformer_tags.preserves_dtype = []
        return tags


# --------------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------------


def load_labelled(path: Path) -> list[dict[str, Any]]:
    """Read a labelled JSONL file of ``{"text": ..., "entities": [[type, start, end], ...]}``."""
    rows = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                rows.append(json.loads(line))
    return rows


def evaluate(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Recall and precision per entity type on labelled rows.

    A gold entity counts as recalled when every character of it is covered by predicted spans of the
    same type (for redaction, partial cover leaks). ``covered_any_type`` relaxes the type, since a
    name redacted as ``[ADDRESS]`` is still hidden. A predicted span is correct when it overlaps a
    gold span of the same type.
    """
    stats = {t: {"gold": 0, "recalled": 0, "covered": 0, "predicted": 0, "correct": 0} for t in ENTITY_TYPES}
    misses: list[dict[str, Any]] = []
    false_positives: list[dict[str, Any]] = []
    for row in rows:
        text = row["text"]
        gold = [tuple(g) for g in row["entities"]]
        pred = find_entities(text)
        for gtype, gs, ge in gold:
            st = stats[gtype]
            st["gold"] += 1
            same = [(s, e) for t, s, e in pred if t == gtype]
            if all(any(s <= i < e for s, e in same) for i in range(gs, ge)):
                st["recalled"] += 1
            else:
                misses.append({"type": gtype, "span": text[gs:ge], "text": text})
            if all(any(s <= i < e for _, s, e in pred) for i in range(gs, ge)):
                st["covered"] += 1
        for ptype, ps, pe in pred:
            st = stats[ptype]
            st["predicted"] += 1
            if any(gt == ptype and ps < ge and gs < pe for gt, gs, ge in gold):
                st["correct"] += 1
            else:
                false_positives.append({"type": ptype, "span": text[ps:pe], "text": text})
    per_type: dict[str, dict[str, float | int]] = {}
    for t, st in stats.items():
        per_type[t] = {
            "support": st["gold"],
            "recall": st["recalled"] / st["gold"] if st["gold"] else float("nan"),
            "covered_any_type": st["covered"] / st["gold"] if st["gold"] else float("nan"),
            "precision": st["correct"] / st["predicted"] if st["predicted"] else float("nan"),
            "predicted": st["predicted"],
        }
    tot_gold = sum(st["gold"] for st in stats.values())
    tot_pred = sum(st["predicted"] for st in stats.values())
    return {
        "n_texts": len(rows),
        "per_type": per_type,
        "recall": sum(st["recalled"] for st in stats.values()) / tot_gold if tot_gold else float("nan"),
        "precision": sum(st["correct"] for st in stats.values()) / tot_pred if tot_pred else float("nan"),
        "misses": misses,
        "false_positives": false_positives,
    }


def evaluation_report(path: Path | None = None) -> dict[str, Any]:
    """Evaluate on the held-out set ``analysis/data/redaction_eval.jsonl`` (never used for tuning).

    Returns ``n_texts``, overall ``recall`` and ``precision``, ``per_type`` (support, recall,
    covered_any_type, precision, predicted) and the lists of ``misses`` and ``false_positives``.
    """
    return evaluate(load_labelled(path or EVAL_FILE))
