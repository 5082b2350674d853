"""Contact rules: when a person may be invited to a survey wave, and how. Pure functions, no database.

The scheduler gathers one person's referrals (across every provider) and their contact ledger, calls
`decide(referrals, ledger, now)`, acts on the returned `ContactDecision`, and records the decision's
reasons in the contact history. Decisions are for one instant: safety can change, so the scheduler
calls `decide` again at `next_check_at`, and again just before a queued message leaves the outbox.

The rules, safest first:

1. Stop means stop. An opt-out (a STOP reply, or "Stop messages" on the survey page) recorded through
   any provider stops every provider's waves. Only an explicit opt-in, which removes the opt-out from
   the ledger, lifts it; a later referral saying `consent_to_survey` does not.
2. Safe contact and consent (`contact_permission`). The flags of the most recent referral win, because
   they are the freshest account of the person's situation; and a `false` on ANY referral active within
   the last `flag_lookback_days` (default 90) blocks too, because one agency may know something (the
   abuser reads the texts) that another has not heard. A referral is "active" on the latest of its
   referral date, its flags' last update and its support end, and every day while support is open.
   A wave is also never sent for a referral whose own flags are false, however old.
3. Channel: only the most recent referral's preferred channel, and only with that referral's contact
   detail (older details may be stale, or known to someone unsafe). `none` means no contact.
4. One invitation per person per `min_days_between_invitations` (default 30), whichever provider.
   Waves of several providers falling due together go in ONE invitation: when a wave is due and another
   wave's due date is already known to fall within `gather_days` (default 7) of it, the invitation
   waits for it. Reminders belong to their invitation and do not count towards the spacing.
5. Waves: baseline when support starts (void once support has ended), exit when support ends, follow-up
   `follow_up_days` (default 90) after exit. Each wave's day count can be changed, or the wave switched
   off, per service and per provider (`waves_by_service`, `waves_by_provider`; a provider's setting wins
   over its service's, which wins over the default). Each wave is invited at most once; a wave still
   uninvited `late_window_days` (default 45) after its due date is missed, not sent.
6. Snooze: nothing is sent before `snoozed_until`.
7. Quiet hours: nothing is sent from 21:00 to 08:00 Europe/London local time, across GMT and BST.
8. An invitation expires after `expiry_days` (default 28). Reminders at `reminder_days` (default +7
   and +14 days, so at most 2) while it is open; they stop on completion, opt-out or expiry.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from functools import cache
from zoneinfo import ZoneInfo

__all__ = [
    "CHANNELS",
    "WAVES",
    "Action",
    "ContactDecision",
    "ContactLedger",
    "ContactPolicy",
    "Permission",
    "Reason",
    "ReferralContact",
    "SentInvitation",
    "WaveItem",
    "WaveState",
    "WaveStatus",
    "contact_permission",
    "decide",
    "is_quiet",
    "local_date",
    "next_allowed_send_time",
    "wave_statuses",
]

WAVES: tuple[str, ...] = ("baseline", "exit", "follow_up")
CHANNELS: tuple[str, ...] = ("email", "sms", "phone")


# --- inputs ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReferralContact:
    """What the contact rules need of one referral (support episode); no contact details themselves."""

    provider: str
    referral_id: str
    service: str
    referral_date: date
    support_start: date | None
    support_end: date | None
    safe_to_contact: bool
    consent_to_survey: bool
    preferred_channel: str  # email | sms | phone | none
    has_email: bool = False
    has_phone: bool = False
    # When the flags were last set or confirmed (the import's updated_at); None: the referral date.
    flags_updated_at: datetime | None = None

    def has_contact_for(self, channel: str) -> bool:
        """Whether this referral holds a contact detail usable on `channel`."""
        if channel == "email":
            return self.has_email
        return channel in ("sms", "phone") and self.has_phone

    @property
    def flags_ok(self) -> bool:
        """Both safe to contact and consenting to surveys."""
        return self.safe_to_contact and self.consent_to_survey


@dataclass(frozen=True, order=True)
class WaveItem:
    """One wave of one referral: the unit that is invited, reminded and completed."""

    provider: str
    referral_id: str
    wave: str


@dataclass(frozen=True)
class SentInvitation:
    """An invitation the ledger says was sent (one message, possibly covering several waves)."""

    invitation_id: str
    sent_at: datetime
    channel: str
    items: tuple[WaveItem, ...]
    reminders_sent_at: tuple[datetime, ...] = ()


@dataclass(frozen=True)
class ContactLedger:
    """One person's contact history, across every provider."""

    invitations: tuple[SentInvitation, ...] = ()
    completed: frozenset[WaveItem] = frozenset()
    opted_out_at: datetime | None = None
    snoozed_until: datetime | None = None


