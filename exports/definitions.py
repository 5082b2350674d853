"""Metric vocabulary for the exports: names, labels and the definitions sheet text.

The definitions are quoted from the project's contract, ``domain/metrics.md``; they live here once so
that every workbook's definitions sheet and every label says the same thing. When metrics.md changes,
change this file with it.
"""

from __future__ import annotations

from surveys import fields

#: Outcome areas of the default set, in the order metrics.md lists them, with their labels.
AREAS: dict[str, str] = {
    "cope": "Better able to cope with everyday life",
    "safety": "Feel safer",
    "health": "Improved health and wellbeing",
    "informed": "Better informed and empowered to act",
    "cjs": "Better able to engage with the criminal justice system",
    "recover": "Overall recovery from the impact of the crime",
}

#: Referral statuses of ``referrals_by_status``.
STATUSES: tuple[str, ...] = fields.STATUSES

#: The 12 rights of the Victims' Code (2020).
RIGHTS: dict[str, str] = {
    "1": "Understand and be understood",
    "2": "Crime recorded without unjustified delay",
    "3": "Information when reporting",
    "4": "Referral to support services",
    "5": "Information about compensation",
    "6": "Information about investigation and prosecution",
    "7": "Make a Victim Personal Statement",
    "8": "Information about the trial and your role",
    "9": "Information about the outcome and appeals",
    "10": "Expenses and property returned",
    "11": "Information about the offender after conviction",
    "12": "Complain when rights are not met",
}

#: Bands of ``satisfied_pct_by_rights``.
RIGHTS_BANDS: tuple[str, ...] = ("0-3", "4-6", "7-9", "10-12")

#: Attributes any metric can be split by (metrics.md, Breakdowns), in a stable column order.
BREAKDOWN_KEYS: tuple[str, ...] = (
    "provider",
    "service",
    "crime_group",
    "age_band",
    "sex",
    "ethnicity",
    "disability",
    "source",
    "domestic_abuse",
    "hate_crime",
    "repeat_victim",
)

BREAKDOWN_LABELS: dict[str, str] = {
    "provider": "Provider",
    "service": "Service",
    "crime_group": "Crime group",
    "age_band": "Age band",
    "sex": "Sex",
    "ethnicity": "Ethnicity",
    "disability": "Disability",
    "source": "Referral source",
    "domestic_abuse": "Domestic abuse",
    "hate_crime": "Hate crime",
    "repeat_victim": "Repeat victim",
}

#: Values of a breakdown attribute that mean "not recorded" (the data-quality sheet counts them).
UNKNOWN_VALUES: frozenset[str] = frozenset(
    {"unknown", "not_known", "not_recorded", "not_stated", "prefer_not_to_say", "", "none", "null"}
)

