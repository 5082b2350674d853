"""The `vop` command: serve, migrate, import, organisations, keys, demo data.

Errors are one clear line (and a table of rows for rejected files) with a non-zero exit code, never a
traceback. Anything that can take more than a second shows progress.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import sys
from collections.abc import Awaitable, Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from surveys.outreach_cli import register as register_outreach

app = typer.Typer(
    name="vop",
    help="Victim Outcomes Platform: coordinated outcome surveys, MoJ metrics and victims' own words.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
orgs_app = typer.Typer(help="Organisations: providers and the commissioner.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys: one per organisation and role, shown once.", no_args_is_help=True)
import_app = typer.Typer(help="Import CSV or XLSX files (all or nothing).", no_args_is_help=True)
export_app = typer.Typer(help="Export workbooks and CSV (with disclosure control).", no_args_is_help=True)
text_app = typer.Typer(
    help="Victims' own words: redaction, sentiment, themes, safeguarding.", no_args_is_help=True
)
app.add_typer(orgs_app, name="orgs")
app.add_typer(keys_app, name="keys")
app.add_typer(import_app, name="import")
app.add_typer(export_app, name="export")
app.add_typer(text_app, name="text")
register_outreach(app)  # schedule, dispatch, link, invitations

console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
T = TypeVar("T")


class Fail(Exception):
    """A user-facing failure: its message is printed as one line and the exit code is 1."""


def fail(message: str) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(1)


def run(make: Callable[[], Awaitable[T]], *, open_db: bool = True) -> T:
    """Run a coroutine with the database opened, turning known failures into one clear line."""
    try:
        from settings import SettingsError, get_settings

        settings = get_settings()
    except SettingsError:
        raise typer.Exit(2) from None
    for note in settings.notes:
        err.print(f"[yellow]note:[/] {note}", highlight=False)

    async def main() -> T:
        from surveys import db

        if open_db:
            await db.start()
        try:
            return await make()
        finally:
            if open_db:
                await db.stop()

    try:
        return asyncio.run(main())
    except Fail as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot reach the database ({settings.database_url.split('@')[-1]}): {exc.strerror or exc}")
    except Exception as exc:
        from surveys.tabular import FileRejected

        if isinstance(exc, FileRejected):
            show_problems(exc)
            raise typer.Exit(1) from None
        if type(exc).__name__ in {"OperationalError", "UndefinedTableError", "InvalidCatalogNameError"}:
            fail(f"database problem: {exc} (run `vop migrate` first?)")
        raise
    raise AssertionError("unreachable")


def show_problems(exc: Any) -> None:
    table = Table(title=f"Not imported: {exc.total} problem(s); nothing was stored", title_justify="left")
    table.add_column("row", justify="right")
    table.add_column("column")
    table.add_column("reason")
    for p in exc.problems:
        table.add_row(str(p.row) if p.row else "-", p.column or "-", p.reason)
    err.print(table)
    if exc.total > len(exc.problems):
        err.print(f"... and {exc.total - len(exc.problems)} more")


def progress() -> Progress:
    return Progress(
        SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed:,}"),
        TimeElapsedColumn(), console=err, transient=False,
    )  # fmt: skip


def version_callback(value: bool) -> None:
    if value:
        from app import app_version

        console.print(f"vop {app_version()}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool, typer.Option("--version", callback=version_callback, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """Victim Outcomes Platform."""


@app.command()
def migrate() -> None:
    """Apply pending database migrations."""
    from surveys.migrate import migrate as apply

    run(lambda: apply(quiet=True))
    console.print("[green]database is up to date[/]")


async def _demo(year: str, seed: int, scale: float) -> dict[str, int]:
    from surveys.demo import DemoPlan, load_demo

    with progress() as bar:
        task = bar.add_task("demo data", total=None)

        def step(what: str, n: int) -> None:
            bar.update(task, description=what, completed=n)

        return await load_demo(DemoPlan(year=year, seed=seed, scale=scale), step)


@app.command()
def demo(
    year: Annotated[str, typer.Option(help="Financial year to generate, e.g. 2025-26.")] = "2025-26",
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same data.")] = 2025,
    scale: Annotated[
        float, typer.Option(min=0.001, max=100.0, help="Multiply the volumes (1.0 = one PCC).")
    ] = 1.0,
) -> None:
    """Generate a deterministic synthetic year of referrals (and responses) into the database."""
    from surveys.demo import DemoPlan
    from surveys.migrate import migrate as apply

    try:
        DemoPlan(year=year).start  # noqa: B018 - validates the year before any work
    except ValueError as exc:
        fail(str(exc))

    async def go() -> dict[str, int]:
        await apply(quiet=True)
        return await _demo(year, seed, scale)

    counts = run(go)
    console.print(
        f"demo year {year}: {counts['referrals']:,} referrals ({counts['created']:,} new), "
        f"{counts['responses']:,} new responses"
    )


@app.command()
def serve(
    demo_data: Annotated[
        bool, typer.Option("--demo", help="On an empty database, load the demo year and print an admin key.")
    ] = False,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Start the platform (applies pending migrations first)."""
    import uvicorn

    from surveys.migrate import migrate as apply

    async def prepare() -> str | None:
        await apply(quiet=True)
        if not demo_data:
            return None
        from access.keys import create_key
        from surveys.tables import Referral

        if await Referral.count() == 0:
            await _demo("2025-26", 2025, 1.0)
        key, _ = await create_key("OPCC", "admin", label="vop serve --demo")
        return key

    key = run(prepare)
    base = f"http://{host}:{port}"
    if key:
        console.print(f"[bold]admin key for exploring the API:[/] {key}", highlight=False)
        console.print(f"  curl -H 'Authorization: Bearer {key}' {base}/api/v1/referrals", highlight=False)
    console.print(f"vop on {base}  (API docs: {base}/schema/swagger, health: {base}/health)", highlight=False)
    uvicorn.run("app:create_app", factory=True, host=host, port=port, log_level="warning", access_log=False)