WaveDays = Mapping[str, int | None]
"""Per-wave day counts: {"baseline": 0, "follow_up": 180, "exit": None}; None switches the wave off.
Baseline counts from the start of support, exit and follow-up from its end."""

MAX_WAVE_DAYS = 730


@dataclass(frozen=True)
class ContactPolicy:
    """The tunable numbers of the rules (defaults as agreed for issue 3)."""

    # Days from the wave's anchor (support start for baseline, support end for exit and follow-up) to
    # its due date; None switches the wave off.
    baseline_days: int | None = 0
    exit_days: int | None = 0
    follow_up_days: int | None = 90
    waves_by_service: Mapping[str, WaveDays] = field(default_factory=dict)
    waves_by_provider: Mapping[str, WaveDays] = field(default_factory=dict)
    min_days_between_invitations: int = 30
    flag_lookback_days: int = 90
    gather_days: int = 7
    late_window_days: int = 45
    expiry_days: int = 28
    reminder_days: tuple[int, ...] = (7, 14)
    quiet_start: time = time(21, 0)
    quiet_end: time = time(8, 0)
    timezone: str = "Europe/London"

    def __post_init__(self) -> None:
        if self.expiry_days < 1:
            raise ValueError("expiry_days must be at least 1")
        days = self.reminder_days
        if any(d <= 0 for d in days) or list(days) != sorted(set(days)):
            raise ValueError("reminder_days must be increasing positive day counts")
        if days and days[-1] >= self.expiry_days:
            raise ValueError("every reminder must fall before the invitation expires")
        if min(self.gather_days, self.min_days_between_invitations, self.flag_lookback_days) < 0:
            raise ValueError("day counts cannot be negative")
        # Without a window longer than the spacing, a wave falling due just after another invitation
        # could never be sent.
        if self.late_window_days < self.min_days_between_invitations:
            raise ValueError("late_window_days must be at least min_days_between_invitations")
        # Gathering waits at most gather_days after the first due wave: it must not outlast its window.
        if self.gather_days > self.late_window_days:
            raise ValueError("gather_days must not exceed late_window_days")
        self._check_waves()
        ZoneInfo(self.timezone)  # fail at configuration time, not at 9pm

    def _check_waves(self) -> None:
        levels: list[tuple[str, WaveDays]] = [("default", self._defaults())]
        levels += [(f"service {k!r}", v) for k, v in self.waves_by_service.items()]
        levels += [(f"provider {k!r}", v) for k, v in self.waves_by_provider.items()]
        for where, waves in levels:
            unknown = set(waves) - set(WAVES)
            if unknown:
                raise ValueError(f"{where}: unknown wave {sorted(unknown)[0]!r} (waves: {', '.join(WAVES)})")
            for wave, days in waves.items():
                if days is not None and (
                    isinstance(days, bool) or not isinstance(days, int) or not 0 <= days <= MAX_WAVE_DAYS
                ):
                    raise ValueError(
                        f"{where}: {wave} must be 0 to {MAX_WAVE_DAYS} days or off, not {days!r}"
                    )
        # Every combination a referral can meet (a provider may run a service it is not listed under
        # here, so each provider is checked with each service): a follow-up must come after the exit
        # wave, or one invitation would ask the same episode's exit and follow-up questions together.
        none: WaveDays = {}
        services = [("", none), *((f"service {k!r}", v) for k, v in self.waves_by_service.items())]
        providers = [("", none), *((f"provider {k!r}", v) for k, v in self.waves_by_provider.items())]
        for service_name, service in services:
            for provider_name, provider in providers:
                merged = {**self._defaults(), **service, **provider}
                exit_days, follow_up = merged["exit"], merged["follow_up"]
                if exit_days is not None and follow_up is not None and follow_up <= exit_days:
                    where = " with ".join(n for n in (provider_name, service_name) if n) or "default"
                    raise ValueError(
                        f"{where}: follow_up ({follow_up} days after support ends) must come after "
                        f"exit ({exit_days} days)"
                    )

    def _defaults(self) -> dict[str, int | None]:
        return {"baseline": self.baseline_days, "exit": self.exit_days, "follow_up": self.follow_up_days}

    def wave_days_for(self, referral: ReferralContact, wave: str) -> int | None:
        """Days from the wave's anchor to its due date for this referral, or None when it is off:
        the provider's setting, else its service's, else the default."""
        for overrides in (
            self.waves_by_provider.get(referral.provider),
            self.waves_by_service.get(referral.service),
        ):
            if overrides is not None and wave in overrides:
                return overrides[wave]
        if wave == "baseline":
            return self.baseline_days
        return self.exit_days if wave == "exit" else self.follow_up_days

    def follow_up_days_for(self, referral: ReferralContact) -> int | None:
        """Days from support end to the follow-up wave (None: switched off for this referral)."""
        return self.wave_days_for(referral, "follow_up")

    def wave_day_range(self, wave: str) -> tuple[int, int] | None:
        """The fewest and most days any configuration gives `wave`; None when it is off everywhere."""
        values = [self._defaults()[wave]]
        values += [
            w[wave] for w in (*self.waves_by_service.values(), *self.waves_by_provider.values()) if wave in w
        ]
        on = [v for v in values if v is not None]
        return (min(on), max(on)) if on else None

    @property
    def contact_retention_days(self) -> int:
        """Days after support ends that a referral's contact details may still be needed: the latest
        wave after support ends, plus its late window and an invitation's lifetime (163 by default)."""
        after_end = [r[1] for w in ("exit", "follow_up") if (r := self.wave_day_range(w)) is not None]
        return max(after_end, default=0) + self.late_window_days + self.expiry_days


