"""Who may look and who may act: the dashboard's token cookie, CSRF and security headers.

The rule is the API's (`app.web.security.require_token`): with SPINE_API_TOKEN set, actions need
the token, and reads too with SPINE_API_TOKEN_READS=1. A browser cannot send a
bearer header from a form, so the login form keeps the token in a cookie
(HttpOnly, SameSite=Strict, Secure over HTTPS, scoped to /ui); a bearer header
is accepted as well. Because a cookie rides along on any request to the site,
every form is also CSRF-protected (Litestar's double-submit middleware, on the
/ui router only: the API's bearer calls are unchanged).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any, Final

from litestar import Request, Response
from litestar.config.csrf import CSRFConfig
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers import BaseRouteHandler
from litestar.response import Redirect

from app.config import Settings

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "TOKEN_COOKIE",
    "csrf_config",
    "has_token",
    "security_headers",
    "ui_guard",
    "unauthorized_to_login",
]

TOKEN_COOKIE: Final = "spine_token"  # noqa: S105 (a cookie name, not a secret)
CSRF_COOKIE: Final = "spine_csrf"
UI_PATH: Final = "/ui"
MUTATING_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})

CONTENT_SECURITY_POLICY: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)


def csrf_config(settings: Settings) -> CSRFConfig:
    """Double-submit CSRF for /ui; the signing secret is the same in every API process.

    It is derived from the token (or, without one, the database URL) rather than
    random per process, so a form rendered by one uvicorn worker posts to another.
    """
    seed = settings.api_token or settings.database_url or str(settings.state_dir.resolve())
    secret = hashlib.sha256(b"market-spine-ui-csrf\0" + seed.encode()).hexdigest()
    return CSRFConfig(
        secret=secret,
        cookie_name=CSRF_COOKIE,
        cookie_path=UI_PATH,
        cookie_httponly=True,
        cookie_samesite="strict",
    )


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8", "surrogateescape")).digest()


def has_token(connection: ASGIConnection[Any, Any, Any, Any], token: str) -> bool:
    """Whether the request carries `token`, in the cookie or as a bearer (constant time)."""
    scheme, _, bearer = connection.headers.get("authorization", "").partition(" ")
    presented = bearer.strip() if scheme.lower() == "bearer" else ""
    presented = presented or connection.cookies.get(TOKEN_COOKIE, "")
    return hmac.compare_digest(_digest(presented), _digest(token))


async def ui_guard(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """The API's token rule, with the login cookie as a second way to present the token."""
    settings: Settings = connection.app.state.settings
    token = settings.api_token
    if not token or handler.opt.get("public"):
        return
    if connection.scope.get("method") not in MUTATING_METHODS and not settings.api_token_reads:
        return
    if not has_token(connection, token):
        raise NotAuthorizedException(detail="this needs the API token: log in first")


def unauthorized_to_login(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """A page that needs the token sends the browser to the login form, then back."""
    if request.method in MUTATING_METHODS:
        return Response(
            "Refused: this action needs the API token. Log in at /ui/login.",
            status_code=401,
            media_type="text/plain",
        )
    return Redirect(f"{UI_PATH}/login", query_params={"next": request.url.path})


async def security_headers(response: Response[Any]) -> Response[Any]:
    """Only the app's own scripts and styles; no framing; no MIME sniffing; no referrer."""
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Frame-Options"] = "DENY"
    return response