@app.command()
def secret() -> None:
    """Print a new random secret for VOP_SECRET_KEY."""
    console.print(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())


def _read_file(path: Path) -> bytes:
    if not path.exists():
        fail(f"no such file: {path}")
    if path.is_dir():
        fail(f"{path} is a folder, not a file")
    return path.read_bytes()


@import_app.command("organisations")
def import_organisations(
    file: Annotated[Path, typer.Argument(help="CSV or XLSX in the organisations format.")],
) -> None:
    """Create or update organisations (code, name, kind, service)."""
    from surveys.importing import import_organisations as do_import

    data = _read_file(file)
    result = run(lambda: do_import(data, file.name))
    console.print(f"organisations: {result.rows} rows, {result.created} created, {result.updated} updated")


@import_app.command("referrals")
def import_referrals(
    file: Annotated[Path, typer.Argument(help="CSV or XLSX in the referrals format.")],
    provider: Annotated[str | None, typer.Option(help="Only accept rows of this provider.")] = None,
) -> None:
    """Create or update referrals; re-importing a referral_id updates it."""
    from surveys.importing import import_referrals as do_import

    data = _read_file(file)

    async def go() -> Any:
        with progress() as bar:
            bar.add_task(f"importing {file.name}", total=None)
            return await do_import(data, file.name, only_provider=provider)

    result = run(go)
    console.print(f"referrals: {result.rows:,} rows, {result.created:,} created, {result.updated:,} updated")


@import_app.command("responses")
def import_responses(
    file: Annotated[Path, typer.Argument(help="CSV or XLSX in the responses format.")],
    provider: Annotated[str | None, typer.Option(help="Only accept rows of this provider.")] = None,
) -> None:
    """Store historical paper or phone responses; the same rows imported twice are stored once."""
    from surveys.responses import import_responses as do_import

    data = _read_file(file)

    async def go() -> Any:
        with progress() as bar:
            bar.add_task(f"importing {file.name}", total=None)
            return await do_import(data, file.name, only_provider=provider)

    result = run(go)
    console.print(f"responses: {result.rows:,} rows, {result.created:,} stored (the rest were already there)")


class Kind(StrEnum):
    provider = "provider"
    commissioner = "commissioner"


@orgs_app.command("add")
def orgs_add(
    code: Annotated[str, typer.Argument(help="Short stable code, e.g. VS.")],
    name: Annotated[str, typer.Argument(help="Display name.")],
    kind: Annotated[Kind, typer.Option(help="provider or commissioner")] = Kind.provider,
    service: Annotated[str | None, typer.Option(help="general sav cse da hate other (providers)")] = None,
) -> None:
    """Add an organisation."""
    from surveys import services

    async def go() -> None:
        try:
            await services.add_organisation(code, name, kind.value, service)
        except (services.Invalid, services.Conflict) as exc:
            raise Fail(str(exc)) from None

    run(go)
    console.print(f"added {code}")


@orgs_app.command("list")
def orgs_list() -> None:
    """List organisations."""
    from surveys import services

    rows = run(services.list_organisations)
    table = Table("code", "name", "kind", "service")
    for r in rows:
        table.add_row(r["code"], r["name"], r["kind"], r["service"] or "")
    console.print(table)