# --- outputs --------------------------------------------------------------------------------------


class Action(StrEnum):
    """What the scheduler should do for the person now."""

    SEND_INVITATION = "send_invitation"
    SEND_REMINDER = "send_reminder"
    WAIT = "wait"  # something is pending: call decide again at next_check_at
    NONE = "none"  # nothing to send and nothing scheduled (or contact is blocked)


class WaveState(StrEnum):
    """Where one wave of one referral stands."""

    UPCOMING = "upcoming"  # due date known, in the future
    DUE = "due"  # may be invited now
    INVITED = "invited"  # in an open invitation
    COMPLETED = "completed"
    EXPIRED = "expired"  # invited, not completed before the invitation expired
    MISSED = "missed"  # never invited within its window
    VOID = "void"  # no longer meaningful (a baseline after support ended)
    BLOCKED = "blocked"  # its own referral is not safe to contact or has no consent


@dataclass(frozen=True)
class Reason:
    """A machine code and a plain sentence, for the contact history."""

    code: str
    detail: str


@dataclass(frozen=True)
class WaveStatus:
    """The state of one wave with its due date, last sendable day and why."""

    item: WaveItem
    state: WaveState
    due_on: date | None
    last_day: date | None
    reason: str


@dataclass(frozen=True)
class Permission:
    """Whether the person may be contacted at all right now, and on which channel."""

    allowed: bool
    channel: str | None
    reasons: tuple[Reason, ...]


@dataclass(frozen=True)
class ContactDecision:
    """The outcome of `decide`: the action, its items and channel, and every reason behind it."""

    action: Action
    reasons: tuple[Reason, ...]
    channel: str | None = None
    items: tuple[WaveItem, ...] = ()
    message_kind: str | None = None  # invitation | reminder | final_reminder (surveys.messages)
    invitation_id: str | None = None  # the invitation a reminder belongs to
    reminder_number: int | None = None
    expires_at: datetime | None = None
    next_check_at: datetime | None = None
    waves: tuple[WaveStatus, ...] = ()


