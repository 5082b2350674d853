"""Contact rules (pure) and neutral message templates: the safe-contact scenarios of issue 3."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from surveys.contact_rules import (
    Action,
    ContactDecision,
    ContactLedger,
    ContactPolicy,
    ReferralContact,
    SentInvitation,
    WaveItem,
    WaveState,
    contact_permission,
    decide,
    is_quiet,
    next_allowed_send_time,
    wave_statuses,
)
from surveys.messages import (
    CHANNELS,
    DEFAULT_FORBIDDEN,
    KINDS,
    LANGS,
    find_forbidden,
    is_neutral,
    reminder_kind,
    render_message,
    sender_name,
)

LONDON = ZoneInfo("Europe/London")
POLICY = ContactPolicy()


def at(day: date, hour: int = 10, minute: int = 0) -> datetime:
    """A London wall-clock instant."""
    return datetime.combine(day, time(hour, minute), tzinfo=LONDON)


def ref(provider: str, start: date | None, end: date | None = None, **changes: object) -> ReferralContact:
    base = ReferralContact(
        provider=provider,
        referral_id=f"{provider}-1",
        service="general",
        referral_date=start or date(2026, 1, 5),
        support_start=start,
        support_end=end,
        safe_to_contact=True,
        consent_to_survey=True,
        preferred_channel="sms",
        has_email=True,
        has_phone=True,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def item(provider: str, wave: str) -> WaveItem:
    return WaveItem(provider, f"{provider}-1", wave)


def send(ledger: ContactLedger, decision: ContactDecision, now: datetime, inv_id: str = "") -> ContactLedger:
    """Apply a SEND decision to the ledger, as the scheduler would."""
    if decision.action is Action.SEND_INVITATION:
        sent = SentInvitation(
            inv_id or f"inv-{len(ledger.invitations) + 1}", now, decision.channel or "", decision.items
        )
        return dataclasses.replace(ledger, invitations=(*ledger.invitations, sent))
    if decision.action is Action.SEND_REMINDER:
        invitations = tuple(
            dataclasses.replace(i, reminders_sent_at=(*i.reminders_sent_at, now))
            if i.invitation_id == decision.invitation_id
            else i
            for i in ledger.invitations
        )
        return dataclasses.replace(ledger, invitations=invitations)
    return ledger


def simulate(
    referrals: list[ReferralContact],
    start: date,
    days: int,
    ledger: ContactLedger | None = None,
    hours: tuple[int, ...] = (10,),
    complete_after_days: int | None = None,
) -> tuple[ContactLedger, list[tuple[datetime, ContactDecision]]]:
    """Run the scheduler at the given London hours every day; return the ledger and what was sent."""
    ledger = ledger or ContactLedger()
    sent: list[tuple[datetime, ContactDecision]] = []
    for n in range(days):
        for hour in hours:
            now = at(start + timedelta(days=n), hour)
            if complete_after_days is not None:
                done = {
                    i
                    for inv in ledger.invitations
                    if now - inv.sent_at >= timedelta(days=complete_after_days)
                    for i in inv.items
                }
                ledger = dataclasses.replace(ledger, completed=ledger.completed | done)
            decision = decide(referrals, ledger, now)
            if decision.action in (Action.SEND_INVITATION, Action.SEND_REMINDER):
                ledger = send(ledger, decision, now)
                sent.append((now, decision))
    return ledger, sent


# --- waves ---------------------------------------------------------------------------------------------


def test_baseline_when_support_starts() -> None:
    start = date(2026, 5, 4)
    assert decide([ref("VS", start)], ContactLedger(), at(start - timedelta(days=1))).action is Action.WAIT
    decision = decide([ref("VS", start)], ContactLedger(), at(start))
    assert decision.action is Action.SEND_INVITATION
    assert decision.items == (item("VS", "baseline"),)
    assert decision.channel == "sms" and decision.message_kind == "invitation"
    assert decision.expires_at == at(start) + timedelta(days=28)


def test_no_waves_without_support() -> None:
    decision = decide([ref("VS", None)], ContactLedger(), at(date(2026, 5, 4)))
    assert decision.action is Action.NONE and decision.waves == ()


def test_exit_when_support_ends_and_follow_up_after_90_days() -> None:
    start, end = date(2026, 1, 5), date(2026, 4, 1)
    referral = ref("VS", start, end)
    ledger = ContactLedger(
        invitations=(SentInvitation("i1", at(start), "sms", (item("VS", "baseline"),)),),
        completed=frozenset({item("VS", "baseline")}),
    )
    decision = decide([referral], ledger, at(end))
    assert decision.action is Action.SEND_INVITATION and decision.items == (item("VS", "exit"),)
    ledger = send(ledger, decision, at(end))
    waiting = decide([referral], ledger, at(end + timedelta(days=40)))
    assert waiting.action is Action.WAIT
    assert waiting.next_check_at == at(end + timedelta(days=90), 8)
    follow = decide([referral], ledger, at(end + timedelta(days=90)))
    assert follow.action is Action.SEND_INVITATION and follow.items == (item("VS", "follow_up"),)


def test_follow_up_days_per_provider_and_service() -> None:
    policy = ContactPolicy(
        waves_by_provider={"ROSA": {"follow_up": 180}}, waves_by_service={"da": {"follow_up": 60}}
    )
    end = date(2026, 3, 1)
    referrals = [
        ref("ROSA", date(2026, 1, 5), end, service="da"),  # the provider's setting wins over its service's
        ref("REF", date(2026, 1, 5), end, service="da"),
        ref("VS", date(2026, 1, 5), end),
    ]
    due = {
        s.item.provider: s.due_on
        for s in wave_statuses(referrals, ContactLedger(), at(end), policy)
        if s.item.wave == "follow_up"
    }
    assert due == {
        "ROSA": end + timedelta(days=180),
        "REF": end + timedelta(days=60),
        "VS": end + timedelta(days=90),
    }


def test_waves_switched_off_or_delayed_per_service_and_provider() -> None:
    policy = ContactPolicy(
        waves_by_service={"sav": {"baseline": None, "exit": 7}},
        waves_by_provider={"VS": {"follow_up": None}},
    )
    start, end = date(2026, 1, 5), date(2026, 3, 2)
    sav, vs = ref("ROSA", start, end, service="sav"), ref("VS", start, end)
    due = {
        (s.item.provider, s.item.wave): s.due_on
        for s in wave_statuses([sav, vs], ContactLedger(), at(start), policy)
    }
    assert due == {
        ("ROSA", "exit"): end + timedelta(days=7),
        ("ROSA", "follow_up"): end + timedelta(days=90),
        ("VS", "baseline"): start,
        ("VS", "exit"): end,
    }
    # No baseline for the sexual-violence service: nothing is sent when its support starts.
    assert (
        decide([ref("ROSA", start, service="sav")], ContactLedger(), at(start), policy).action is Action.NONE
    )
    # A baseline delay: due two weeks into support.
    later = ContactPolicy(baseline_days=14)
    assert decide([ref("VS", start)], ContactLedger(), at(start), later).action is Action.WAIT
    sent = decide([ref("VS", start)], ContactLedger(), at(start + timedelta(days=14)), later)
    assert sent.action is Action.SEND_INVITATION and sent.items == (item("VS", "baseline"),)
    assert policy.wave_day_range("follow_up") == (90, 90) and policy.wave_day_range("exit") == (0, 7)
    assert ContactPolicy(follow_up_days=None, waves_by_service={"da": {"follow_up": 120}}).wave_day_range(
        "follow_up"
    ) == (120, 120)
    assert ContactPolicy().contact_retention_days == 90 + 45 + 28
    assert ContactPolicy(waves_by_provider={"X": {"follow_up": 180}}).contact_retention_days == 180 + 45 + 28


def test_wave_configuration_is_checked() -> None:
    with pytest.raises(ValueError, match="unknown wave 'followup'"):
        ContactPolicy(waves_by_service={"sav": {"followup": 10}})
    with pytest.raises(ValueError, match="0 to 730 days"):
        ContactPolicy(waves_by_provider={"VS": {"exit": -1}})
    # A provider's exit delay against a service's follow-up: checked for every combination.
    with pytest.raises(ValueError, match="provider 'VS' with service 'da': follow_up"):
        ContactPolicy(waves_by_service={"da": {"follow_up": 20}}, waves_by_provider={"VS": {"exit": 30}})
    assert ContactPolicy(waves_by_provider={"VS": {"exit": None}}, follow_up_days=1).follow_up_days == 1


def test_baseline_is_void_once_support_has_ended_and_waves_are_missed_after_the_window() -> None:
    start, end = date(2026, 1, 5), date(2026, 1, 20)
    statuses = {s.item.wave: s for s in wave_statuses([ref("VS", start, end)], ContactLedger(), at(end))}
    assert statuses["baseline"].state is WaveState.VOID
    assert statuses["exit"].state is WaveState.DUE
    later = {
        s.item.wave: s.state
        for s in wave_statuses([ref("VS", start, end)], ContactLedger(), at(end + timedelta(days=46)))
    }
    assert later["exit"] is WaveState.MISSED
    assert (
        decide([ref("VS", start, end)], ContactLedger(), at(end + timedelta(days=46))).action is Action.WAIT
    )


# --- combining ----------------------------------------------------------------------------------------


def test_two_providers_in_one_week_get_one_combined_invitation() -> None:
    monday, thursday = date(2026, 6, 1), date(2026, 6, 4)
    referrals = [ref("VS", monday), ref("ROSA", thursday)]
    first = decide(referrals, ContactLedger(), at(monday))
    assert first.action is Action.WAIT
    assert first.next_check_at == at(thursday, 8)
    assert "gathering" in {r.code for r in first.reasons}
    _, sent = simulate(referrals, monday, 60)
    invitations = [d for _, d in sent if d.action is Action.SEND_INVITATION]
    assert len(invitations) == 1
    assert invitations[0].items == (item("ROSA", "baseline"), item("VS", "baseline"))
    assert sent[0][0] == at(thursday)


def test_a_wave_learnt_of_late_waits_for_the_30_day_spacing_then_goes() -> None:
    monday = date(2026, 6, 1)
    ledger, sent = simulate([ref("VS", monday)], monday, 3)
    assert [d.items for _, d in sent] == [(item("VS", "baseline"),)]
    # ROSA's referral arrives afterwards, support starting on the Wednesday.
    referrals = [ref("VS", monday), ref("ROSA", monday + timedelta(days=2))]
    ledger = dataclasses.replace(ledger, completed=frozenset({item("VS", "baseline")}))
    blocked = decide(referrals, ledger, at(monday + timedelta(days=3)))
    assert blocked.action is Action.WAIT and "spacing" in {r.code for r in blocked.reasons}
    assert blocked.next_check_at == sent[0][0] + timedelta(days=30)
    _, more = simulate(referrals, monday + timedelta(days=3), 60, ledger=ledger, complete_after_days=1)
    invitations = [(t, d) for t, d in more if d.action is Action.SEND_INVITATION]
    assert [d.items for _, d in invitations] == [(item("ROSA", "baseline"),)]
    assert invitations[0][0] == sent[0][0] + timedelta(days=30)


def test_at_most_one_invitation_per_30_days_over_a_busy_year() -> None:
    referrals = [
        ref("VS", date(2026, 1, 5), date(2026, 2, 20)),
        dataclasses.replace(ref("ROSA", date(2026, 1, 19), date(2026, 5, 1)), preferred_channel="sms"),
        ref("REF", date(2026, 3, 2), date(2026, 3, 30), service="da"),
    ]
    _, sent = simulate(referrals, date(2026, 1, 1), 365, hours=(7, 10, 22))
    times = [t for t, d in sent if d.action is Action.SEND_INVITATION]
    assert len(times) >= 4
    assert all(b - a >= timedelta(days=30) for a, b in itertools.pairwise(times))
    assert not any(is_quiet(t) for t, _ in sent)
    waves = [i for _, d in sent if d.action is Action.SEND_INVITATION for i in d.items]
    assert len(waves) == len(set(waves))  # each wave invited once


def test_custom_spacing() -> None:
    policy = ContactPolicy(min_days_between_invitations=60, late_window_days=60)
    day = date(2026, 6, 1)
    ledger = ContactLedger(
        invitations=(SentInvitation("i1", at(day), "sms", (item("VS", "baseline"),)),),
        completed=frozenset({item("VS", "baseline")}),
    )
    referrals = [ref("VS", day), ref("ROSA", day + timedelta(days=35))]
    decision = decide(referrals, ledger, at(day + timedelta(days=40)), policy)
    assert decision.action is Action.WAIT and decision.next_check_at == at(day) + timedelta(days=60)


# --- stop, safety, consent, channel -------------------------------------------------------------------


def test_opt_out_via_one_provider_stops_another_providers_wave() -> None:
    day = date(2026, 6, 1)
    referrals = [ref("VS", day - timedelta(days=40), day - timedelta(days=35)), ref("ROSA", day)]
    ledger = ContactLedger(
        invitations=(SentInvitation("i1", at(day - timedelta(days=35)), "sms", (item("VS", "exit"),)),),
        opted_out_at=at(day - timedelta(days=34)),  # replied STOP to VS's exit invitation
    )
    decision = decide(referrals, ledger, at(day))
    assert decision.action is Action.NONE
    assert {r.code for r in decision.reasons} == {"opted_out"}
    _, sent = simulate(referrals, day, 200, ledger=ledger)
    assert sent == []


def test_an_opt_out_stamped_just_after_now_still_counts() -> None:
    day = date(2026, 6, 1)
    ledger = ContactLedger(opted_out_at=at(day, 10, 1))
    assert decide([ref("VS", day)], ledger, at(day, 10)).action is Action.NONE


def test_opt_out_stops_reminders() -> None:
    day = date(2026, 6, 1)
    ledger = ContactLedger(
        invitations=(SentInvitation("i1", at(day), "sms", (item("VS", "baseline"),)),),
        opted_out_at=at(day, 12),
    )
    assert decide([ref("VS", day)], ledger, at(day + timedelta(days=7))).action is Action.NONE


def test_not_safe_to_contact_means_never() -> None:
    day = date(2026, 6, 1)
    unsafe = ref("VS", day, day + timedelta(days=60), safe_to_contact=False)
    decision = decide([unsafe], ContactLedger(), at(day))
    assert decision.action is Action.NONE and "latest_unsafe" in {r.code for r in decision.reasons}
    _, sent = simulate([unsafe], day, 200)
    assert sent == []


def test_a_recent_unsafe_flag_from_another_provider_blocks_everyone() -> None:
    day = date(2026, 6, 1)
    # ROSA (newer) says safe; the DA service, which closed 60 days ago, said not safe.
    referrals = [
        ref("REF", date(2026, 2, 1), day - timedelta(days=60), safe_to_contact=False),
        ref("ROSA", day),
    ]
    decision = decide(referrals, ContactLedger(), at(day))
    assert decision.action is Action.NONE and {r.code for r in decision.reasons} == {"recent_unsafe"}
    # Older than the 90-day look-back, the newest referral's flags win...
    later = [referrals[0], ref("ROSA", day + timedelta(days=40))]
    allowed = decide(later, ContactLedger(), at(day + timedelta(days=40)))
    assert allowed.action is Action.SEND_INVITATION
    # ...but the unsafe referral's own waves are never sent.
    assert allowed.items == (item("ROSA", "baseline"),)
    blocked = {s.item for s in allowed.waves if s.state is WaveState.BLOCKED}
    assert item("REF", "exit") in blocked


def test_an_open_referral_is_always_recent() -> None:
    day = date(2026, 6, 1)
    long_open = ref("REF", date(2025, 1, 6), None, safe_to_contact=False)  # support still going
    permission = contact_permission([long_open, ref("ROSA", day)], ContactLedger(), at(day))
    assert not permission.allowed and "recent_unsafe" in {r.code for r in permission.reasons}


def test_flags_updated_later_make_a_referral_the_most_recent() -> None:
    day = date(2026, 6, 1)
    old = ref("VS", date(2026, 1, 5), safe_to_contact=False, flags_updated_at=at(day, 9))
    new = ref("ROSA", day - timedelta(days=3))
    permission = contact_permission([old, new], ContactLedger(), at(day))
    assert not permission.allowed and "latest_unsafe" in {r.code for r in permission.reasons}


def test_no_consent_blocks() -> None:
    day = date(2026, 6, 1)
    assert decide([ref("VS", day, consent_to_survey=False)], ContactLedger(), at(day)).action is Action.NONE
    referrals = [ref("VS", day - timedelta(days=10), consent_to_survey=False), ref("ROSA", day)]
    decision = decide(referrals, ContactLedger(), at(day))
    assert decision.action is Action.NONE and "recent_no_consent" in {r.code for r in decision.reasons}


def test_only_the_preferred_channel_of_the_most_recent_referral() -> None:
    day = date(2026, 6, 1)
    referrals = [ref("VS", day - timedelta(days=5)), ref("ROSA", day, preferred_channel="email")]
    assert decide(referrals, ContactLedger(), at(day)).channel == "email"
    no_detail = [
        ref("VS", day - timedelta(days=5)),
        ref("ROSA", day, preferred_channel="email", has_email=False),
    ]
    decision = decide(no_detail, ContactLedger(), at(day))
    assert decision.action is Action.NONE and "no_contact_detail" in {r.code for r in decision.reasons}
    none = decide([ref("VS", day, preferred_channel="none")], ContactLedger(), at(day))
    assert none.action is Action.NONE and "no_channel" in {r.code for r in none.reasons}


def test_reminder_follows_a_changed_preferred_channel() -> None:
    day = date(2026, 6, 1)
    ledger = ContactLedger(invitations=(SentInvitation("i1", at(day), "sms", (item("VS", "baseline"),)),))
    changed = ref("VS", day, preferred_channel="email", flags_updated_at=at(day + timedelta(days=2)))
    decision = decide([changed], ledger, at(day + timedelta(days=7)))
    assert decision.action is Action.SEND_REMINDER and decision.channel == "email"
    assert "channel_changed" in {r.code for r in decision.reasons}


def test_snooze() -> None:
    day = date(2026, 6, 1)
    ledger = ContactLedger(snoozed_until=at(day + timedelta(days=10), 14))
    decision = decide([ref("VS", day)], ledger, at(day))
    assert decision.action is Action.WAIT and decision.next_check_at == at(day + timedelta(days=10), 14)
    assert "snoozed" in {r.code for r in decision.reasons}
    assert decide([ref("VS", day)], ledger, at(day + timedelta(days=10), 14)).action is Action.SEND_INVITATION


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        decide([ref("VS", date(2026, 6, 1))], ContactLedger(), datetime(2026, 6, 1, 10))


# --- quiet hours ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("utc", "expected_utc"),
    [
        # Winter (GMT = UTC).
        (datetime(2026, 1, 15, 20, 59), None),
        (datetime(2026, 1, 15, 21, 0), datetime(2026, 1, 16, 8, 0)),
        (datetime(2026, 1, 16, 7, 59), datetime(2026, 1, 16, 8, 0)),
        # Summer (BST = UTC+1): 20:30 UTC is 21:30 in London.
        (datetime(2026, 7, 15, 20, 30), datetime(2026, 7, 16, 7, 0)),
        (datetime(2026, 7, 15, 7, 0), None),
        # Clocks go forward at 01:00 UTC on Sunday 29 March 2026: 08:00 BST is 07:00 UTC.
        (datetime(2026, 3, 28, 21, 30), datetime(2026, 3, 29, 7, 0)),
        (datetime(2026, 3, 29, 6, 30), datetime(2026, 3, 29, 7, 0)),
        (datetime(2026, 3, 29, 7, 30), None),
        # Clocks go back at 01:00 UTC on Sunday 25 October 2026: 08:00 GMT is 08:00 UTC.
        (datetime(2026, 10, 24, 20, 30), datetime(2026, 10, 25, 8, 0)),
        (datetime(2026, 10, 25, 7, 30), datetime(2026, 10, 25, 8, 0)),
        (datetime(2026, 10, 25, 20, 30), None),
    ],
)
def test_quiet_hours_across_clock_changes(utc: datetime, expected_utc: datetime | None) -> None:
    now = utc.replace(tzinfo=UTC)
    expected = now if expected_utc is None else expected_utc.replace(tzinfo=UTC)
    assert is_quiet(now) is (expected_utc is not None)
    assert next_allowed_send_time(now) == expected


def test_a_wave_due_at_night_waits_for_the_morning() -> None:
    day = date(2026, 3, 28)  # the eve of the clocks going forward
    decision = decide([ref("VS", day)], ContactLedger(), at(day, 22))
    assert decision.action is Action.WAIT
    assert decision.next_check_at == datetime(2026, 3, 29, 7, 0, tzinfo=UTC)
    assert "quiet_hours" in {r.code for r in decision.reasons}
    assert decide([ref("VS", day)], ContactLedger(), decision.next_check_at).action is Action.SEND_INVITATION


# --- reminders and expiry -----------------------------------------------------------------------------


def test_two_reminders_at_7_and_14_days_the_last_one_final() -> None:
    day = date(2026, 6, 1)
    _, sent = simulate([ref("VS", day)], day, 40)
    assert [(t - sent[0][0]).days for t, _ in sent] == [0, 7, 14]
    assert [d.message_kind for _, d in sent] == ["invitation", "reminder", "final_reminder"]
    assert [d.reminder_number for _, d in sent] == [None, 1, 2]
    assert sent[1][1].invitation_id == "inv-1"


def test_reminders_stop_on_completion() -> None:
    day = date(2026, 6, 1)
    _, sent = simulate([ref("VS", day)], day, 40, complete_after_days=3)
    assert [d.action for _, d in sent] == [Action.SEND_INVITATION]


def test_reminders_cover_only_waves_left_to_complete() -> None:
    day = date(2026, 6, 1)
    both = (item("ROSA", "baseline"), item("VS", "baseline"))
    ledger = ContactLedger(
        invitations=(SentInvitation("i1", at(day), "sms", both),),
        completed=frozenset({item("VS", "baseline")}),
    )
    decision = decide([ref("VS", day), ref("ROSA", day)], ledger, at(day + timedelta(days=7)))
    assert decision.action is Action.SEND_REMINDER and decision.items == (item("ROSA", "baseline"),)


def test_late_reminders_keep_their_gap() -> None:
    day = date(2026, 6, 1)
    sent_at = at(day)
    # The scheduler was down: the first reminder only went on day 13.
    ledger = ContactLedger(
        invitations=(
            SentInvitation("i1", sent_at, "sms", (item("VS", "baseline"),), (sent_at + timedelta(days=13),)),
        )
    )
    decision = decide([ref("VS", day)], ledger, sent_at + timedelta(days=14))
    assert decision.action is Action.WAIT and decision.next_check_at == sent_at + timedelta(days=20)


def test_invitation_expires_after_28_days_and_is_not_sent_again() -> None:
    day = date(2026, 6, 1)
    ledger, sent = simulate([ref("VS", day)], day, 120)
    assert len([d for _, d in sent if d.action is Action.SEND_INVITATION]) == 1
    statuses = wave_statuses([ref("VS", day)], ledger, at(day + timedelta(days=28), 11))
    assert [s.state for s in statuses] == [WaveState.EXPIRED]
    assert decide([ref("VS", day)], ledger, at(day + timedelta(days=28), 11)).action is Action.NONE


def test_no_reminder_when_snoozed_past_expiry() -> None:
    day = date(2026, 6, 1)
    ledger = ContactLedger(
        invitations=(SentInvitation("i1", at(day), "sms", (item("VS", "baseline"),)),),
        snoozed_until=at(day + timedelta(days=40)),
    )
    decision = decide([ref("VS", day)], ledger, at(day + timedelta(days=7)))
    assert decision.action is Action.NONE
    assert "reminder_lapsed" in {r.code for r in decision.reasons}


def test_policy_is_checked() -> None:
    with pytest.raises(ValueError):
        ContactPolicy(reminder_days=(7, 30))  # after expiry
    with pytest.raises(ValueError):
        ContactPolicy(reminder_days=(14, 7))
    with pytest.raises(ValueError):
        ContactPolicy(late_window_days=10)
    with pytest.raises(ValueError):
        ContactPolicy(gather_days=60)
    assert ContactPolicy(reminder_days=()).reminder_days == ()


# --- messages -----------------------------------------------------------------------------------------


LINK = "https://survey.example.org/s/Yk3p9QzR"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("channel", CHANNELS)
def test_every_template_is_neutral_and_carries_the_link(kind: str, lang: str, channel: str) -> None:
    subject, body = render_message(kind, lang, channel, LINK)
    assert LINK in body and "{" not in body
    assert (subject is None) is (channel == "sms")
    for text in (subject or "", body):
        assert is_neutral(text), find_forbidden(text)
        for word in ("victim", "crime", "police", "abuse", "support service"):
            assert word not in text.lower()
    if channel == "sms" and lang == "en":
        assert len(body) - len(LINK) <= 130  # one 160-character segment with a short link
        assert body.isascii()


def test_sender_name_is_neutral() -> None:
    for lang in LANGS:
        assert is_neutral(sender_name(lang))
    assert sender_name("en") == "Feedback"


def test_a_revealing_link_or_organisation_name_is_refused() -> None:
    with pytest.raises(ValueError, match="not neutral"):
        render_message("invitation", "en", "sms", "https://victim-care.example.org/s/abc")
    with pytest.raises(ValueError, match="not neutral"):
        render_message(
            "invitation", "en", "email", "https://rosa.example.org/s/abc", extra_forbidden=["rosa"]
        )
    with pytest.raises(ValueError):
        render_message("invitation", "en", "sms", "javascript:alert(1)")
    with pytest.raises(ValueError):
        render_message("invitation", "en", "phone", LINK)


def test_forbidden_words_are_configurable() -> None:
    assert not is_neutral("Safe Haven feedback", extra=["safe haven"])
    assert is_neutral("police", forbidden=["victim"])
    assert not is_neutral("Heddlu")
    assert "police" in DEFAULT_FORBIDDEN
    assert not is_neutral("ABUSIVE")


def test_reminder_kind() -> None:
    assert [reminder_kind(n, 2) for n in (1, 2)] == ["reminder", "final_reminder"]
    with pytest.raises(ValueError):
        reminder_kind(3, 2)