class Role(StrEnum):
    provider = "provider"
    opcc = "opcc"
    vrg = "vrg"
    admin = "admin"


@keys_app.command("create")
def keys_create(
    org: Annotated[str, typer.Option(help="Organisation code the key belongs to.")],
    role: Annotated[Role, typer.Option(help="provider, opcc, vrg or admin")],
    label: Annotated[str, typer.Option(help="What the key is for.")] = "",
) -> None:
    """Create an API key; it is printed once and stored only as a hash."""
    from access.keys import KeyError_, create_key

    async def go() -> str:
        try:
            key, _ = await create_key(org, role.value, label)
        except KeyError_ as exc:
            raise Fail(str(exc)) from None
        return key

    key = run(go)
    err.print(f"key for {org} ({role.value}); it will not be shown again:")
    console.print(key, highlight=False)


@keys_app.command("revoke")
def keys_revoke(
    key: Annotated[str, typer.Argument(help="The key's id or its shown prefix (vop_XXXXXXXX).")],
) -> None:
    """Revoke a key at once."""
    from access.keys import revoke_key

    count = run(lambda: revoke_key(key))
    if not count:
        fail(f"no live key matches {key!r}")
    console.print(f"revoked {count} key(s)")


@keys_app.command("list")
def keys_list() -> None:
    """List keys (prefixes only)."""
    from access.tables import ApiKey

    async def go() -> list[dict[str, Any]]:
        return await ApiKey.select(
            ApiKey.id, ApiKey.prefix, ApiKey.organisation.code, ApiKey.role, ApiKey.label, ApiKey.created_at,
            ApiKey.revoked_at,
        ).order_by(ApiKey.id).run()  # fmt: skip

    table = Table("id", "prefix", "org", "role", "label", "created", "revoked")
    for r in run(go):
        table.add_row(
            str(r["id"]),
            r["prefix"],
            r["organisation.code"],
            r["role"],
            r["label"],
            str(r["created_at"])[:19],
            str(r["revoked_at"] or "")[:19],
        )
    console.print(table)


class MetricsFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


@app.command()
def metrics(
    period: Annotated[str, typer.Option(help="2025-26, 2025-26-H2, 2025-26-Q3 or 2025-07-01..2025-09-30")],
    by: Annotated[str, typer.Option(help="Breakdowns, comma-separated, e.g. provider,crime_group")] = "",
    provider: Annotated[str | None, typer.Option(help="Only this provider's clients.")] = None,
    output_format: Annotated[
        MetricsFormat, typer.Option("--format", help="table, json or csv")
    ] = MetricsFormat.table,
) -> None:
    """Compute every figure of the metrics contract (unsuppressed: for the OPCC and providers' own use)."""
    import json

    from outcomes.services import compute_metrics

    attrs = [b.strip() for b in by.split(",") if b.strip()]

    async def go() -> dict[str, Any]:
        try:
            return await compute_metrics(period, attrs, provider)
        except ValueError as exc:
            raise Fail(str(exc)) from None

    result = run(go)
    if output_format is MetricsFormat.json:
        print(json.dumps(result, indent=1))
    elif output_format is MetricsFormat.csv:
        from exports.csv_export import metrics_to_csv

        sys.stdout.write(metrics_to_csv(result, suppress=False))
    else:
        show_metrics(result)


def _cell(value: Any) -> str:
    if isinstance(value, dict):
        if value.get("pct") is None:
            return f"{value['numerator']}/{value['denominator']}"
        low, high = value["ci95"]
        return f"{value['pct']:.1f}% ({value['numerator']}/{value['denominator']}; {low:.1f}-{high:.1f})"
    if isinstance(value, float):
        return f"{value:.2f}"
    return "" if value is None else f"{value:,}" if isinstance(value, int) else str(value)


def show_metrics(result: dict[str, Any]) -> None:
    period = result["period"]
    groups = result["groups"][:12]
    table = Table(title=f"{period['code']} ({period['start']} to {period['end']})", title_justify="left")
    table.add_column("metric")
    for g in groups:
        table.add_column(", ".join(f"{k}={v}" for k, v in g["by"].items()) or "whole area", justify="right")
    for name in result["groups"][0]["metrics"]:
        table.add_row(name, *(_cell(g["metrics"].get(name)) for g in groups))
    console.print(table)
    if len(result["groups"]) > len(groups):
        err.print(
            f"showing {len(groups)} of {len(result['groups'])} groups; use --format json or csv for all"
        )


def _write_export(content: bytes | str, output: Path) -> None:
    output.write_bytes(content.encode() if isinstance(content, str) else content)
    console.print(f"written {output} ({output.stat().st_size:,} bytes)")


