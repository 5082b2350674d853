"""Access policy as data: every route handler declares who may call it, and one check enforces it.

A handler carries `opt=policy(...)`. The check authenticates the Bearer key, rate-limits failures per
client address, and checks the role. Scoping to the caller's organisation is done by the services, which
take the Principal; a handler without a policy is refused (fail closed), and a test walks the route table.

The check runs as the app's `before_request` hook (`check_request`), before any argument of the handler
is read. Not a Litestar guard: Litestar copies the whole route handler for every guard call, about 6% of
the event loop's time under the submit benchmark. `before_request` comes from the nearest layer that sets
one, so no controller or handler may set its own except through `after_policy`; the route-table test
checks that every route is an HTTP route behind this hook.
"""

from __future__ import annotations

import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException, TooManyRequestsException
from litestar.handlers.base import BaseRouteHandler

from access import audit
from access.keys import Principal, resolve_key
from settings import get_settings

POLICY_KEY = "access_policy"
ALL_ROLES = frozenset({"provider", "opcc", "vrg", "admin"})


@dataclass(frozen=True, slots=True)
class Policy:
    """Who may call a route: `public` (no key), or the roles allowed; `scoped` = own organisation only."""

    roles: frozenset[str]
    public: bool = False
    scoped: bool = False
    survey_token: bool = False  # reached by a survey link token instead of a key

    def describe(self) -> str:
        if self.public:
            return "survey link" if self.survey_token else "public"
        roles = ", ".join(sorted(self.roles))
        return f"{roles}{' (own organisation only for providers)' if self.scoped else ''}"


def policy(*roles: str, scoped: bool = False) -> dict[str, Any]:
    """`opt` for a route handler callable by these roles."""
    unknown = set(roles) - ALL_ROLES
    if unknown or not roles:
        raise ValueError(f"unknown roles {unknown}")
    return {POLICY_KEY: Policy(roles=frozenset(roles), scoped=scoped)}


def public(survey_token: bool = False) -> dict[str, Any]:
    """`opt` for a route anyone may call (health, docs) or that is reached by a survey link token."""
    return {POLICY_KEY: Policy(roles=frozenset(), public=True, survey_token=survey_token)}


class FailureLimiter:
    """Counts failures per client address in a sliding minute; over the limit, the client gets 429."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._failures: dict[str, deque[float]] = defaultdict(deque)

    def _recent(self, client: str, now: float) -> deque[float]:
        window = self._failures[client]
        while window and now - window[0] > 60.0:
            window.popleft()
        return window

    def blocked(self, client: str) -> bool:
        window = self._failures.get(client)
        return bool(window) and len(self._recent(client, time.monotonic())) >= self.per_minute

    def fail(self, client: str) -> None:
        now = time.monotonic()
        self._recent(client, now).append(now)
        if len(self._failures) > 100_000:  # bound memory under a spray of addresses
            self._failures.clear()


def limiter_for(connection: ASGIConnection[Any, Any, Any, Any]) -> FailureLimiter:
    state = connection.app.state
    if "failure_limiter" not in state:
        state.failure_limiter = FailureLimiter(get_settings().rate_limit_failures_per_minute)
    limiter: FailureLimiter = state.failure_limiter
    return limiter


def client_address(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    return connection.client.host if connection.client else "unknown"


async def guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """The one check of the app: authenticate, rate-limit failures, check the handler's policy."""
    rule = handler.opt.get(POLICY_KEY)
    if not isinstance(rule, Policy):
        raise PermissionDeniedException("this route has no access policy")
    if rule.public:
        return
    client = client_address(connection)
    limiter = limiter_for(connection)
    if limiter.blocked(client):
        raise TooManyRequestsException("too many failed attempts; wait a minute")
    header = connection.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key:
        raise NotAuthorizedException("an API key is required: Authorization: Bearer <key>")
    principal = await resolve_key(key.strip())
    if principal is None:
        limiter.fail(client)
        await audit.record("auth.failed", client=client, detail={"path": connection.url.path})
        raise NotAuthorizedException("the API key is not valid or has been revoked")
    if principal.role not in rule.roles:
        raise PermissionDeniedException(f"the {principal.role} role may not use this route")
    connection.state.principal = principal


async def check_request(request: Request[Any, Any, Any]) -> None:
    """The app's `before_request`: the policy of the route handler that will answer this request."""
    await guard(request, request.route_handler)


def after_policy(hook: Callable[[Request[Any, Any, Any]], Awaitable[Any]]) -> Any:
    """A handler's own `before_request`, run after the policy check (it replaces the app's hook, so it
    must run the check itself; the route-table test knows these by `policy_checked`)."""

    async def checked(request: Request[Any, Any, Any]) -> Any:
        await check_request(request)
        return await hook(request)

    checked.policy_checked = True  # type: ignore[attr-defined]
    return checked


async def provide_principal(request: Request[Any, Any, Any]) -> Principal:
    """Dependency: the authenticated caller of a keyed route."""
    principal: Principal = request.state.principal
    return principal