# --- time -----------------------------------------------------------------------------------------


@cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _require_aware(at: datetime) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("contact rules need timezone-aware datetimes")


def local_date(at: datetime, policy: ContactPolicy | None = None) -> date:
    """The calendar date at instant `at` in the policy's time zone (Europe/London)."""
    _require_aware(at)
    return at.astimezone(_zone((policy or ContactPolicy()).timezone)).date()


def _local_midnight(day: date, policy: ContactPolicy) -> datetime:
    return datetime.combine(day, time.min, tzinfo=_zone(policy.timezone))


def is_quiet(at: datetime, policy: ContactPolicy | None = None) -> bool:
    """True when `at` falls in quiet hours (default 21:00-08:00 local time)."""
    policy = policy or ContactPolicy()
    _require_aware(at)
    local = at.astimezone(_zone(policy.timezone)).time()
    start, end = policy.quiet_start, policy.quiet_end
    if start == end:
        return False
    if start > end:  # spans midnight, the usual case
        return local >= start or local < end
    return start <= local < end


def next_allowed_send_time(at: datetime, policy: ContactPolicy | None = None) -> datetime:
    """`at` itself when outside quiet hours, else the next quiet-hours end in local time.

    Built from the local wall clock (`datetime.combine` with the zone), so 08:00 stays 08:00 on both
    sides of a GMT/BST change; the result is in the zone of the policy.
    """
    policy = policy or ContactPolicy()
    if not is_quiet(at, policy):
        return at
    zone = _zone(policy.timezone)
    local = at.astimezone(zone)
    day = local.date()
    if local.time() >= policy.quiet_end and policy.quiet_start > policy.quiet_end:
        day += timedelta(days=1)  # evening: the quiet period ends tomorrow morning
    return datetime.combine(day, policy.quiet_end, tzinfo=zone)


# --- who may be contacted -------------------------------------------------------------------------


def _recency_key(r: ReferralContact, policy: ContactPolicy) -> datetime:
    if r.flags_updated_at is not None:
        _require_aware(r.flags_updated_at)
        return max(r.flags_updated_at, _local_midnight(r.referral_date, policy))
    return _local_midnight(r.referral_date, policy)


def _last_active(r: ReferralContact, today: date, policy: ContactPolicy) -> date:
    days = [r.referral_date]
    if r.flags_updated_at is not None:
        days.append(local_date(r.flags_updated_at, policy))
    if r.support_start is not None and (r.support_end is None or r.support_end > today):
        days.append(today)  # support still open: current by definition
    elif r.support_end is not None:
        days.append(r.support_end)
    return max(days)


def _ref(r: ReferralContact) -> str:
    return f"{r.provider}/{r.referral_id}"