@export_app.command("moj-return")
def export_moj_return(
    period: Annotated[str, typer.Option(help="e.g. 2025-26")],
    template: Annotated[
        Path | None, typer.Option(help="Another layout file (TOML) instead of the default.")
    ] = None,
    output: Annotated[
        Path | None, typer.Option(help="File to write (default moj-return-PERIOD.xlsx).")
    ] = None,
) -> None:
    """The MoJ outcomes and outputs return as an Excel workbook."""
    from access import audit
    from exports.services import moj_return

    if template is not None and not template.exists():
        fail(f"no such layout file: {template}")

    async def go() -> bytes:
        try:
            content = await moj_return(period, template)
        except ValueError as exc:
            raise Fail(str(exc)) from None
        await audit.record("export.moj_return", actor="cli", detail={"period": period})
        return content

    _write_export(run(go), output or Path(f"moj-return-{period}.xlsx"))


@export_app.command("provider-report")
def export_provider_report(
    provider: Annotated[str, typer.Option(help="Provider code, e.g. VS")],
    period: Annotated[str, typer.Option(help="The last quarter or year of the report, e.g. 2025-26-Q4")],
    output: Annotated[Path | None, typer.Option(help="File to write.")] = None,
) -> None:
    """A provider's outcome improvement over the last 8 quarters, against all providers."""
    from access import audit
    from exports.services import provider_report

    async def go() -> bytes:
        try:
            content = await provider_report(provider, period)
        except ValueError as exc:
            raise Fail(str(exc)) from None
        await audit.record(
            "export.provider_report", actor="cli", detail={"period": period, "provider": provider}
        )
        return content

    _write_export(run(go), output or Path(f"provider-report-{provider}-{period}.xlsx"))


@export_app.command("csv")
def export_csv(
    period: Annotated[str, typer.Option(help="e.g. 2025-26")],
    by: Annotated[str, typer.Option(help="Breakdowns, comma-separated")] = "",
    output: Annotated[Path | None, typer.Option(help="File to write (default: standard output).")] = None,
) -> None:
    """Any metrics table in tidy CSV form, with disclosure control."""
    from exports.services import metrics_csv

    attrs = [b.strip() for b in by.split(",") if b.strip()]

    async def go() -> str:
        try:
            return await metrics_csv(period, attrs)
        except ValueError as exc:
            raise Fail(str(exc)) from None

    text = run(go)
    if output:
        _write_export(text, output)
    else:
        sys.stdout.write(text)


@text_app.command("run")
def text_run(
    period: Annotated[str | None, typer.Option(help="Only answers completed in this period.")] = None,
    reprocess: Annotated[bool, typer.Option(help="Analyse again answers already analysed.")] = False,
) -> None:
    """Analyse stored free-text answers (redaction, sentiment, themes, safeguarding alerts)."""
    from analysis.services import process

    window = None
    if period:
        from outcomes.periods import parse_period

        try:
            p = parse_period(period)
        except ValueError as exc:
            fail(str(exc))
        window = (p.start, p.end)

    async def go() -> dict[str, int]:
        with progress() as bar:
            task = bar.add_task("analysing answers", total=None)
            return await process(window, reprocess, on_progress=lambda n, _: bar.update(task, completed=n))

    counts = run(go)
    console.print(
        f"{counts['answers']:,} answers analysed; {counts['alerts']:,} safeguarding alert(s) raised"
    )