#: (metric name, definition) for the definitions sheet, quoted from metrics.md. ``[a]`` is an outcome
#: area, ``r`` a right 1..12, ``B`` a band of rights received.
METRIC_DEFINITIONS: list[tuple[str, str]] = [
    (
        "referral",
        "One referral of one person to one provider (one row of referrals), identified by provider and "
        "referral_id; its status is its current status.",
    ),
    (
        "victim",
        "A distinct person across all providers (the keyed hash of the referrer's person identifier). "
        "Counts of victims are distinct persons, never rows.",
    ),
    (
        "episode",
        "A referral whose support_start is set (whatever its status). Outcome figures count episodes.",
    ),
    (
        "period",
        "UK financial year, April to March: 2025-26 the whole year, 2025-26-H1 / H2, 2025-26-Q1 .. Q4, or"
        " an inclusive date range. Periods include both end days; dates are calendar dates in "
        "Europe/London.",
    ),
    (
        "referrals_received",
        "Referrals with referral_date in the period.",
    ),
    (
        "victims_referred",
        "Distinct victims among referrals_received.",
    ),
    (
        "referrals_by_status",
        "referrals_received split by status: referred, contacted, declined, uncontactable, out_of_scope, "
        "supported, closed.",
    ),
    (
        "victims_supported",
        "Distinct victims with an episode open at any time in the period: support_start <= period_end and"
        " (support_end empty or support_end >= period_start).",
    ),
    (
        "episodes_closed",
        "Episodes with support_end in the period.",
    ),
    (
        "exit_responses",
        "Episodes in episodes_closed with a complete exit response (its latest complete response of wave "
        "exit; a partial response never counts).",
    ),
    (
        "exit_response_rate",
        "exit_responses / episodes_closed.",
    ),
    (
        "helped_n[a]",
        "Episodes whose exit helped_a is a_lot, a_little or no.",
    ),
    (
        "helped[a]",
        "Episodes whose exit helped_a is a_lot or a_little.",
    ),
    (
        "helped_pct[a]",
        "helped[a] / helped_n[a].",
    ),
    (
        "paired_n[a]",
        "Episodes with both a baseline and an exit state answer for a (state answers 1..5).",
    ),
    (
        "improved[a]",
        "Paired episodes with exit - baseline >= +1.",
    ),
    (
        "deteriorated[a]",
        "Paired episodes with exit - baseline <= -1.",
    ),
    (
        "no_change[a]",
        "The rest of paired_n[a]: a change of exactly 0.",
    ),
    (
        "improved_pct[a]",
        "improved[a] / paired_n[a].",
    ),
    (
        "mean_change[a]",
        "Mean of exit - baseline over paired episodes (null when nothing is paired).",
    ),
    (
        "helped_cope_and_recover",
        "Episodes in exit_responses whose helped_cope or helped_recover is a_lot or a_little (the MoJ's "
        "'cope and recover'; helped with either counts).",
    ),
    (
        "helped_cope_and_recover_pct",
        "helped_cope_and_recover divided by the episodes in exit_responses that answered at least one of "
        "the two (a_lot, a_little or no).",
    ),
    (
        "answered",
        "Episodes in exit_responses with a satisfaction answer on the 7-point scale.",
    ),
    (
        "satisfied",
        "Those answering completely, very or fairly satisfied.",
    ),
    (
        "satisfied_pct",
        "satisfied / answered.",
    ),
    (
        "rights_received.r",
        "Episodes that listed Victims' Code right r (1..12), over the episodes that answered the rights "
        "question (a list, or none; empty means not asked).",
    ),
    (
        "satisfied_pct_by_rights.B",
        "satisfied_pct among the episodes whose number of distinct rights received is in band B (0-3, "
        "4-6, 7-9, 10-12); not asked: in no band.",
    ),
    (
        "paired_n.swemwbs",
        "Episodes in exit_responses with a SWEMWBS metric score in both their baseline and exit response "
        "(a score exists only when all 7 items are 1..5; no imputation; converted by the published "
        "table).",
    ),
    (
        "mean_baseline.swemwbs",
        "Mean baseline SWEMWBS metric score over paired episodes (null when none).",
    ),
    (
        "mean_exit.swemwbs",
        "Mean exit SWEMWBS metric score over paired episodes (null when none).",
    ),
    (
        "mean_change.swemwbs",
        "Mean change in SWEMWBS metric points over paired episodes (null when none).",
    ),
    (
        "reliable_improvement.swemwbs",
        "Paired episodes whose SWEMWBS score rose by 3.00 or more.",
    ),
    (
        "reliable_deterioration.swemwbs",
        "Paired episodes whose SWEMWBS score fell by 3.00 or more.",
    ),
    (
        "paired_n.phq_gad",
        "Episodes in exit_responses with a complete PHQ-9 (9 items) and GAD-7 (7 items) in both their "
        "baseline and exit response (each item answered 0..3; no imputation).",
    ),
    (
        "caseness_baseline.phq_gad",
        "Paired episodes that were a case at baseline (PHQ-9 >= 10 or GAD-7 >= 8), over paired_n.phq_gad.",
    ),
    (
        "caseness_exit.phq_gad",
        "Paired episodes that were a case at exit (PHQ-9 >= 10 or GAD-7 >= 8), over paired_n.phq_gad.",
    ),
    (
        "reliable_improvement.phq_gad",
        "Paired episodes whose PHQ-9 fell by 6 or more or GAD-7 by 4 or more, and neither rose by as "
        "much (as NHS Talking Therapies counts it), over paired_n.phq_gad.",
    ),
    (
        "reliable_deterioration.phq_gad",
        "Paired episodes whose PHQ-9 rose by 6 or more or GAD-7 by 4 or more, over paired_n.phq_gad.",
    ),
    (
        "recovery.phq_gad",
        "Paired episodes that were a case at baseline and below both thresholds at exit, over the "
        "episodes that were a case at baseline.",
    ),
    (
        "reliable_recovery.phq_gad",
        "Paired episodes with both recovery and reliable improvement, over the episodes that were a case "
        "at baseline.",
    ),
    (
        "95% interval",
        "Every rate is reported with its numerator, denominator, percentage and a 95% Wilson score "
        "interval (z = 1.959964, no continuity correction); percentage and interval are blank on a zero "
        "denominator.",
    ),
    (
        "breakdowns",
        "A victim counts once in every group where they have a referral, so groups can add up to more "
        "than the whole. A breakdown has one group for every value present among all stored referrals.",
    ),
    (
        "[c]",
        "Suppressed to protect confidentiality (every output below whole-area totals): a count of 1 to 4;"
        " a percentage, mean or interval whose denominator is under 10; and, where a row or column of a "
        "breakdown has exactly one [c] cell and a shown total, the next smallest cell in it (secondary "
        "suppression).",
    ),
]


