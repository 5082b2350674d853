"""Piccolo app of the surveys domain."""

from pathlib import Path

from piccolo.conf.apps import AppConfig

from surveys.tables import (
    CallTask,
    ContactEvent,
    ContactPreference,
    DeliveryAttempt,
    Invitation,
    LinkItem,
    Organisation,
    OutboxMessage,
    Referral,
    Response,
    SurveyLink,
)

APP_CONFIG = AppConfig(
    app_name="surveys",
    migrations_folder_path=str(Path(__file__).parent / "piccolo_migrations"),
    table_classes=[
        Organisation,
        Referral,
        Response,
        SurveyLink,
        LinkItem,
        ContactPreference,
        Invitation,
        ContactEvent,
        OutboxMessage,
        DeliveryAttempt,
        CallTask,
    ],
    migration_dependencies=[],
    commands=[],
)