def contact_permission(
    referrals: Sequence[ReferralContact],
    ledger: ContactLedger,
    now: datetime,
    policy: ContactPolicy | None = None,
) -> Permission:
    """Whether the person may be contacted at all at `now`, on which channel, and why (rules 1-3).

    Blocked when: any opt-out is recorded; the most recent referral (latest of flags update and
    referral date; ties all count) is not safe to contact or has no consent; any other referral active
    within `flag_lookback_days` is not safe or has no consent; or the most recent referral's preferred
    channel is `none`, unclear, or lacks a contact detail on that referral. Conflicting information
    resolves to "do not contact": a wrong "no" costs one survey answer, a wrong "yes" can cost safety.
    Every blocking reason is listed, not just the first, so the contact history shows the full picture.
    """
    policy = policy or ContactPolicy()
    _require_aware(now)
    today = local_date(now, policy)
    reasons: list[Reason] = []
    # Any recorded opt-out counts, even one stamped a moment after `now` (clock skew must not win).
    if ledger.opted_out_at is not None:
        reasons.append(
            Reason("opted_out", f"the person asked for no more messages on {ledger.opted_out_at:%Y-%m-%d}")
        )
    if not referrals:
        reasons.append(Reason("no_referrals", "no referral on record"))
        return Permission(False, None, tuple(reasons))

    newest_key = max(_recency_key(r, policy) for r in referrals)
    # Ties: several referrals recorded at the same moment all count as "the most recent".
    newest = [r for r in referrals if _recency_key(r, policy) == newest_key]
    for r in newest:
        if not r.safe_to_contact:
            reasons.append(
                Reason("latest_unsafe", f"most recent referral {_ref(r)} says not safe to contact")
            )
        if not r.consent_to_survey:
            reasons.append(
                Reason("latest_no_consent", f"most recent referral {_ref(r)} has no survey consent")
            )
    since = today - timedelta(days=policy.flag_lookback_days)
    for r in referrals:
        if r in newest or _last_active(r, today, policy) < since:
            continue
        if not r.safe_to_contact:
            reasons.append(
                Reason(
                    "recent_unsafe",
                    f"referral {_ref(r)}, active in the last {policy.flag_lookback_days} "
                    "days, says not safe to contact",
                )
            )
        if not r.consent_to_survey:
            reasons.append(
                Reason(
                    "recent_no_consent",
                    f"referral {_ref(r)}, active in the last "
                    f"{policy.flag_lookback_days} days, has no survey consent",
                )
            )

    channels = {r.preferred_channel for r in newest}
    channel = channels.pop() if len(channels) == 1 else None
    if channel is None:
        reasons.append(Reason("channel_unclear", "the most recent referrals prefer different channels"))
    elif channel not in CHANNELS:
        reasons.append(Reason("no_channel", f"preferred channel is {channel!r}"))
        channel = None
    elif not all(r.has_contact_for(channel) for r in newest):
        reasons.append(
            Reason("no_contact_detail", f"the most recent referral has no contact detail for {channel}")
        )
        channel = None
    if reasons:
        return Permission(False, None, tuple(reasons))
    return Permission(True, channel, (Reason("may_contact", f"safe to contact by {channel}"),))


# --- which waves ----------------------------------------------------------------------------------


def _wave_dates(r: ReferralContact, policy: ContactPolicy) -> Iterable[tuple[str, date]]:
    # No support start means no episode: the person was referred but never supported, so no waves.
    if r.support_start is None:
        return
    anchors = {"baseline": r.support_start, "exit": r.support_end, "follow_up": r.support_end}
    for wave in WAVES:
        anchor = anchors[wave]
        days = policy.wave_days_for(r, wave)
        if anchor is not None and days is not None:
            yield wave, anchor + timedelta(days=days)


def _invitation_expires(inv: SentInvitation, policy: ContactPolicy) -> datetime:
    return inv.sent_at + timedelta(days=policy.expiry_days)


def wave_statuses(
    referrals: Sequence[ReferralContact],
    ledger: ContactLedger,
    now: datetime,
    policy: ContactPolicy | None = None,
) -> list[WaveStatus]:
    """The state of every wave whose due date is known, for every referral of the person (rule 5)."""
    policy = policy or ContactPolicy()
    _require_aware(now)
    today = local_date(now, policy)
    invited: dict[WaveItem, SentInvitation] = {}
    for inv in sorted(ledger.invitations, key=lambda i: i.sent_at):
        for item in inv.items:
            invited.setdefault(item, inv)
    out: list[WaveStatus] = []
    for r in referrals:
        for wave, due in _wave_dates(r, policy):
            item = WaveItem(r.provider, r.referral_id, wave)
            last = due + timedelta(days=policy.late_window_days)
            state, why = _state(item, r, due, last, today, now, ledger, invited.get(item), policy)
            out.append(WaveStatus(item, state, due, last, why))
    return sorted(out, key=lambda s: (s.due_on or date.min, s.item))


