"""Every victim-facing string of the survey pages, in English and Welsh.

Question wording lives in the instruments; this module holds the page furniture around it. The
wording follows the instruments' rules: plain English (reading age 9-11), no organisation or service
type, never the words for the person's experience (`find_forbidden(..., SURVEY_FORBIDDEN)` is checked
by a test). The Welsh is our own translation and waits for a translator's check, like the instruments'.
"""

from __future__ import annotations

from typing import Final

STRINGS: Final[dict[str, tuple[str, str]]] = {
    "service_name": ("Your feedback", "Eich adborth"),
    "skip_link": ("Skip to main content", "Neidio i'r prif gynnwys"),
    "exit_text": ("Exit this page", "Gadael y dudalen hon"),
    "exit_hidden": ("Emergency", "Argyfwng"),
    "exit_activated": ("Loading.", "Yn llwytho."),
    "exit_timed_out": ("Exit this page expired.", "Mae 'Gadael y dudalen hon' wedi dod i ben."),
    "exit_two_more": (
        "Shift, press 2 more times to exit.",
        "Shift, pwyswch 2 waith arall i adael.",
    ),
    "exit_one_more": ("Shift, press 1 more time to exit.", "Shift, pwyswch 1 waith arall i adael."),
    "exit_tip": (
        "To leave this page quickly, select 'Exit this page' or press the Shift key 3 times. "
        "Your answers so far are saved.",
        "I adael y dudalen hon yn gyflym, dewiswch 'Gadael y dudalen hon' neu pwyswch y fysell Shift 3 "
        "gwaith. Mae eich atebion hyd yma wedi'u cadw.",
    ),
    "lang_switch_label": ("Language", "Iaith"),
    "other_lang_name": ("Cymraeg", "English"),
    "other_lang_hint": ("Darllenwch y dudalen hon yn Gymraeg", "Read this page in English"),
    "back": ("Back", "Yn ôl"),
    "continue": ("Continue", "Parhau"),
    "skip": ("Skip this question", "Hepgor y cwestiwn hwn"),
    "error_title_prefix": ("Error: ", "Gwall: "),
    "error_summary_title": ("There is a problem", "Mae problem wedi codi"),
    "question_n_of_m": ("Question {n} of {m}", "Cwestiwn {n} o {m}"),
    "support_n_of_m": (
        "About support {n} of {m} (started {when})",
        "Am gymorth {n} o {m} (dechreuodd {when})",
    ),
    "support_n_of_m_plain": ("About support {n} of {m}", "Am gymorth {n} o {m}"),
    "character_limit": (
        "You can enter up to {n} characters",
        "Gallwch chi roi hyd at {n} nod",
    ),
    "cc_under_one": ("You have %{count} character remaining", "Mae gennych chi %{count} nod ar ôl"),
    "cc_under_other": ("You have %{count} characters remaining", "Mae gennych chi %{count} nod ar ôl"),
    "cc_at": ("You have 0 characters remaining", "Mae gennych chi 0 nod ar ôl"),
    "cc_over_one": ("You have %{count} character too many", "Mae gennych chi %{count} nod yn ormod"),
    "cc_over_other": ("You have %{count} characters too many", "Mae gennych chi %{count} nod yn ormod"),
    # Start page
    "start_title": ("Tell us how you are doing", "Dywedwch wrthon ni sut rydych chi"),
    "start_intro": (
        "We would like to know how you are doing, and how the support you got has helped you.",
        "Hoffen ni wybod sut rydych chi, a sut mae'r cymorth a gawsoch chi wedi eich helpu.",
    ),
    "start_combined": (
        "You got support from more than one service. We ask about each one in the same survey, so "
        "we only ask you once.",
        "Cawsoch chi gymorth gan fwy nag un gwasanaeth. Rydyn ni'n holi am bob un yn yr un arolwg, "
        "felly dim ond unwaith rydyn ni'n gofyn i chi.",
    ),
    "start_time": (
        "It takes about {minutes} minutes. There are {count} short questions, one on each page.",
        "Mae'n cymryd tua {minutes} munud. Mae {count} cwestiwn byr, un ar bob tudalen.",
    ),
    "start_optional": (
        "You do not have to answer. You can skip any question that says you can, and stop at any "
        "time. It will not change the support you can get.",
        "Does dim rhaid i chi ateb. Gallwch chi hepgor unrhyw gwestiwn sy'n dweud y gallwch chi, a "
        "stopio unrhyw bryd. Fydd hyn ddim yn newid y cymorth y gallwch chi ei gael.",
    ),
    "start_saved": (
        "Your answers are saved as you go. You can come back to this link on any device until {date}.",
        "Mae eich atebion yn cael eu cadw wrth i chi fynd. Gallwch chi ddod yn ôl at y ddolen hon ar "
        "unrhyw ddyfais tan {date}.",
    ),
    "start_button": ("Start now", "Dechrau nawr"),
    "help_heading": ("If you need help now", "Os oes angen help arnoch chi nawr"),
    "help_999": (
        "If you are in danger now, call 999.",
        "Os ydych chi mewn perygl nawr, ffoniwch 999.",
    ),
    "help_talk": (
        "If you need to talk to someone, call Samaritans free on 116 123, at any time.",
        "Os oes angen i chi siarad â rhywun, ffoniwch y Samariaid am ddim ar 116 123, unrhyw bryd.",
    ),
    "help_welsh": (
        "Samaritans also have a Welsh language line: 0808 164 0123.",
        "Mae gan y Samariaid linell Gymraeg hefyd: 0808 164 0123.",
    ),
    "contact_heading": ("If you do not want to do this", "Os nad ydych chi eisiau gwneud hyn"),
    "stop_link": ("Stop asking me", "Peidiwch â gofyn i mi eto"),
    "stop_link_hint": (
        "We will not ask you to fill in a survey again.",
        "Fyddwn ni ddim yn gofyn i chi lenwi arolwg eto.",
    ),
    "snooze_link": ("Not now", "Dim nawr"),
    "snooze_link_hint": (
        "We will not ask you again for 3 months.",
        "Fyddwn ni ddim yn gofyn i chi eto am 3 mis.",
    ),
    # Check your answers
    "check_title": ("Check your answers", "Gwiriwch eich atebion"),
    "check_intro": (
        "You can change any answer before you send them.",
        "Gallwch chi newid unrhyw ateb cyn i chi eu hanfon.",
    ),
    "check_change": ("Change", "Newid"),
    "check_skipped": ("Skipped", "Wedi'i hepgor"),
    "check_send_heading": ("Now send your answers", "Nawr anfonwch eich atebion"),
    "check_send_text": (
        "When you send your answers, you cannot change them.",
        "Pan fyddwch chi'n anfon eich atebion, allwch chi ddim eu newid.",
    ),
    "check_send": ("Send your answers", "Anfon eich atebion"),
    "support_suffix": (" (support {n})", " (cymorth {n})"),
    # Confirmation
    "done_title": ("Your answers have been sent", "Mae eich atebion wedi'u hanfon"),
    "done_panel": ("Thank you for your answers", "Diolch am eich atebion"),
    "done_text": (
        "Your answers help make support better for other people. You do not need to do anything else.",
        "Mae eich atebion yn helpu i wella cymorth i bobl eraill. Does dim angen i chi wneud dim byd arall.",
    ),
    "done_contact_heading": ("Future surveys", "Arolygon yn y dyfodol"),
    # Already sent (a different submission after completion)
    "already_title": ("You have already sent your answers", "Rydych chi eisoes wedi anfon eich atebion"),
    "already_text": (
        "We got your answers earlier, so we have not changed them. You do not need to do anything else.",
        "Cawson ni eich atebion yn gynharach, felly dydyn ni ddim wedi'u newid. Does dim angen i chi "
        "wneud dim byd arall.",
    ),
    # Expired and unknown links
    "expired_title": ("This link has expired", "Mae'r ddolen hon wedi dod i ben"),
    "expired_text": (
        "This survey has closed, so you cannot answer it now. You do not need to do anything.",
        "Mae'r arolwg hwn wedi cau, felly allwch chi ddim ei ateb nawr. Does dim angen i chi wneud dim byd.",
    ),
    "notfound_title": ("Page not found", "Heb ddod o hyd i'r dudalen"),
    "notfound_text": (
        "If you typed the web address, check it is correct. If you copied the web address, check you "
        "copied all of it.",
        "Os gwnaethoch chi deipio'r cyfeiriad gwe, gwiriwch ei fod yn gywir. Os gwnaethoch chi gopïo'r "
        "cyfeiriad gwe, gwiriwch eich bod wedi copïo'r cyfan.",
    ),
    "busy_title": ("Sorry, there is a problem", "Mae'n ddrwg gennym, mae problem"),
    "busy_text": ("Try again in a minute.", "Rhowch gynnig arall arni mewn munud."),
    # Stop asking me / not now
    "stop_title": ("Do you want us to stop asking you?", "Ydych chi eisiau i ni roi'r gorau i ofyn i chi?"),
    "stop_text": (
        "If you say yes, we will not ask you to fill in a survey again. It will not change the support "
        "you can get.",
        "Os byddwch chi'n dweud ydw, fyddwn ni ddim yn gofyn i chi lenwi arolwg eto. Fydd hyn ddim yn "
        "newid y cymorth y gallwch chi ei gael.",
    ),
    "stop_confirm": ("Yes, stop asking me", "Ydw, peidiwch â gofyn i mi eto"),
    "stop_done_title": ("We will not ask you again", "Fyddwn ni ddim yn gofyn i chi eto"),
    "stop_done_text": (
        "You will not get any more messages asking you to fill in a survey.",
        "Fyddwch chi ddim yn cael rhagor o negeseuon yn gofyn i chi lenwi arolwg.",
    ),
    "snooze_title": ("Do you want us to ask you later?", "Ydych chi eisiau i ni ofyn i chi yn nes ymlaen?"),
    "snooze_text": (
        "If you say yes, we will not ask you for 3 months.",
        "Os byddwch chi'n dweud ydw, fyddwn ni ddim yn gofyn i chi am 3 mis.",
    ),
    "snooze_confirm": ("Yes, ask me later", "Ydw, gofynnwch i mi yn nes ymlaen"),
    "snooze_done_title": ("We will ask you later", "Byddwn ni'n gofyn i chi yn nes ymlaen"),
    "snooze_done_text": (
        "We will not ask you again before {date}.",
        "Fyddwn ni ddim yn gofyn i chi eto cyn {date}.",
    ),
    "cancel": ("No, go back", "Na, mynd yn ôl"),
    "months": (
        "January February March April May June July August September October November December",
        "Ionawr Chwefror Mawrth Ebrill Mai Mehefin Gorffennaf Awst Medi Hydref Tachwedd Rhagfyr",
    ),
}


def text(key: str, lang: str, **values: object) -> str:
    """The string `key` in `lang` (`en` or `cy`), with `{name}` placeholders filled from `values`."""
    en, cy = STRINGS[key]
    chosen = cy if lang == "cy" else en
    return chosen.format(**values) if values else chosen


def month_year(day: object, lang: str) -> str:
    """`May 2025` / `Mai 2025` for a date (used to tell supports apart without naming them)."""
    month = getattr(day, "month", 1)
    year = getattr(day, "year", 1970)
    return f"{text('months', lang).split()[month - 1]} {year}"


def long_date(day: object, lang: str) -> str:
    """`3 May 2025` / `3 Mai 2025`, the GOV.UK date style."""
    return f"{getattr(day, 'day', 1)} {month_year(day, lang)}"
