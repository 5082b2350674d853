"""Tables of the surveys domain: organisations, referrals (support episodes) and responses.

Every foreign key states its ON DELETE and nullability on purpose (Piccolo defaults to CASCADE and
nullable). The raw `person_id` is never stored: `person_key` is its keyed hash (see surveys.crypto).
"""

from __future__ import annotations

from piccolo.columns import (
    Boolean,
    Date,
    ForeignKey,
    Integer,
    OnDelete,
    SmallInt,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class Organisation(Table):
    """A provider of support services, or the commissioner (the OPCC)."""

    code = Varchar(length=20, unique=True, null=False)
    name = Varchar(length=200, null=False)
    kind = Varchar(length=20, null=False)  # provider | commissioner
    service = Varchar(length=20, null=True, default=None)  # general sav cse da hate other; None for OPCC
    created_at = Timestamptz(default=TimestamptzNow())


class Referral(Table):
    """One referral of one person to one provider; an episode once `support_start` is set."""

    # Indexed by the composite unique (provider, referral_id) index of the second migration.
    provider = ForeignKey(references=Organisation, on_delete=OnDelete.restrict, null=False)
    referral_id = Varchar(length=100, null=False)
    # Indexed with the dates by the covering index referral_person_period (second migration).
    person_key = Varchar(length=64, null=False)
    referral_date = Date(null=False, index=True)
    source = Varchar(length=10, null=False)
    crime_type = Varchar(length=40, null=False)
    domestic_abuse = Boolean(default=False, null=False)
    hate_crime = Boolean(default=False, null=False)
    repeat_victim = Boolean(default=False, null=False)
    age_band = Varchar(length=10, null=False, default="unknown")
    sex = Varchar(length=10, null=False, default="unknown")
    ethnicity = Varchar(length=10, null=False, default="unknown")
    disability = Varchar(length=10, null=False, default="unknown")
    status = Varchar(length=20, null=False)
    support_start = Date(null=True, default=None)
    support_end = Date(null=True, default=None)
    # AES-GCM ciphertexts (base64); erased (set to NULL) when their purpose ends.
    contact_email_enc = Text(null=True, default=None)
    contact_phone_enc = Text(null=True, default=None)
    preferred_channel = Varchar(length=10, null=False, default="none")
    safe_to_contact = Boolean(default=False, null=False)
    consent_to_survey = Boolean(default=False, null=False)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class Response(Table):
    """One survey response (complete when `completed_at` is set), in the columns of data-formats.md.

    Answers are special-category data: never logged. States are 1..5 or NULL (`na` and blank are both
    missing); helped answers keep `na` because it is a distinct answer. `rights_mask` holds the Victims'
    Code rights received as bits 0..11 (right r is bit r-1): NULL = not asked, 0 = `none`.
    """

    # Indexed by the covering index response_referral_wave (second migration).
    referral = ForeignKey(references=Referral, on_delete=OnDelete.restrict, null=False)
    wave = Varchar(length=10, null=False)
    completed_at = Timestamptz(null=True, default=None)
    mode = Varchar(length=10, null=False, default="web")
    instrument_version = Varchar(length=40, null=False, default="core-1")
    # Idempotency: one stored response per submission key (web submit, phone entry, import row).
    submission_key = Varchar(length=64, null=True, default=None, unique=True)
    cope = SmallInt(null=True, default=None)
    safety = SmallInt(null=True, default=None)
    health = SmallInt(null=True, default=None)
    informed = SmallInt(null=True, default=None)
    cjs = SmallInt(null=True, default=None)
    recover = SmallInt(null=True, default=None)
    helped_cope = Varchar(length=10, null=True, default=None)
    helped_safety = Varchar(length=10, null=True, default=None)
    helped_health = Varchar(length=10, null=True, default=None)
    helped_informed = Varchar(length=10, null=True, default=None)
    helped_cjs = Varchar(length=10, null=True, default=None)
    helped_recover = Varchar(length=10, null=True, default=None)
    satisfaction = Varchar(length=30, null=True, default=None)
    rights_mask = Integer(null=True, default=None)
    swemwbs_1 = SmallInt(null=True, default=None)
    swemwbs_2 = SmallInt(null=True, default=None)
    swemwbs_3 = SmallInt(null=True, default=None)
    swemwbs_4 = SmallInt(null=True, default=None)
    swemwbs_5 = SmallInt(null=True, default=None)
    swemwbs_6 = SmallInt(null=True, default=None)
    swemwbs_7 = SmallInt(null=True, default=None)
    barriers_text = Text(null=True, default=None)
    gaps_text = Text(null=True, default=None)
    comments_text = Text(null=True, default=None)
    # Further scale items (ONS4, PHQ-9, GAD-7 ...) as a JSON object text {"phq9_1": 2, ...}.
    extra_answers = Text(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class SurveyLink(Table):
    """A survey link (`/s/{token}`): one person, one or more (referral, wave) items to ask about.

    Only the SHA-256 of the token is stored. The link is dead once completed or expired. `answers` holds
    the page-by-page answers so far (JSON), so a person resumes on any device where they left off.
    """

    token_hash = Varchar(length=64, null=False, unique=True)
    person_key = Varchar(length=64, null=False, index=True)
    instrument_version = Varchar(length=40, null=False, default="core-1")
    scales = Varchar(length=200, null=False, default="")  # optional scales switched on, comma-separated
    mode = Varchar(length=10, null=False, default="web")  # web | phone
    lang = Varchar(length=2, null=False, default="en")
    answers = Text(null=False, default="{}")
    created_at = Timestamptz(default=TimestamptzNow())
    expires_at = Timestamptz(null=False)
    opened_at = Timestamptz(null=True, default=None)
    completed_at = Timestamptz(null=True, default=None)


class LinkItem(Table):
    """One (referral, wave) a link asks about; a combined survey has one item per provider's wave."""

    link = ForeignKey(references=SurveyLink, on_delete=OnDelete.cascade, null=False, index=True)
    referral = ForeignKey(references=Referral, on_delete=OnDelete.restrict, null=False, index=True)
    wave = Varchar(length=10, null=False)
    response = ForeignKey(references=Response, on_delete=OnDelete.set_null, null=True, default=None)


# --- the contact ledger and the outbox (issue 3) --------------------------------------------------
#
# Nothing here holds message text or a contact detail in clear: the only secrets are the survey link
# token, encrypted (surveys.crypto), kept only while a message may still need it. Recipients are read
# from the person's most recent referral at the moment of sending, so an erased or changed contact
# detail is never used from a stale copy.


class ContactPreference(Table):
    """The person-level ledger: "stop", "not now" and the language, honoured by every provider (keyed by
    person)."""

    person_key = Varchar(length=64, null=False, unique=True)
    opted_out_at = Timestamptz(null=True, default=None)
    opted_out_via = Varchar(length=20, null=False, default="")  # survey-link | provider | cli | sms-stop
    snoozed_until = Timestamptz(null=True, default=None)
    snoozed_via = Varchar(length=20, null=False, default="")
    # The language the person reads messages and the survey in (en | cy): set by a provider on their
    # behalf, or remembered when they switch language on the survey page.
    lang = Varchar(length=2, null=False, default="en")
    # The provider that recorded the last change on the person's behalf; losing the organisation must
    # not lose the opt-out, so the key is cleared rather than the row deleted.
    changed_by = ForeignKey(references=Organisation, on_delete=OnDelete.set_null, null=True, default=None)
    # The scheduler's last decision as reason codes: a "not sent, because" event is written to the
    # history only when it changes, not on every run.
    last_decision = Varchar(length=300, null=False, default="")
    last_decided_at = Timestamptz(null=True, default=None)
    updated_at = Timestamptz(default=TimestamptzNow())


class Invitation(Table):
    """One invitation to one survey link (possibly combining several providers' waves).

    status: queued (decided, message in the outbox) -> sent -> completed | expired; cancelled when a
    re-check before sending said no (it then does not count as contact); failed when delivery gave up
    (it counts, so a bad address is not retried every run).
    """

    person_key = Varchar(length=64, null=False, index=True)
    # RESTRICT: the contact history must not vanish with a link; links are deleted only by erasure,
    # which removes the invitation first.
    link = ForeignKey(references=SurveyLink, on_delete=OnDelete.restrict, null=False, index=True)
    channel = Varchar(length=10, null=False)  # email | sms | phone (assisted call)
    lang = Varchar(length=2, null=False, default="en")
    status = Varchar(length=10, null=False, default="queued", index=True)
    # The provider whose practitioner makes an assisted call (most recent referral); NULL otherwise.
    provider = ForeignKey(references=Organisation, on_delete=OnDelete.restrict, null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    sent_at = Timestamptz(null=True, default=None)
    expires_at = Timestamptz(null=False)
    reminders_sent = SmallInt(null=False, default=0)
    last_reminder_at = Timestamptz(null=True, default=None)
    completed_at = Timestamptz(null=True, default=None)
    # The link token, encrypted, kept only while a reminder may still need it (erased at the end).
    token_enc = Text(null=True, default=None)


class ContactEvent(Table):
    """The contact history: what was decided or done, when and why, as codes. No text, no contacts."""

    person_key = Varchar(length=64, null=False, index=True)
    # CASCADE on purpose: erasing a referral erases the history about it; person-level events
    # (opt-out, snooze) have no referral and stay.
    referral = ForeignKey(
        references=Referral, on_delete=OnDelete.cascade, null=True, default=None, index=True
    )
    invitation = ForeignKey(references=Invitation, on_delete=OnDelete.set_null, null=True, default=None)
    wave = Varchar(length=10, null=False, default="")
    kind = Varchar(length=20, null=False)  # invited reminded sent failed cancelled opted_out snoozed ...
    reasons = Varchar(length=300, null=False, default="")  # reason codes, comma-separated
    detail = Text(null=False, default="")  # the rules' plain sentences: ids and dates, never contacts
    actor = Varchar(length=40, null=False, default="scheduler")
    at = Timestamptz(null=False, index=True)


class OutboxMessage(Table):
    """A message decided and waiting to leave, written in the transaction of the decision.

    status: pending -> sending (claimed by one dispatcher) -> sent | pending (retry) | dead; cancelled
    when the re-check just before sending says no. `idempotency_key` makes queueing the same message
    twice impossible; the SMTP Message-ID and the Notify reference carry it too.
    """

    idempotency_key = Varchar(length=64, null=False, unique=True)
    # RESTRICT: an outbox row is the evidence of what was sent; it goes only with its invitation's
    # deliberate erasure.
    invitation = ForeignKey(references=Invitation, on_delete=OnDelete.restrict, null=False, index=True)
    channel = Varchar(length=10, null=False)  # email | sms | phone
    kind = Varchar(length=20, null=False)  # invitation | reminder | final_reminder
    lang = Varchar(length=2, null=False, default="en")
    status = Varchar(length=10, null=False, default="pending")
    attempts = SmallInt(null=False, default=0)
    next_attempt_at = Timestamptz(null=False)
    claimed_by = Varchar(length=32, null=True, default=None)
    claimed_at = Timestamptz(null=True, default=None)
    last_error = Varchar(length=200, null=True, default=None)  # error class and code, no personal data
    token_enc = Text(null=True, default=None)  # the link token, encrypted; NULL once sent or dead
    created_at = Timestamptz(null=False)
    sent_at = Timestamptz(null=True, default=None)
    provider_message_id = Varchar(length=100, null=True, default=None)


class DeliveryAttempt(Table):
    """Every attempt to deliver an outbox message, with its outcome (codes only)."""

    message = ForeignKey(references=OutboxMessage, on_delete=OnDelete.cascade, null=False, index=True)
    number = SmallInt(null=False)
    at = Timestamptz(null=False)
    outcome = Varchar(length=12, null=False)  # sent | retry | dead | cancelled | postponed
    error = Varchar(length=200, null=True, default=None)
    duration_ms = Integer(null=False, default=0)


class CallTask(Table):
    """An assisted invitation: a provider's practitioner calls the person and fills the survey in."""

    invitation = ForeignKey(references=Invitation, on_delete=OnDelete.cascade, null=False, index=True)
    provider = ForeignKey(references=Organisation, on_delete=OnDelete.restrict, null=False, index=True)
    status = Varchar(length=12, null=False, default="open")  # open | done | no_answer | declined | cancelled
    created_at = Timestamptz(null=False)
    due_at = Timestamptz(null=False)
    closed_at = Timestamptz(null=True, default=None)
