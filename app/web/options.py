"""OPTIONS answers with every method of its path (a `before_send` hook)."""

from __future__ import annotations

from litestar.types import Message, Scope

__all__ = ["complete_allow_header"]


async def complete_allow_header(message: Message, scope: Scope) -> None:
    """Litestar's own OPTIONS handler lists the methods of the first handler
    registered for a path (for /executions: `OPTIONS, POST`, not GET); the
    app's route map has them all.
    """
    if (
        message["type"] != "http.response.start"
        or scope.get("method") != "OPTIONS"
        or (template := scope.get("path_template")) is None
    ):
        return
    methods = scope["litestar_app"].route_handler_method_map.get(template)
    if methods:
        allow = ", ".join(sorted(m for m in methods if m.isupper())).encode()
        headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"allow"]
        message["headers"] = [*headers, (b"allow", allow)]
