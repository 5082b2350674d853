"""Piccolo configuration: the engine comes from VOP_DATABASE_URL, the apps are the domain packages."""

from __future__ import annotations

from piccolo.conf.apps import AppRegistry

from settings import get_settings
from surveys.db import build_engine

DB = build_engine(get_settings().database_url)

APP_REGISTRY = AppRegistry(
    apps=[
        "access.piccolo_app",
        "surveys.piccolo_app",
        "analysis.piccolo_app",
    ]
)
