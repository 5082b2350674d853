"""Browser tests: the real app under uvicorn, driven by Playwright in Debian's Chromium.

Chromium comes from the distribution (`apt-get install chromium`), never from `playwright install`;
when /usr/bin/chromium is absent every test here is skipped with that reason. The server runs in a
subprocess on a free loopback port against the tests' own database (the env conftest set up).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
# As the machine notes say: without the background-networking flags Chromium keeps trying to reach
# Google's hosts, which this closed network refuses.
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
]  # fmt: skip


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/browser" in str(item.path):
            item.add_marker(pytest.mark.browser)
            if not CHROMIUM.exists():
                item.add_marker(
                    pytest.mark.skip(reason="Debian's chromium is not installed (/usr/bin/chromium)")
                )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def server(migrated: None) -> Iterator[str]:
    """The real app served by uvicorn on a free port; yields its base URL."""
    import httpx

    port = _free_port()
    # No background jobs: this server lives for the whole session, and its scheduler and outbox would
    # otherwise claim the messages of later tests that share the database.
    env = {**os.environ, "VOP_RATE_LIMIT_FAILURES": "1000", "VOP_BACKGROUND_JOBS": "false"}
    # The server's log goes to a file: a pipe nobody reads fills up and blocks the server.
    log = tempfile.NamedTemporaryFile(prefix="vop-browser-server-", suffix=".log", delete=False)  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app:create_app", "--factory", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning", "--no-access-log"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    # The first start may install the GOV.UK Frontend assets with npm: allow for it.
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the app did not start: {Path(log.name).read_text()[-2000:]}")
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    else:
        proc.kill()
        raise RuntimeError("the app did not answer /health in time")
    yield base
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()
    os.unlink(log.name)


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Any]:
    """One headless Chromium for the run."""
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield b
        await b.close()


@pytest.fixture
async def new_page(browser: Any, server: str, orgs: None) -> AsyncIterator[Any]:
    """A factory of pages, each in a fresh browser context (no shared cookies or storage).

    Every page records Content-Security-Policy violations and requests to other sites; the test
    fails if there were any. Navigations to the exit site are answered locally (no network here).
    """
    contexts: list[Any] = []
    problems: list[str] = []

    async def make(javascript: bool = True) -> Any:
        context = await browser.new_context(java_script_enabled=javascript, base_url=server)
        contexts.append(context)

        async def exit_site(route: Any) -> None:
            await route.fulfill(
                status=200, content_type="text/html", body="<title>Weather</title><p>Weather</p>"
            )

        await context.route("https://www.bbc.co.uk/**", exit_site)
        page = await context.new_page()
        page.on("console", lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None)

        def on_request(request: Any) -> None:
            if not request.url.startswith((server, "data:", "https://www.bbc.co.uk/")):
                problems.append(f"third-party request {request.url}")

        page.on("request", on_request)
        return page

    yield make
    for context in contexts:
        await context.close()
    assert problems == []
