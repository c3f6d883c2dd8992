"""The dashboard's errors as pages: the navigation, the status and the message.

The same mapping as the API (`app.web.problems.problem_for`: status, detail,
headers such as Retry-After), shown as HTML so a browser user can go on from
there, instead of a raw problem+json document. A page that needs the token
still sends the browser to the login form (`app.ui.security`).
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get
from litestar.exceptions import NotAuthorizedException, NotFoundException
from litestar.params import FromPath
from litestar.response import Template

from app.ui.security import add_security_headers, unauthorized_to_login
from app.web.problems import problem_for

__all__ = ["error_page", "no_such_page"]


def error_page(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Any error under /ui as `error.html`, with the status and headers the API would send
    and the pages' security headers (an error skips the router's after_request)."""
    if isinstance(exc, NotAuthorizedException):
        return add_security_headers(unauthorized_to_login(request, exc))
    problem, headers = problem_for(request, exc)
    page = Template(
        "error.html", context={"problem": problem}, status_code=problem.status, headers=headers
    )
    return add_security_headers(page)


@get("/{rest:path}", name="ui_no_such_page", sync_to_thread=False)
def no_such_page(rest: FromPath[str]) -> None:
    """Any other /ui path: a 404 page (a route nobody matched never reaches the UI's
    handlers, and would be answered as problem+json)."""
    raise NotFoundException(detail=f"no dashboard page at /ui{rest}")
