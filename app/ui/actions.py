"""The dashboard's actions: Cancel, Retry, and logging in and out.

Plain HTML forms (each with its CSRF field) that answer with a redirect back
to the page, so they work without JavaScript. Cancel calls the backend's
cancel, as the API's route does. Retry is the API's own route
(`POST /api/v1/executions/{id}/retry`), called in-process: the dashboard then
follows whatever rules that route has, and says so plainly when the server
has no such route.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated, Any, Final, cast

import httpx
import msgspec
from litestar import Request, get, post
from litestar.datastructures import Cookie, State
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery
from litestar.response import Redirect, Template

from app.api.routes import DbConn
from app.config import Settings
from app.ui.security import TOKEN_COOKIE, UI_PATH

__all__ = ["ACTIONS", "cancel", "login", "login_form", "logout", "retry"]

INTERNAL_BASE: Final = "http://spine.internal"
TOKEN_MAX_AGE: Final = 12 * 3600


def _back(execution_id: str, **message: str) -> Redirect:
    return Redirect(f"{UI_PATH}/executions/{execution_id}", query_params=message, status_code=303)


@post("/executions/{execution_id:str}/cancel", name="ui_cancel")
async def cancel(conn: DbConn, state: State, execution_id: FromPath[str]) -> Redirect:
    """Cancel through the backend, then back to the execution's page with what happened."""
    execution, outcome = await state.backend.cancel(conn, execution_id[:100])
    if execution is None:
        return Redirect(f"{UI_PATH}/executions", status_code=303)
    notices = {
        "cancelled": "Cancelled before it started.",
        "requested": "Cancel requested: the worker stops it at its next check.",
        "already_requested": "Cancel was already requested.",
        "finished": f"Nothing to cancel: it already ended {execution.status}.",
    }
    return _back(execution.id, notice=notices.get(outcome, outcome))


@post("/executions/{execution_id:str}/retry", name="ui_retry")
async def retry(
    request: Request[Any, Any, Any], state: State, execution_id: FromPath[str]
) -> Redirect:
    """The API's retry route, called in-process with the server's own token."""
    settings: Settings = state.settings
    headers = {"Authorization": f"Bearer {settings.api_token}"} if settings.api_token else {}
    transport = httpx.ASGITransport(app=cast(Any, request.app))  # an ASGI app; types differ
    async with httpx.AsyncClient(transport=transport, base_url=INTERNAL_BASE) as client:
        response = await client.post(
            f"/api/v1/executions/{execution_id[:100]}/retry", headers=headers
        )
    if response.status_code in (200, 201, 202):
        new_id = _json_field(response.content, "id") or execution_id
        return _back(new_id, notice="Retry submitted.")
    if response.status_code in (404, 405) and _json_field(response.content, "detail") is None:
        return _back(execution_id, problem="This server has no retry yet.")
    detail = _json_field(response.content, "detail") or f"HTTP {response.status_code}"
    return _back(execution_id, problem=f"Retry refused: {detail}")


def _json_field(body: bytes, name: str) -> str | None:
    try:
        value = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return None
    found = value.get(name) if isinstance(value, dict) else None
    return found if isinstance(found, str) and found else None


@get("/login", name="ui_login", opt={"public": True})
async def login_form(
    next: FromQuery[str] = UI_PATH,
    problem: FromQuery[str | None] = None,
) -> Template:
    return Template("login.html", context={"next": _safe_next(next), "problem": problem or ""})


class LoginForm(msgspec.Struct):
    token: str = ""
    next: str = UI_PATH


@post("/login", name="ui_login_post", opt={"public": True})
async def login(
    request: Request[Any, Any, Any],
    state: State,
    data: Annotated[LoginForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Redirect:
    """Check the token (constant time); keep it in an HttpOnly, SameSite=Strict cookie."""
    token = state.settings.api_token
    if not token:
        return Redirect(_safe_next(data.next), status_code=303)
    presented = hashlib.sha256(data.token.encode("utf-8", "surrogateescape")).digest()
    if not hmac.compare_digest(presented, hashlib.sha256(token.encode()).digest()):
        return Redirect(
            f"{UI_PATH}/login",
            query_params={"next": _safe_next(data.next), "problem": "That is not the token."},
            status_code=303,
        )
    cookie = Cookie(
        key=TOKEN_COOKIE,
        value=data.token,
        path=UI_PATH,
        max_age=TOKEN_MAX_AGE,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return Redirect(_safe_next(data.next), status_code=303, cookies=[cookie])


@post("/logout", name="ui_logout", opt={"public": True})
async def logout() -> Redirect:
    gone = Cookie(key=TOKEN_COOKIE, value="", path=UI_PATH, max_age=0, httponly=True)
    return Redirect(UI_PATH, status_code=303, cookies=[gone])


def _safe_next(target: str) -> str:
    """Only a path of this dashboard: never an open redirect to another site."""
    if target.startswith(UI_PATH) and not target.startswith("//") and "\\" not in target:
        return target[:300]
    return UI_PATH


ACTIONS = [cancel, retry, login_form, login, logout]