def metric_label(name: str) -> str:
    """A short human label for a metric name such as ``helped_pct.cope`` (falls back to the name)."""
    base, _, suffix = name.partition(".")
    labels = {
        "referrals_received": "Referrals received",
        "victims_referred": "Victims referred",
        "victims_supported": "Victims supported",
        "episodes_closed": "Episodes closed",
        "exit_responses": "Exit responses",
        "exit_response_rate": "Exit response rate",
        "helped_cope_and_recover": "Helped to cope or recover",
        "helped_cope_and_recover_pct": "Helped to cope or recover",
        "answered": "Answered satisfaction",
        "satisfied": "Satisfied",
        "satisfied_pct": "Satisfied",
        "helped_n": "Answered helped",
        "helped": "Helped",
        "helped_pct": "Helped",
        "paired_n": "Paired",
        "improved": "Improved",
        "deteriorated": "Deteriorated",
        "no_change": "No change",
        "improved_pct": "Improved",
        "mean_change": "Mean change",
        "mean_baseline": "Mean baseline",
        "mean_exit": "Mean exit",
        "reliable_improvement": "Reliable improvement",
        "reliable_deterioration": "Reliable deterioration",
        "caseness_baseline": "Caseness at baseline",
        "caseness_exit": "Caseness at exit",
        "recovery": "Recovery",
        "reliable_recovery": "Reliable recovery",
        "referrals_by_status": "Referrals",
        "rights_received": "Right received",
        "satisfied_pct_by_rights": "Satisfied, rights",
    }
    label = labels.get(base, base.replace("_", " ").capitalize())
    return f"{label} ({suffix})" if suffix else label


SERVICE_LABELS: dict[str, str] = {
    "general": "General victim service",
    "sav": "Sexual abuse and violence",
    "cse": "Child sexual exploitation",
    "da": "Domestic abuse",
    "hate": "Hate crime",
    "other": "Other",
}


def value_label(key: str, value: object) -> str:
    """How a breakdown value is shown in a row label (services get their names; others as recorded;
    a missing value, which the engine returns as null, reads "Not recorded")."""
    if value is None:
        return "Not recorded"
    text = str(value)
    if key == "service":
        return SERVICE_LABELS.get(text, text)
    return text
