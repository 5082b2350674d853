"""Piccolo app of the analysis domain."""

from pathlib import Path

from piccolo.conf.apps import AppConfig

from analysis.tables import EmergingTopic, SafeguardingAlert, TextAnalysis, ThemeReview, YouSaidWeDid

APP_CONFIG = AppConfig(
    app_name="analysis",
    migrations_folder_path=str(Path(__file__).parent / "piccolo_migrations"),
    table_classes=[TextAnalysis, SafeguardingAlert, ThemeReview, EmergingTopic, YouSaidWeDid],
    migration_dependencies=["surveys.piccolo_app"],
    commands=[],
)
