"""The dashboard's errors as pages: the navigation, the status and the message.

The same mapping as the API (`app.web.problems.problem_for`: status, detail,
headers such as Retry-After), shown as HTML so a browser user can go on from
there, instead of a raw problem+json document. A page that needs the token
still sends the browser to the login form (`app.ui.security`).
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response
from litestar.exceptions import NotAuthorizedException
from litestar.response import Template

from app.ui.security import add_security_headers, unauthorized_to_login
from app.web.problems import problem_for

__all__ = ["error_page"]


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
