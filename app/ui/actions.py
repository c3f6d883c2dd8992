"""The dashboard's actions: Cancel, Retry, and logging in and out.

Plain HTML forms (each with its CSRF field) that answer with a redirect back
to the page, so they work without JavaScript. Cancel calls the backend's
cancel, as the API's route does. Retry calls
`app.engine.retries.retry_one`, as the API's route
(`POST /api/v1/executions/{id}/retry`) does, so both follow the same rules.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from typing import Annotated, Any, Final

import msgspec
from litestar import Request, get, post
from litestar.datastructures import Cookie, State
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery
from litestar.response import Redirect, Template

from app.engine import retries
from app.ui.login_throttle import LoginThrottle
from app.ui.security import TOKEN_COOKIE, UI_PATH
from app.web.connection import DbConn

__all__ = ["ACTIONS", "cancel", "login", "login_form", "logout", "retry"]

TOKEN_MAX_AGE: Final = 12 * 3600
WHY_NOT: Final = {
    "completed": "it completed",
    "not_ended": "it is still active",
    "key_active": "another active execution holds its logical_key",
}


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
async def retry(conn: DbConn, state: State, execution_id: FromPath[str]) -> Redirect:
    """The API route's retry (`app.engine.retries.retry_one`): back to pending, fresh budget."""
    execution, outcome = await retries.retry_one(
        conn,
        state.registry,
        state.settings,
        execution_id[:100],
        source="ui",
        backend=state.backend,
    )
    if execution is None:
        return Redirect(f"{UI_PATH}/executions", status_code=303)
    if outcome == "retried":
        return _back(execution.id, notice="Retry submitted: it is pending again.")
    return _back(execution.id, problem=f"Retry refused: {WHY_NOT[outcome]}.")


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
) -> Redirect | Template:
    """Check the token (constant time); keep it in an HttpOnly, SameSite=Strict cookie.

    Wrong tokens slow the client down (`app.ui.login_throttle`): while it must
    wait, the form comes back with a 429 and the token is not even compared.
    """
    token = state.settings.api_token
    if not token:
        return Redirect(_safe_next(data.next), status_code=303)
    throttle: LoginThrottle = state.login_throttle
    client = request.client.host if request.client else ""
    if wait := throttle.wait(client):
        return _too_soon(data.next, wait)
    presented = hashlib.sha256(data.token.encode("utf-8", "surrogateescape")).digest()
    if not hmac.compare_digest(presented, hashlib.sha256(token.encode()).digest()):
        throttle.failed(client)
        return Redirect(
            f"{UI_PATH}/login",
            query_params={"next": _safe_next(data.next), "problem": "That is not the token."},
            status_code=303,
        )
    throttle.succeeded(client)
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


def _too_soon(next_path: str, wait: float) -> Template:
    seconds = math.ceil(wait)
    return Template(
        "login.html",
        context={
            "next": _safe_next(next_path),
            "problem": f"Too many wrong tokens: try again in {seconds} s.",
        },
        status_code=429,
        headers={"Retry-After": str(seconds)},
    )


def _safe_next(target: str) -> str:
    """Only a path of this dashboard: never an open redirect to another site."""
    if target.startswith(UI_PATH) and not target.startswith("//") and "\\" not in target:
        return target[:300]
    return UI_PATH


ACTIONS = [cancel, retry, login_form, login, logout]
