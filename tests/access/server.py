"""A real uvicorn process serving the app on the test database, for tests that need a server as users
run it: its own event loop and pool, its stdout/stderr in a file, and SIGKILL when a test asks."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Server:
    """`python -m uvicorn app:create_app --factory` on 127.0.0.1; the environment is the tests' (the same
    database URL and secret) plus `env`."""

    def __init__(self, log: Path, env: dict[str, str] | None = None, port: int | None = None) -> None:
        self.log = log
        self.env = env or {}
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> Server:
        # Appending: a restarted server's output joins the first one's, so a log scan sees both.
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable, "-m", "uvicorn", "app:create_app", "--factory", "--host", "127.0.0.1",
                    "--port", str(self.port), "--log-level", os.environ.get("VOP_TEST_UVICORN_LOG", "info"),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                # Background jobs only where a test asks for them: they would act on other tests' rows.
                env={**os.environ, "VOP_BACKGROUND_JOBS": "false", **self.env},
                cwd=Path(__file__).resolve().parents[2],
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited with {self.process.returncode}:\n{self.output()}")
            try:
                if httpx.get(f"{self.base_url}/health", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the server did not answer /health in {timeout} s:\n{self.output()}")
            time.sleep(0.1)

    def signal_kill(self) -> None:
        """SIGKILL without waiting (callable from an event loop's callback)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)

    def kill(self) -> None:
        """SIGKILL: no shutdown hook, no flush, no goodbye to the database."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
