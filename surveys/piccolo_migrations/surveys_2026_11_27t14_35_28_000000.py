from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-11-27T14:35:28:000000"
VERSION = "1.38.0"
DESCRIPTION = "composite indexes Piccolo cannot declare"


class RawSQL(Table, tablename="referral", schema=None):
    """Only its engine is used, to run raw SQL."""


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="surveys", description=DESCRIPTION)

    async def create_indexes() -> None:
        # A referral is unique per provider (re-imports update it).
        for sql in (
            "CREATE UNIQUE INDEX referral_provider_referral_id ON referral (provider, referral_id)",
            # Covering indexes: the metrics read episodes' responses and distinct people from these alone.
            "CREATE INDEX response_referral_wave ON response (referral, wave, completed_at, id)",
            "CREATE INDEX referral_person_period ON referral "
            "(person_key, referral_date, support_start, support_end, provider)",
        ):
            await RawSQL.raw(sql).run()

    async def drop_indexes() -> None:
        for name in ("referral_provider_referral_id", "response_referral_wave", "referral_person_period"):
            await RawSQL.raw(f"DROP INDEX IF EXISTS {name}").run()

    manager.add_raw(create_indexes)
    manager.add_raw_backwards(drop_indexes)
    return manager
