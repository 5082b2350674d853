from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-11-27T14:47:22:000000"
VERSION = "1.38.0"
DESCRIPTION = "outbox and invitation indexes Piccolo cannot declare"


class RawSQL(Table, tablename="invitation", schema=None):
    """Only its engine is used, to run raw SQL."""


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="surveys", description=DESCRIPTION)

    async def create_indexes() -> None:
        # At most one open invitation per person, whatever races two schedulers run (partial index:
        # SQLite 3.8+ and PostgreSQL). The dispatcher claims due messages by (status, next_attempt_at).
        for sql in (
            "CREATE UNIQUE INDEX invitation_one_open ON invitation (person_key) "
            "WHERE status IN ('queued', 'sent')",
            "CREATE INDEX outbox_message_due ON outbox_message (status, next_attempt_at)",
            "CREATE INDEX link_item_referral_wave ON link_item (referral, wave)",
        ):
            await RawSQL.raw(sql).run()

    async def drop_indexes() -> None:
        for name in ("invitation_one_open", "outbox_message_due", "link_item_referral_wave"):
            await RawSQL.raw(f"DROP INDEX IF EXISTS {name}").run()

    manager.add_raw(create_indexes)
    manager.add_raw_backwards(drop_indexes)
    return manager
