"""The `vop` commands of coordinated surveys: schedule, dispatch, link, invitations, contact-preference.

Registered on the main `vop` app by `register(app)` (cli.py), so they are top-level commands. The
helpers of cli.py (`run`, `fail`, `console`, `progress`) are imported inside the functions: cli.py
imports this module, and a module-level import back would be a cycle. Nothing here prints a contact
detail or a message; `vop link` prints the one link it creates, which is its purpose.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer

LONDON = ZoneInfo("Europe/London")
NOW_HELP = "Act as if it were this time (ISO 8601; without an offset it is London time). Default: now."


class Wave(StrEnum):
    baseline = "baseline"
    exit = "exit"
    follow_up = "follow_up"


class Format(StrEnum):
    table = "table"
    json = "json"


class InvitationStatus(StrEnum):
    queued = "queued"
    sent = "sent"
    completed = "completed"
    expired = "expired"
    cancelled = "cancelled"
    failed = "failed"


def parse_now(value: str | None) -> dt.datetime:
    """`--now` as an aware datetime: ISO 8601, London time when it has no offset; None is now."""
    from cli import fail

    if not value:
        return dt.datetime.now(dt.UTC)
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        fail(f"--now must be an ISO 8601 date and time such as 2026-05-04T10:00, not {value!r}")
        raise  # unreachable: fail exits
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=LONDON)


def schedule_command(
    now: Annotated[str | None, typer.Option(help=NOW_HELP)] = None,
) -> None:
    """Compute due survey waves and reminders, and queue the messages the contact rules allow."""
    from cli import console, progress, run
    from surveys.scheduling import schedule

    at = parse_now(now)

    async def go() -> Any:
        with progress() as bar:
            task = bar.add_task("scheduling", total=None)

            def step(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            return await schedule(at, on_progress=step)

    s = run(go)
    console.print(
        f"schedule: {s.persons:,} people checked, {s.invitations:,} invitations and {s.reminders:,} "
        f"reminders queued, {s.waiting:,} waiting, {s.not_contacted:,} not contacted, "
        f"{s.expired:,} expired, {s.completed:,} completed ({s.seconds:.1f} s)"
    )


def dispatch_command(
    now: Annotated[str | None, typer.Option(help=NOW_HELP)] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check and render, but send nothing.")] = False,
    limit: Annotated[int | None, typer.Option(min=1, help="Send at most this many messages.")] = None,
) -> None:
    """Send the queued messages that are due (retries with backoff; never the same message twice)."""
    from cli import console, run
    from surveys.outbox import dispatch

    at = parse_now(now)
    s = run(lambda: dispatch(at, dry_run=dry_run, limit=limit))
    if s.quiet_hours:
        from surveys.scheduling import configured_policy

        p = configured_policy()
        console.print(
            f"dispatch: quiet hours ({p.quiet_start:%H:%M}-{p.quiet_end:%H:%M} London time); nothing sent"
        )
        return
    if dry_run:
        console.print(
            f"dispatch (dry run): {s.would_send:,} would be sent, {s.cancelled:,} would be cancelled, "
            f"{s.postponed:,} postponed; nothing was changed"
        )
        return
    channels = ", ".join(f"{k} {v:,}" for k, v in sorted(s.by_channel.items())) or "none"
    console.print(
        f"dispatch: {s.sent:,} sent ({channels}), {s.retried:,} to retry, {s.dead:,} failed for good, "
        f"{s.cancelled:,} cancelled, {s.postponed:,} postponed ({s.seconds:.1f} s)"
    )


def link_command(
    provider: Annotated[str, typer.Option(help="Provider code, e.g. VS.")],
    referral: Annotated[str, typer.Option(help="The provider's referral id.")],
    wave: Annotated[Wave, typer.Option(help="baseline, exit or follow_up")],
) -> None:
    """Print a fresh phone-mode survey link for a practitioner completing the survey with the person."""
    from access import audit
    from cli import Fail, console, run
    from settings import get_settings
    from surveys.scheduling import phone_link

    async def go() -> str:
        try:
            url, link_id = await phone_link(provider, referral, wave.value, get_settings().public_base_url)
        except LookupError as exc:
            raise Fail(str(exc).strip("'\"")) from None
        await audit.record(
            "link.phone", actor="cli", subject_type="referral", subject_id=f"{provider}/{referral}",
            detail={"wave": wave.value, "link": link_id},
        )  # fmt: skip
        return url

    console.print(run(go), highlight=False, soft_wrap=True)


class Lang(StrEnum):
    en = "en"
    cy = "cy"


def contact_preference_command(
    provider: Annotated[str, typer.Option(help="Provider code, e.g. VS.")],
    referral: Annotated[str, typer.Option(help="The provider's referral id.")],
    lang: Annotated[
        Lang | None, typer.Option(help="The language the person reads messages and surveys in.")
    ] = None,
    opt_out: Annotated[
        bool, typer.Option("--opt-out", help='The person said "stop": no provider invites them again.')
    ] = False,
    opt_in: Annotated[bool, typer.Option("--opt-in", help="The person asked to be invited again.")] = False,
    snooze_until: Annotated[
        dt.datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help='"Not now": nothing is sent before 08:00 on this date.'),
    ] = None,
) -> None:
    """Record a person's contact preference on their behalf (every provider honours it), and show it."""
    from access import audit
    from cli import Fail, console, run
    from surveys import links, scheduling
    from surveys.tables import ContactPreference, Organisation

    if opt_out and opt_in:
        raise typer.BadParameter("give --opt-out or --opt-in, not both")

    async def go() -> dict[str, Any]:
        found = await links.referral_pk(provider, referral)
        if found is None:
            raise Fail(f"no referral {referral!r} of {provider}")
        _, person_key = found
        org = await Organisation.select(Organisation.id).where(Organisation.code == provider).first()
        by = org["id"] if org else None
        changes: dict[str, Any] = {}
        if lang is not None:
            await scheduling.set_language(person_key, lang.value, "cli", provider_id=by)
            changes["lang"] = lang.value
        if opt_out:
            await scheduling.opt_out(person_key, "cli", provider_id=by)
            changes["opted_out"] = True
        if opt_in:
            await scheduling.opt_in(person_key, "cli", provider_id=by)
            changes["opted_out"] = False
        if snooze_until is not None:
            until = dt.datetime.combine(snooze_until.date(), dt.time(8, 0), tzinfo=LONDON)
            await scheduling.snooze(person_key, until, "cli", provider_id=by)
            changes["snoozed_until"] = until.date().isoformat()
        if changes:
            await audit.record(
                "person.contact_preference", actor="cli", subject_type="referral",
                subject_id=f"{provider}/{referral}", detail=changes,
            )  # fmt: skip
        pref = await ContactPreference.select().where(ContactPreference.person_key == person_key).first()
        return dict(pref or {})

    pref = run(go)
    snoozed = pref.get("snoozed_until")
    console.print(
        f"language {pref.get('lang') or 'en'}; "
        + ("opted out" if pref.get("opted_out_at") else "not opted out")
        + (f"; snoozed until {snoozed.astimezone(LONDON):%Y-%m-%d %H:%M}" if snoozed else ""),
        highlight=False,
    )


