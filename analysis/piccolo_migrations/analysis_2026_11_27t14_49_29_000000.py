from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-11-27T14:49:29:000000"
VERSION = "1.38.0"
DESCRIPTION = "one analysis per answer field"


class RawSQL(Table, tablename="text_analysis", schema=None):
    """Only its engine is used, to run raw SQL."""


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="analysis", description=DESCRIPTION)

    async def create_index() -> None:
        # Re-processing replaces an answer field's analysis instead of adding a second one.
        await RawSQL.raw("CREATE UNIQUE INDEX text_analysis_response_field ON text_analysis (response, field)").run()

    async def drop_index() -> None:
        await RawSQL.raw("DROP INDEX IF EXISTS text_analysis_response_field").run()

    manager.add_raw(create_index)
    manager.add_raw_backwards(drop_index)
    return manager
