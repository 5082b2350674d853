"""Piccolo app of access control and the audit trail."""

from pathlib import Path

from piccolo.conf.apps import AppConfig

from access.tables import ApiKey, AuditEvent

APP_CONFIG = AppConfig(
    app_name="access",
    migrations_folder_path=str(Path(__file__).parent / "piccolo_migrations"),
    table_classes=[ApiKey, AuditEvent],
    migration_dependencies=["surveys.piccolo_app"],
    commands=[],
)