def invitations_command(
    status: Annotated[InvitationStatus | None, typer.Option(help="Only invitations in this state.")] = None,
    provider: Annotated[str | None, typer.Option(help="Only invitations asking about this provider.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="At most this many, newest first.")] = 50,
    output: Annotated[Format, typer.Option("--format", help="table or json")] = Format.table,
) -> None:
    """List invitations (newest first) with their waves and delivery state."""
    from rich.table import Table

    from access.keys import Principal
    from cli import console, run
    from surveys.outreach_services import list_invitations

    cli_principal = Principal(
        key_id=0, key_prefix="cli", organisation_id=0, organisation_code="", role="admin"
    )
    page = run(lambda: list_invitations(cli_principal, status.value if status else None, provider, 1, limit))
    if output is Format.json:
        import msgspec

        console.print_json(msgspec.json.encode(page).decode())
        return
    table = Table("id", "status", "channel", "created", "sent", "expires", "reminders", "waves")
    for i in page.items:
        table.add_row(
            str(i.id), i.status, i.channel, f"{i.created_at:%Y-%m-%d %H:%M}",
            f"{i.sent_at:%Y-%m-%d %H:%M}" if i.sent_at else "", f"{i.expires_at:%Y-%m-%d}",
            str(i.reminders_sent), ", ".join(f"{x.provider}/{x.referral_id} {x.wave}" for x in i.items),
        )  # fmt: skip
    console.print(table)
    console.print(f"{len(page.items):,} of {page.total:,}")


def register(app: typer.Typer) -> None:
    """Add the commands to the main `vop` app as top-level commands."""
    app.command("schedule")(schedule_command)
    app.command("dispatch")(dispatch_command)
    app.command("link")(link_command)
    app.command("invitations")(invitations_command)
    app.command("contact-preference")(contact_preference_command)


__all__ = ["parse_now", "register"]
