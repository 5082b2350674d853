"""API shapes of the person's language preference (coordinated surveys), beside surveys.schemas."""

from __future__ import annotations

from typing import Literal

import msgspec

Lang = Literal["en", "cy"]


class LanguageSet(msgspec.Struct, forbid_unknown_fields=True):
    """The language the person reads messages and surveys in, set by a provider on their behalf.

    Required, but checked after the referral's scope (422 when missing), so that another provider's
    referral is a 404 whatever the body says, as on the other person-level routes.
    """

    lang: Lang | None = None


class LanguageRead(msgspec.Struct):
    """The person's language now: every provider's invitations and reminders use it."""

    lang: Lang
