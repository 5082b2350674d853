"""The Litestar application: `create_app()` wires the domains' controllers, the guard and the database."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Awaitable, Callable
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import openapi_ui_bundles.swagger_ui as swagger_ui
from litestar import Litestar, Request, Response, Router, get
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.static_files import create_static_files_router
from litestar.status_codes import HTTP_404_NOT_FOUND, HTTP_409_CONFLICT, HTTP_422_UNPROCESSABLE_ENTITY

from access import logging as access_logging
from access.controllers import DataProtectionController
from access.policy import check_request, provide_principal, public
from analysis.controllers import AlertController, ReviewController
from exports.controllers import ExportController, VrgController
from outcomes.controllers import MetricsController
from settings import get_settings
from surveys import db, services
from surveys.controllers import OrganisationController, ReferralController, ResponseController
from surveys.outreach_controllers import CallTaskController, InvitationController, ReferralOutreachController
from surveys.pages import route_handlers as survey_page_handlers
from surveys.pages import template_config as survey_template_config
from surveys.pages.assets import install_on_startup as install_survey_assets
from surveys.schemas import Health
from surveys.tabular import FileRejected

ASSETS = "/schema/assets"


def app_version() -> str:
    try:
        return version("vop")
    except PackageNotFoundError:
        return "0.0.0+source"


@get("/health", operation_id="health", opt=public(), tags=["platform"])
async def health() -> Health:
    """Liveness and database reachability."""
    engine = db.current_engine()
    await engine.run_ddl("SELECT 1")
    return Health(status="ok", database=engine.engine_type, version=app_version())


def file_rejected(_: Request[Any, Any, Any], exc: FileRejected) -> Response[dict[str, Any]]:
    return Response(
        {
            "detail": f"the file was not imported: {exc.total} problem(s); nothing was stored",
            "total": exc.total,
            "problems": [p.as_dict() for p in exc.problems],
        },
        status_code=HTTP_422_UNPROCESSABLE_ENTITY,
    )


def invalid(_: Request[Any, Any, Any], exc: services.Invalid) -> Response[dict[str, Any]]:
    return Response(
        {"detail": str(exc), "errors": [{"field": f, "reason": r} for f, r in exc.problems]},
        status_code=HTTP_422_UNPROCESSABLE_ENTITY,
    )


def conflict(_: Request[Any, Any, Any], exc: services.Conflict) -> Response[dict[str, Any]]:
    return Response({"detail": str(exc)}, status_code=HTTP_409_CONFLICT)


def not_found(_: Request[Any, Any, Any], exc: services.NotFound) -> Response[dict[str, Any]]:
    return Response({"detail": "not found"}, status_code=HTTP_404_NOT_FOUND)


def openapi_config() -> OpenAPIConfig:
    # The docs page loads its scripts from an installed package, never from a CDN (works offline).
    swagger = SwaggerRenderPlugin(
        js_url=f"{ASSETS}/swagger-ui-bundle.js",
        css_url=f"{ASSETS}/swagger-ui.css",
        standalone_preset_js_url=f"{ASSETS}/swagger-ui-standalone-preset.js",
        path="/swagger",
        favicon=f"<link rel='icon' type='image/png' href='{ASSETS}/favicon-32x32.png'>",
    )
    return OpenAPIConfig(
        title="vop: Victim Outcomes Platform API",
        version=app_version(),
        description=(
            "Referrals, surveys, outcome metrics and exports. Authenticate with "
            "`Authorization: Bearer <key>` (create a key with `vop keys create`)."
        ),
        path="/schema",
        render_plugins=[swagger],
        openapi_router=Router(path="/schema", route_handlers=[], opt=public(), include_in_schema=False),
        components=Components(
            security_schemes={
                "apiKey": SecurityScheme(type="http", scheme="bearer", description="vop API key")
            }
        ),
        security=[{"apiKey": []}],
        use_handler_docstrings=True,
    )


def background_jobs() -> list[Callable[[asyncio.Event], Awaitable[None]]]:
    """Loops that run beside the server: text analysis, the schedule and outbox, retention."""
    from access.erasure import run_background as retention
    from analysis.services import run_background as analyse_texts
    from surveys.outbox import run_background as schedule_and_dispatch

    return [analyse_texts, schedule_and_dispatch, retention]


async def on_startup(app: Litestar) -> None:
    app.state.opened_pool = await db.start()
    app.state.stop = asyncio.Event()
    app.state.jobs = []
    if get_settings().background_jobs:
        app.state.jobs = [asyncio.create_task(job(app.state.stop)) for job in background_jobs()]


def freeze_startup_objects() -> None:
    """Leave what the first start-up built out of the garbage collector's full collections.

    Routes, templates, instruments and models live as long as the process and are never garbage, yet
    every full collection walked them all: under load, a pause of about 40 ms each second that held up
    every request in flight. Frozen once per process (tests build many apps; later ones stay collectable).
    """
    if gc.get_freeze_count() == 0:
        gc.collect()
        gc.freeze()


async def on_shutdown(app: Litestar) -> None:
    app.state.stop.set()
    for job in app.state.jobs:
        job.cancel()
    await asyncio.gather(*app.state.jobs, return_exceptions=True)
    if app.state.get("opened_pool"):
        await db.stop()


def create_app() -> Litestar:
    """The application, with every route behind the access-policy check."""
    assets = create_static_files_router(
        path=ASSETS, directories=[swagger_ui.static_path], opt=public(), include_in_schema=False,
        name="schema-assets",
    )  # fmt: skip
    app = Litestar(
        route_handlers=[
            health,
            OrganisationController,
            ReferralController,
            ResponseController,
            DataProtectionController,
            MetricsController,
            ExportController,
            VrgController,
            AlertController,
            ReviewController,
            ReferralOutreachController,
            InvitationController,
            CallTaskController,
            assets,
            *survey_page_handlers(),
        ],
        template_config=survey_template_config(),
        before_request=check_request,
        dependencies={"principal": Provide(provide_principal)},
        exception_handlers={
            FileRejected: file_rejected,
            services.Invalid: invalid,
            services.Conflict: conflict,
            services.NotFound: not_found,
        },
        openapi_config=openapi_config(),
        on_startup=[on_startup, install_survey_assets, freeze_startup_objects],
        on_shutdown=[on_shutdown],
        # JSON logs scrubbed of personal data; 4xx without stack traces (access/logging.py).
        logging_config=access_logging.logging_config(get_settings().log_level),
        request_max_body_size=1024 * 1024,
    )
    # Around routing, so that 404 and 405 answers are logged too.
    access_logging.install(app, get_settings().log_level)
    return app