def _state(
    item: WaveItem,
    r: ReferralContact,
    due: date,
    last: date,
    today: date,
    now: datetime,
    ledger: ContactLedger,
    invitation: SentInvitation | None,
    policy: ContactPolicy,
) -> tuple[WaveState, str]:
    if item in ledger.completed:
        return WaveState.COMPLETED, "response completed"
    if invitation is not None:
        if now < _invitation_expires(invitation, policy):
            return WaveState.INVITED, f"in invitation {invitation.invitation_id}"
        return WaveState.EXPIRED, f"invitation {invitation.invitation_id} expired without a response"
    if not r.safe_to_contact:
        return WaveState.BLOCKED, "its referral says not safe to contact"
    if not r.consent_to_survey:
        return WaveState.BLOCKED, "its referral has no survey consent"
    if item.wave == "baseline" and r.support_end is not None and r.support_end <= today:
        return WaveState.VOID, "support ended before a baseline was sent"
    if today < due:
        return WaveState.UPCOMING, f"due on {due:%Y-%m-%d}"
    if today > last:
        return (
            WaveState.MISSED,
            f"not sent by {last:%Y-%m-%d}, {policy.late_window_days} days after it was due",
        )
    return WaveState.DUE, f"due since {due:%Y-%m-%d}"


# --- the decision ---------------------------------------------------------------------------------


def _open_invitation(
    ledger: ContactLedger, now: datetime, policy: ContactPolicy
) -> tuple[SentInvitation, tuple[WaveItem, ...]] | None:
    """The latest invitation still open (not expired, something left to complete), with those items."""
    for inv in sorted(ledger.invitations, key=lambda i: i.sent_at, reverse=True):
        if inv.sent_at > now or now >= _invitation_expires(inv, policy):
            continue
        left = tuple(i for i in inv.items if i not in ledger.completed)
        if left:
            return inv, left
    return None


def _reminder_due_at(inv: SentInvitation, policy: ContactPolicy) -> datetime | None:
    n = len(inv.reminders_sent_at)
    if n >= len(policy.reminder_days):
        return None
    due = inv.sent_at + timedelta(days=policy.reminder_days[n])
    if n:
        # Keep the planned gap after a late reminder, so two never go out back to back.
        gap = policy.reminder_days[n] - policy.reminder_days[n - 1]
        due = max(due, max(inv.reminders_sent_at) + timedelta(days=gap))
    return due


def _hold(
    now: datetime, ledger: ContactLedger, policy: ContactPolicy, earliest: datetime
) -> tuple[datetime, list[Reason]]:
    """The first instant from `earliest` on that respects snooze and quiet hours, with the reasons."""
    reasons: list[Reason] = []
    at = max(now, earliest)
    if ledger.snoozed_until is not None and ledger.snoozed_until > at:
        at = ledger.snoozed_until
        reasons.append(Reason("snoozed", f"snoozed until {ledger.snoozed_until:%Y-%m-%d %H:%M %Z}"))
    allowed = next_allowed_send_time(at, policy)
    if allowed != at:
        reasons.append(Reason("quiet_hours", f"quiet hours until {allowed:%Y-%m-%d %H:%M %Z}"))
    return allowed, reasons


