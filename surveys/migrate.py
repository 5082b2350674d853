"""Applying the committed migrations of every app, and emptying tables (for tests and demos)."""

from __future__ import annotations

import contextlib
import io

from piccolo.apps.migrations.commands.forwards import run_forwards

from surveys import db


class MigrationFailed(RuntimeError):
    pass


async def migrate(quiet: bool = False) -> str:
    """Apply pending migrations of all apps; returns Piccolo's report. Raises MigrationFailed."""
    engine = db.current_engine()
    await engine.prep_database()
    out = io.StringIO()
    with contextlib.redirect_stdout(out) if quiet else contextlib.nullcontext():
        result = await run_forwards(app_name="all")
    if not result.success:
        raise MigrationFailed(result.message or "migration failed")
    return out.getvalue()


def project_tables() -> list[str]:
    """Every table of the registered apps, children before parents (so RESTRICT keys never block)."""
    from piccolo.conf.apps import Finder
    from piccolo.table import sort_table_classes

    ordered = sort_table_classes(Finder().get_table_classes())  # parents first
    return [table._meta.tablename for table in reversed(ordered)]


async def truncate_all() -> None:
    """Delete every row of the project's tables (the schema and the migration record stay)."""
    engine = db.current_engine()
    tables = project_tables()
    if db.is_sqlite(engine):
        async with db.write_transaction() as tx:
            for table in tables:
                await tx.connection.execute(f"DELETE FROM {table}")
    else:
        await engine.run_ddl(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
