"""GOV.UK Frontend assets for the survey pages: installed from the npm registry, never kept in the repo.

No PyPI package ships the govuk-frontend dist (govuk-frontend-jinja has the macros only), so on first
start the server runs `npm install govuk-frontend@<pinned> sass` into a cache folder outside the work
tree and compiles the Sass once with the system font stack: the GOV.UK typeface (and the crown
images) are licensed for gov.uk only, so `$govuk-include-default-font-face: false` keeps the font out
of the CSS altogether. Later starts find the built files and do nothing.

If npm is missing or the registry cannot be reached the pages are still served, unstyled: they are
plain server-rendered HTML and work without CSS or JavaScript; a warning says what to run.

    python -m surveys.pages.assets      # install and build now (what the first start does)
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Final

from litestar import Router
from litestar.datastructures import CacheControlHeader
from litestar.static_files import create_static_files_router

from access.policy import public

log = logging.getLogger("vop.pages.assets")

GOVUK_FRONTEND_VERSION: Final = "6.3.0"  # the version govuk-frontend-jinja 4.1 is checked against
SASS_VERSION: Final = "1"
ASSETS_URL: Final = "/s-assets"
OWN_STATIC: Final = Path(__file__).parent / "static"
FONT_STACK: Final = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif'

_ENTRY = """\
@use "govuk-frontend/dist/govuk" with (
  $govuk-font-family: ({font}),
  $govuk-include-default-font-face: false,
  $govuk-assets-path: "{url}/"
);
"""


def cache_root() -> Path:
    """Where the assets are installed: `$VOP_ASSETS_DIR`, else the user's cache folder (never the repo)."""
    configured = os.environ.get("VOP_ASSETS_DIR")
    if configured:
        return Path(configured)
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "vop" / f"govuk-frontend-{GOVUK_FRONTEND_VERSION}"


def built_dir() -> Path:
    """The folder served at /s-assets/: the compiled CSS and govuk-frontend's JavaScript."""
    return cache_root() / "built"


def assets_ready() -> bool:
    """Whether the compiled CSS and the JavaScript are in place."""
    built = built_dir()
    return (built / "govuk.css").is_file() and (built / "govuk-frontend.min.js").is_file()


def ensure_assets(quiet: bool = False) -> bool:
    """Install and build the assets unless already done; True when they are ready.

    Safe to call from several processes at once (a file lock), and cheap once built.
    """
    if assets_ready():
        return True
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if assets_ready():
            return True
        try:
            _install(root, quiet)
        except (OSError, subprocess.CalledProcessError) as exc:
            log.warning(
                "GOV.UK Frontend assets are not installed (%s); the survey pages work but are unstyled. "
                "Install Node.js and npm, then run: python -m surveys.pages.assets",
                exc,
            )
            return False
    return assets_ready()


def _install(root: Path, quiet: bool) -> None:
    npm = shutil.which("npm")
    node = shutil.which("node")
    if not npm or not node:
        raise OSError("npm and node are not on PATH")
    out = subprocess.DEVNULL if quiet else None
    # --ignore-scripts: nothing from the registry runs at install time; sass is plain JavaScript.
    subprocess.run(
        [npm, "install", "--prefix", str(root), "--no-save", "--no-audit", "--no-fund", "--ignore-scripts",
         f"govuk-frontend@{GOVUK_FRONTEND_VERSION}", f"sass@{SASS_VERSION}"],
        check=True, stdout=out, stderr=out, timeout=300,
    )  # fmt: skip
    modules = root / "node_modules"
    dist = modules / "govuk-frontend" / "dist" / "govuk"
    staging = root / "built.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    entry = root / "vop-govuk.scss"
    entry.write_text(_ENTRY.format(font=FONT_STACK, url=ASSETS_URL), encoding="utf-8")
    subprocess.run(
        [node, str(modules / "sass" / "sass.js"), f"--load-path={modules}", "--style=compressed",
         "--no-source-map", "--quiet", str(entry), str(staging / "govuk.css")],
        check=True, stdout=out, stderr=out, timeout=300,
    )  # fmt: skip
    shutil.copy2(dist / "govuk-frontend.min.js", staging / "govuk-frontend.min.js")
    # Images only; the fonts and the crown/crest marks are not ours to use outside gov.uk.
    shutil.rmtree(root / "built", ignore_errors=True)
    staging.rename(root / "built")


async def install_on_startup() -> None:
    """Start-up hook: make sure the assets are built before the first page is served."""
    import anyio

    await anyio.to_thread.run_sync(ensure_assets)


def assets_router() -> Router:
    """Serves /s-assets/: the project's own small JS/CSS, and the built GOV.UK Frontend files."""
    return create_static_files_router(
        path=ASSETS_URL,
        directories=[OWN_STATIC, built_dir()],
        opt=public(),
        include_in_schema=False,
        name="survey-assets",
        cache_control=CacheControlHeader(max_age=3600, public=True),
    )


if __name__ == "__main__":
    sys.exit(0 if ensure_assets() else 1)