def decide(
    referrals: Sequence[ReferralContact],
    ledger: ContactLedger,
    now: datetime,
    policy: ContactPolicy | None = None,
) -> ContactDecision:
    """Decide what to send the person at `now`: an invitation, a reminder, nothing yet, or nothing.

    `referrals` are all of the person's referrals across providers; `ledger` their contact history;
    `now` must be timezone-aware. Applies the rules in this module's docstring, in that order. A
    SEND_* decision is for `now` only; WAIT carries `next_check_at`; NONE means nothing is pending.
    """
    policy = policy or ContactPolicy()
    _require_aware(now)
    waves = tuple(wave_statuses(referrals, ledger, now, policy))
    permission = contact_permission(referrals, ledger, now, policy)
    if not permission.allowed:
        return ContactDecision(Action.NONE, permission.reasons, waves=waves)
    channel = permission.channel
    reasons: list[Reason] = list(permission.reasons)
    pending: list[datetime] = []  # instants at which something may become sendable

    # Reminders first: an open invitation takes precedence over starting a new one.
    open_inv = _open_invitation(ledger, now, policy)
    if open_inv is not None:
        inv, left = open_inv
        expires = _invitation_expires(inv, policy)
        by_ref = {(r.provider, r.referral_id): r for r in referrals}
        # Remind only about waves whose own referral still allows contact.
        left = tuple(i for i in left if (r := by_ref.get((i.provider, i.referral_id))) and r.flags_ok)
        due_at = _reminder_due_at(inv, policy) if left else None
        if due_at is not None and due_at < expires:
            send_at, held = _hold(now, ledger, policy, due_at)
            number = len(inv.reminders_sent_at) + 1
            if send_at < expires:
                kind = "final_reminder" if number == len(policy.reminder_days) else "reminder"
                if channel != inv.channel:
                    reasons.append(
                        Reason("channel_changed", f"invited by {inv.channel}, now prefers {channel}")
                    )
                if send_at <= now:
                    reasons.append(
                        Reason("reminder_due", f"reminder {number} for invitation {inv.invitation_id}")
                    )
                    return ContactDecision(
                        Action.SEND_REMINDER,
                        tuple(reasons),
                        channel=channel,
                        items=left,
                        message_kind=kind,
                        invitation_id=inv.invitation_id,
                        reminder_number=number,
                        expires_at=expires,
                        waves=waves,
                    )
                reasons += held
                reasons.append(
                    Reason("reminder_pending", f"reminder {number} at {send_at:%Y-%m-%d %H:%M %Z}")
                )
                pending.append(send_at)
            else:
                reasons += held
                reasons.append(Reason("reminder_lapsed", f"reminder {number} could not go before expiry"))
        elif not left:
            reasons.append(
                Reason("nothing_to_remind", f"invitation {inv.invitation_id}: no wave left to remind")
            )
        else:
            reasons.append(Reason("reminders_done", f"invitation {inv.invitation_id}: no reminder left"))

    due = [s for s in waves if s.state is WaveState.DUE]
    upcoming = [s for s in waves if s.state is WaveState.UPCOMING and s.due_on is not None]
    if due:
        earliest = _local_midnight(local_date(now, policy), policy)
        first_due = min(s.due_on for s in due if s.due_on is not None)
        gather = [
            s for s in upcoming if s.due_on and s.due_on <= first_due + timedelta(days=policy.gather_days)
        ]
        if gather:
            until = max(s.due_on for s in gather if s.due_on is not None)
            earliest = max(earliest, _local_midnight(until, policy))
            reasons.append(
                Reason(
                    "gathering",
                    f"waiting until {until:%Y-%m-%d} to send with "
                    + ", ".join(f"{s.item.provider} {s.item.wave}" for s in gather),
                )
            )
        last_sent = max((i.sent_at for i in ledger.invitations if i.sent_at <= now), default=None)
        if last_sent is not None:
            spaced = last_sent + timedelta(days=policy.min_days_between_invitations)
            if spaced > now:
                earliest = max(earliest, spaced)
                reasons.append(
                    Reason(
                        "spacing",
                        f"last invitation {last_sent:%Y-%m-%d}; at most one every "
                        f"{policy.min_days_between_invitations} days",
                    )
                )
        send_at, held = _hold(now, ledger, policy, earliest)
        reasons += held
        if send_at <= now and open_inv is None:
            items = tuple(sorted(s.item for s in due))
            reasons.append(Reason("waves_due", ", ".join(f"{i.provider} {i.wave}" for i in items)))
            return ContactDecision(
                Action.SEND_INVITATION,
                tuple(reasons),
                channel=channel,
                items=items,
                message_kind="invitation",
                expires_at=now + timedelta(days=policy.expiry_days),
                waves=waves,
            )
        if open_inv is not None and send_at <= now:
            # Only when spacing is configured shorter than expiry: wait for the open invitation to end.
            send_at = _invitation_expires(open_inv[0], policy)
            reasons.append(Reason("invitation_open", f"waiting for invitation {open_inv[0].invitation_id}"))
        pending.append(send_at)
    elif upcoming:
        first = min(s.due_on for s in upcoming if s.due_on is not None)
        pending.append(next_allowed_send_time(_local_midnight(first, policy), policy))
        reasons.append(Reason("next_wave", f"next wave due on {first:%Y-%m-%d}"))

    if pending:
        return ContactDecision(
            Action.WAIT, tuple(reasons), channel=channel, next_check_at=min(pending), waves=waves
        )
    reasons.append(Reason("nothing_due", "no wave is due or coming up"))
    return ContactDecision(Action.NONE, tuple(reasons), channel=channel, waves=waves)
