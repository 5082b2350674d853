"""Settings for vop, read once from the environment.

Every setting is an environment variable (`VOP_*`); nothing is read from files except the development
secret, which is generated on first use so that a newcomer's `vop serve --demo` works without setup.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import secrets
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from surveys.contact_rules import ContactPolicy

DEV_SECRET_FILE = ".vop-secret"


class SettingsError(RuntimeError):
    """A setting is missing or malformed; the message says which and how to fix it."""


@dataclass(frozen=True, slots=True)
class Settings:
    env: str
    database_url: str
    secret_key: bytes
    area_name: str = "Warwickshire"
    contact_email: str = ""
    suppression_threshold: int = 4
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    smtp_tls: bool = False
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_sender: str = "surveys@example.org"
    public_base_url: str = "http://127.0.0.1:8000"
    rate_limit_failures_per_minute: int = 20
    log_level: str = "INFO"
    background_jobs: bool = True
    # Optional validated scales a service has switched on: {"sav": ["swemwbs", "phq9"], ...}
    scales_by_service: dict[str, list[str]] = field(default_factory=dict)
    # The contact rules' numbers: wave timing per service and provider, spacing, expiry, reminders,
    # quiet hours (VOP_WAVES*, VOP_MIN_DAYS_BETWEEN_INVITATIONS, ...). None: the rules' defaults.
    contact_policy: ContactPolicy | None = None
    # An area's own invitation and reminder wording (a YAML file shaped like
    # surveys/messages/templates.yaml); empty: the packaged wording.
    message_templates: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def is_postgres(self) -> bool:
        return self.database_url.startswith(("postgres://", "postgresql://"))

    @property
    def sqlite_path(self) -> str:
        """The file of a `sqlite:///path` URL (relative to the working folder)."""
        if self.is_postgres:
            raise SettingsError("VOP_DATABASE_URL points at PostgreSQL, not a SQLite file")
        return self.database_url.removeprefix("sqlite:///")


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be a whole number, got {raw!r}") from exc


def _secret(env: str, notes: list[str]) -> bytes:
    raw = os.environ.get("VOP_SECRET_KEY", "")
    if raw:
        if len(raw) < 32:
            raise SettingsError("VOP_SECRET_KEY must be at least 32 characters (use `vop secret`)")
        return raw.encode()
    if env == "production":
        raise SettingsError(
            "VOP_SECRET_KEY is not set. In production the secret that encrypts contact details and keys "
            "person identifiers must come from the environment; generate one with `vop secret`."
        )
    path = Path(DEV_SECRET_FILE)
    if not path.exists():
        path.write_text(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())
        path.chmod(0o600)
    notes.append(
        f"VOP_SECRET_KEY is not set: using the development secret in {path.resolve()} "
        "(set VOP_SECRET_KEY and VOP_ENV=production for real data)"
    )
    return path.read_text().strip().encode()


def _scales(raw: str) -> dict[str, list[str]]:
    """`sav:swemwbs,phq9;da:swemwbs` -> {"sav": ["swemwbs", "phq9"], "da": ["swemwbs"]}."""
    known = {"swemwbs", "ons4", "phq9", "gad7"}
    found: dict[str, list[str]] = {}
    for part in filter(None, (p.strip() for p in raw.split(";"))):
        service, _, names = part.partition(":")
        scales = [n.strip() for n in names.split(",") if n.strip()]
        if not service.strip() or set(scales) - known:
            raise SettingsError(
                f"VOP_SCALES_BY_SERVICE must look like 'sav:swemwbs,phq9;da:swemwbs' with scales from "
                f"{', '.join(sorted(known))}; got {part!r}"
            )
        found[service.strip()] = scales
    return found


_WAVE_FORMAT = "'follow_up=180,baseline=off' (waves baseline, exit, follow_up; days or off)"


def _wave_days(name: str, raw: str) -> dict[str, int | None]:
    """`follow_up=180,exit=off` -> {"follow_up": 180, "exit": None}. `name` says where, for errors."""
    from surveys.contact_rules import MAX_WAVE_DAYS, WAVES

    found: dict[str, int | None] = {}
    for part in filter(None, (p.strip() for p in raw.split(","))):
        wave, eq, value = (x.strip() for x in part.partition("="))
        value = value.lower()
        if not eq or wave not in WAVES or wave in found or not (value == "off" or value.isdigit()):
            raise SettingsError(f"{name} must look like {_WAVE_FORMAT}; got {part!r}")
        days = None if value == "off" else int(value)
        if days is not None and days > MAX_WAVE_DAYS:
            raise SettingsError(f"{name}: {wave} must be at most {MAX_WAVE_DAYS} days, got {days}")
        found[wave] = days
    return found


def _waves_by(name: str, raw: str, keys: str) -> dict[str, dict[str, int | None]]:
    """`sav:follow_up=180;da:baseline=off` -> {"sav": {"follow_up": 180}, "da": {"baseline": None}}."""
    from surveys.fields import ORG_CODE_RE, SERVICES

    found: dict[str, dict[str, int | None]] = {}
    for part in filter(None, (p.strip() for p in raw.split(";"))):
        key, colon, waves = (x.strip() for x in part.partition(":"))
        if keys == "service" and key not in SERVICES:
            raise SettingsError(
                f"{name}: {key!r} is not a service (one of {', '.join(SERVICES)}); each part looks like "
                f"'sav:follow_up=180,baseline=off', parts separated by ';'"
            )
        if keys == "provider" and not ORG_CODE_RE.match(key):
            raise SettingsError(
                f"{name}: {key!r} is not a provider code (letters, digits, '-'); each part looks like "
                f"'ROSA:follow_up=60,exit=off', parts separated by ';'"
            )
        if not colon or not waves or key in found:
            raise SettingsError(
                f"{name}: each {keys} once, as '{key or 'CODE'}:{_WAVE_FORMAT}'; got {part!r}"
            )
        found[key] = _wave_days(f"{name} ({key})", waves)
    return found


def _days_list(name: str, default: tuple[int, ...]) -> tuple[int, ...]:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if raw.lower() == "none":
        return ()
    try:
        return tuple(int(p) for p in raw.split(","))
    except ValueError as exc:
        raise SettingsError(f"{name} must be day counts separated by commas, e.g. 7,14 (or none)") from exc


def _quiet_hours(raw: str) -> tuple[dt.time, dt.time]:
    try:
        start, end = (dt.time.fromisoformat(p.strip()) for p in raw.split("-"))
    except ValueError as exc:
        raise SettingsError(f"VOP_QUIET_HOURS must look like 21:00-08:00 (local time), got {raw!r}") from exc
    return start, end


def _contact_policy() -> ContactPolicy:
    """The contact rules' numbers from VOP_WAVES, VOP_WAVES_BY_SERVICE, VOP_WAVES_BY_PROVIDER,
    VOP_MIN_DAYS_BETWEEN_INVITATIONS, VOP_INVITATION_EXPIRY_DAYS, VOP_REMINDER_DAYS, VOP_QUIET_HOURS;
    checked as a whole (reminders before expiry, follow-up after exit for every service and provider)."""
    from surveys.contact_rules import ContactPolicy

    defaults = ContactPolicy()
    waves = _wave_days("VOP_WAVES", os.environ.get("VOP_WAVES", ""))
    quiet_start, quiet_end = _quiet_hours(os.environ.get("VOP_QUIET_HOURS", "") or "21:00-08:00")
    try:
        return ContactPolicy(
            baseline_days=waves.get("baseline", defaults.baseline_days),
            exit_days=waves.get("exit", defaults.exit_days),
            follow_up_days=waves.get("follow_up", defaults.follow_up_days),
            waves_by_service=_waves_by(
                "VOP_WAVES_BY_SERVICE", os.environ.get("VOP_WAVES_BY_SERVICE", ""), "service"
            ),
            waves_by_provider=_waves_by(
                "VOP_WAVES_BY_PROVIDER", os.environ.get("VOP_WAVES_BY_PROVIDER", ""), "provider"
            ),
            min_days_between_invitations=_int(
                "VOP_MIN_DAYS_BETWEEN_INVITATIONS", defaults.min_days_between_invitations
            ),
            expiry_days=_int("VOP_INVITATION_EXPIRY_DAYS", defaults.expiry_days),
            reminder_days=_days_list("VOP_REMINDER_DAYS", defaults.reminder_days),
            quiet_start=quiet_start,
            quiet_end=quiet_end,
        )
    except ValueError as exc:
        raise SettingsError(f"contact rules (VOP_WAVES*, VOP_*_DAYS, VOP_QUIET_HOURS): {exc}") from exc


def load_settings() -> Settings:
    """Read the environment into a Settings object; raises SettingsError with a clear message."""
    env = os.environ.get("VOP_ENV", "development")
    if env not in {"development", "test", "production"}:
        raise SettingsError(f"VOP_ENV must be development, test or production, got {env!r}")
    notes: list[str] = []
    url = os.environ.get("VOP_DATABASE_URL", "") or "sqlite:///vop.db"
    if not url.startswith(("sqlite:///", "postgres://", "postgresql://")):
        raise SettingsError(
            f"VOP_DATABASE_URL must start with sqlite:/// or postgresql://, got {url.split(':')[0]!r}"
        )
    if env == "production" and not os.environ.get("VOP_DATABASE_URL"):
        raise SettingsError("VOP_DATABASE_URL is not set; production needs an explicit database")
    return Settings(
        env=env,
        database_url=url,
        secret_key=_secret(env, notes),
        area_name=os.environ.get("VOP_AREA_NAME", "Warwickshire"),
        contact_email=os.environ.get("VOP_CONTACT_EMAIL", ""),
        suppression_threshold=_int("VOP_SUPPRESSION_THRESHOLD", 4),
        smtp_host=os.environ.get("VOP_SMTP_HOST", "127.0.0.1"),
        smtp_port=_int("VOP_SMTP_PORT", 8025),
        smtp_tls=os.environ.get("VOP_SMTP_TLS", "false").lower() == "true",
        smtp_user=os.environ.get("VOP_SMTP_USER", ""),
        smtp_password=os.environ.get("VOP_SMTP_PASSWORD", ""),
        smtp_sender=os.environ.get("VOP_SMTP_SENDER", "surveys@example.org"),
        public_base_url=os.environ.get("VOP_PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/"),
        rate_limit_failures_per_minute=_int("VOP_RATE_LIMIT_FAILURES", 20),
        log_level=os.environ.get("VOP_LOG_LEVEL", "INFO"),
        background_jobs=os.environ.get("VOP_BACKGROUND_JOBS", "true").lower() != "false",
        scales_by_service=_scales(os.environ.get("VOP_SCALES_BY_SERVICE", "")),
        contact_policy=_contact_policy(),
        message_templates=_message_templates(os.environ.get("VOP_MESSAGE_TEMPLATES", "")),
        notes=notes,
    )


def _message_templates(raw: str) -> str:
    """VOP_MESSAGE_TEMPLATES, checked now (complete, neutral) so that a bad file stops start-up."""
    if not raw:
        return ""
    from surveys.messages import load_templates

    try:
        load_templates(Path(raw))
    except ValueError as exc:
        raise SettingsError(f"VOP_MESSAGE_TEMPLATES: {exc}") from exc
    return raw


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once."""
    try:
        return load_settings()
    except SettingsError as exc:
        print(f"vop: configuration error: {exc}", file=sys.stderr)
        raise
