"""Fixtures of the outcomes tests: row factories over the surveys tables (on the shared `db` fixture)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from surveys.tables import Organisation, Referral, Response


class Rows:
    """Row factories with sensible defaults, so each test states only what its rule is about."""

    def __init__(self) -> None:
        self.orgs: dict[str, Organisation] = {}
        self._n = 0

    async def org(self, code: str, service: str | None = "general", kind: str = "provider") -> Organisation:
        org = Organisation(code=code, name=f"{code} service", kind=kind, service=service)
        await org.save()
        self.orgs[code] = org
        return org

    async def referral(self, provider: str = "VS", **fields: Any) -> Referral:
        """A referral of `provider` (created on first use); fields override the defaults."""
        if provider not in self.orgs:
            await self.org(provider)
        self._n += 1
        values: dict[str, Any] = {
            "referral_id": f"R{self._n}",
            "person_key": f"P{self._n}",
            "referral_date": date(2025, 5, 1),
            "source": "police",
            "crime_type": "burglary_residential",
            "status": "referred",
        }
        values.update(fields)
        ref = Referral(provider=self.orgs[provider].id, **values)
        await ref.save()
        return ref

    async def episode(
        self,
        provider: str = "VS",
        start: date = date(2025, 5, 2),
        end: date | None = date(2025, 6, 1),
        **fields: Any,
    ) -> Referral:
        """An episode: support started (default 2025-05-02) and ended (default 2025-06-01; None = open)."""
        fields.setdefault("status", "closed" if end else "supported")
        return await self.referral(provider, support_start=start, support_end=end, **fields)

    async def response(
        self, referral: Referral, wave: str, completed_at: datetime | str | None = "default", **answers: Any
    ) -> Response:
        """A response, complete at 2025-06-01 12:00 UTC unless `completed_at` says so (None = partial)."""
        when = datetime(2025, 6, 1, 12, tzinfo=UTC) if completed_at == "default" else completed_at
        resp = Response(referral=referral.id, wave=wave, completed_at=when, **answers)
        await resp.save()
        return resp


@pytest.fixture
def rows(db: None) -> Rows:
    return Rows()