@text_app.command("classify")
def text_classify(
    file: Annotated[
        Path | None, typer.Argument(help='JSON lines {"id", "text"}; standard input if absent.')
    ] = None,
) -> None:
    """Classify any comments: JSON lines in, JSON lines {id, redacted, sentiment, themes, safeguarding} out.

    Runs on this machine only and stores nothing, so an analyst can use it on any spreadsheet of comments.
    """
    import json

    from analysis.services import analyser

    source = file.open(encoding="utf-8") if file else sys.stdin
    items = []
    for number, line in enumerate(source, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            items.append((item["id"], str(item["text"])))
        except (ValueError, KeyError, TypeError):
            fail(f'line {number}: expected a JSON object with "id" and "text"')
    pipeline = analyser()
    for start in range(0, len(items), 1000):
        chunk = items[start : start + 1000]
        for (ident, _), found in zip(chunk, pipeline.analyse([t for _, t in chunk]), strict=True):
            out = {
                "id": ident,
                "redacted": found["redacted"],
                "sentiment": found["sentiment"],
                "themes": found["themes"],
                "safeguarding": bool(found["safeguarding"]),
            }
            print(json.dumps(out, ensure_ascii=False))


@text_app.command("retrain")
def text_retrain(
    output: Annotated[Path | None, typer.Option(help="Model folder (default: the packaged models).")] = None,
) -> None:
    """Retrain the theme model on the labelled corpus plus the reviewers' confirmed labels."""
    from analysis.services import analyser, confirmed_labels
    from analysis.themes import MODEL_DIR, TRAIN_FILE, load_labelled, model_path, train

    reviewed = run(confirmed_labels)
    rows = list(load_labelled(TRAIN_FILE)) + [{"text": text, "themes": themes} for text, themes in reviewed]
    with progress() as bar:
        bar.add_task(f"training on {len(rows):,} answers ({len(reviewed):,} reviewed)", total=None)
        model = train(rows=rows, save_to=output or MODEL_DIR)
    analyser.cache_clear()
    console.print(
        f"theme model written to {model_path(model.codebook_version, output or MODEL_DIR)} "
        f"(training data sha256 {model.training_sha256[:12]}...)"
    )


@app.command()
def erase(
    person_id: Annotated[str, typer.Option("--person-id", help="The referrer's identifier for the person.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Remove a person from every table (referrals, answers, free text, links, contact ledger)."""
    from access import audit
    from access.erasure import erase_person

    if not yes and not typer.confirm("Erase everything held about this person? This cannot be undone"):
        raise typer.Exit(1)

    async def go() -> dict[str, int]:
        counts = await erase_person(person_id)
        await audit.record("person.erase", actor="cli", detail={"rows": counts})
        return counts

    counts = run(go)
    if not counts:
        console.print("nothing is held about this person")
    for table, count in counts.items():
        console.print(f"{table}: {count} row(s) erased")


@app.command("subject-access")
def subject_access(
    person_id: Annotated[str, typer.Option("--person-id", help="The referrer's identifier for the person.")],
    output: Annotated[
        Path | None, typer.Option(help="Write the JSON here instead of standard output.")
    ] = None,
) -> None:
    """Export everything held about a person as JSON (a subject access request)."""
    import json

    from access import audit
    from access.erasure import subject_access as collect

    async def go() -> dict[str, Any]:
        found = await collect(person_id)
        await audit.record(
            "person.subject_access",
            actor="cli",
            detail={"tables": {k: len(v) for k, v in found["tables"].items()}},
        )
        return found

    text = json.dumps(run(go), indent=2, ensure_ascii=False)
    if output:
        output.write_text(text)
        err.print(f"written to {output}")
    else:
        print(text)


@app.command()
def retention(
    now: Annotated[str | None, typer.Option(help="Act as if today were this date (YYYY-MM-DD).")] = None,
    answer_years: Annotated[int, typer.Option(help="Pseudonymise answers older than this many years.")] = 6,
) -> None:
    """Delete contact details whose purpose has ended and pseudonymise old answers."""
    import datetime as dt

    from access import audit
    from access.erasure import erase_spent_contact_details, pseudonymise_old_answers

    try:
        today = dt.date.fromisoformat(now) if now else dt.date.today()
    except ValueError:
        fail(f"--now must be a date YYYY-MM-DD, got {now!r}")

    async def go() -> tuple[int, int]:
        contacts = await erase_spent_contact_details(today)
        old = await pseudonymise_old_answers(today, answer_years)
        await audit.record(
            "retention.run", actor="cli", detail={"contacts_erased": contacts, "pseudonymised": old}
        )
        return contacts, old

    contacts, old = run(go)
    console.print(
        f"contact details erased on {contacts:,} referral(s); {old:,} old referral(s) pseudonymised"
    )


@app.command("audit")
def audit_log(
    action: Annotated[str | None, typer.Option(help="Only this action, e.g. referral.read")] = None,
    actor: Annotated[str | None, typer.Option(help="Only this actor, e.g. key:vop_AbCdEfGh")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000)] = 50,
    output_format: Annotated[str, typer.Option("--format", help="table or json")] = "table",
) -> None:
    """Query the audit trail, newest first."""
    import json

    from access import audit

    rows = run(lambda: audit.query(action=action, actor=actor, limit=limit))
    if output_format == "json":
        print(json.dumps(rows, default=str, indent=1))
        return
    table = Table("at (UTC)", "actor", "role", "org", "action", "subject", "client")
    for r in rows:
        table.add_row(
            str(r["at"])[:19],
            r["actor"],
            r["role"],
            r["organisation"],
            r["action"],
            f"{r['subject_type']} {r['subject_id']}".strip(),
            r["client"],
        )
    console.print(table)


def main() -> None:
    """Entry point of the `vop` console script."""
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
