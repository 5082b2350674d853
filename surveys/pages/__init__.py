"""The victim-facing survey: GOV.UK-style pages at `/s/{token}` and the same survey as a JSON API.

`route_handlers()` lists what `app.create_app` registers; `template_config()` is the Jinja set-up
(the project's templates first, then govuk-frontend-jinja's macros under `govuk_frontend_jinja/`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PackageLoader, PrefixLoader
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.template.config import TemplateConfig

TEMPLATES = Path(__file__).parent / "templates"


def jinja_environment() -> Environment:
    """The Jinja environment of the survey pages (autoescaped; unknown variables are errors)."""
    loader = ChoiceLoader(
        [
            FileSystemLoader(TEMPLATES),
            PrefixLoader({"govuk_frontend_jinja": PackageLoader("govuk_frontend_jinja", "templates")}),
        ]
    )
    return Environment(loader=loader, autoescape=True, trim_blocks=True, lstrip_blocks=True)


def template_config() -> TemplateConfig[Any]:
    """Litestar's template config for the survey pages."""
    return TemplateConfig(instance=JinjaTemplateEngine.from_environment(jinja_environment()))


def route_handlers() -> list[Any]:
    """The survey pages, their static assets and the survey JSON API (plain and phone mode)."""
    from surveys.pages.api import PhoneSurveyApiController, SurveyApiController
    from surveys.pages.assets import assets_router
    from surveys.pages.controllers import SurveyPageController

    return [SurveyPageController, SurveyApiController, PhoneSurveyApiController, assets_router()]
