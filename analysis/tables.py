"""Tables of analysis: what the text pipeline found in each free-text answer, safeguarding alerts, and
the Victim Reference Group's review (theme decisions, emerging topics, "you said, we did")."""

from __future__ import annotations

from piccolo.columns import Boolean, Float, ForeignKey, OnDelete, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from surveys.tables import Referral, Response


class TextAnalysis(Table):
    """One free-text answer (a response's field) after redaction, sentiment and themes.

    Derived from the answer, so it goes with it (CASCADE). Only `redacted` text is kept here.
    """

    response = ForeignKey(references=Response, on_delete=OnDelete.cascade, null=False, index=True)
    field = Varchar(length=20, null=False)  # barriers_text | gaps_text | comments_text
    redacted = Text(null=False)
    sentiment = Varchar(length=10, null=False)
    themes = Text(null=False, default="[]")  # JSON list of theme codes
    theme_scores = Text(null=False, default="{}")  # JSON {code: probability}
    uncertainty = Float(null=False, default=0.0)  # 0 sure .. 1 unsure: the review queue's order
    safeguarding = Boolean(null=False, default=False)
    model_version = Varchar(length=80, null=False)
    analysed_at = Timestamptz(default=TimestamptzNow())


class SafeguardingAlert(Table):
    """A disclosure of current danger, self-harm or a child at risk, for the supporting provider only."""

    analysis = ForeignKey(references=TextAnalysis, on_delete=OnDelete.cascade, null=False, index=True)
    referral = ForeignKey(references=Referral, on_delete=OnDelete.cascade, null=False, index=True)
    created_at = Timestamptz(default=TimestamptzNow())
    seen_at = Timestamptz(null=True, default=None)
    seen_by = Varchar(length=100, null=False, default="")


class ThemeReview(Table):
    """A reviewer's decision on one theme of one answer: confirm, reject, or relabel to another theme."""

    analysis = ForeignKey(references=TextAnalysis, on_delete=OnDelete.cascade, null=False, index=True)
    theme = Varchar(length=40, null=False)
    decision = Varchar(length=10, null=False)  # confirm | reject | relabel
    new_theme = Varchar(length=40, null=False, default="")
    reviewer = Varchar(length=100, null=False)
    at = Timestamptz(default=TimestamptzNow())


class EmergingTopic(Table):
    """A candidate theme found by topic discovery, for the VRG to name or dismiss."""

    period = Varchar(length=30, null=False)
    top_terms = Text(null=False)  # JSON list
    examples = Text(null=False, default="[]")  # JSON list of TextAnalysis ids (redacted text only)
    size = Float(null=False, default=0)
    status = Varchar(length=10, null=False, default="candidate")  # candidate | named | dismissed
    name = Varchar(length=100, null=False, default="")
    decided_by = Varchar(length=100, null=False, default="")
    created_at = Timestamptz(default=TimestamptzNow())


class YouSaidWeDid(Table):
    """What the OPCC changed because of a theme: the public "you said, we did" log."""

    theme = Varchar(length=40, null=False, index=True)
    period = Varchar(length=30, null=False, default="")
    you_said = Text(null=False)
    we_did = Text(null=False)
    recorded_by = Varchar(length=100, null=False)
    at = Timestamptz(default=TimestamptzNow())
