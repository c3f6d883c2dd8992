"""A cap on the request head (request line + headers), enforced as the bytes arrive.

uvicorn's httptools protocol has no such limit: a 100 MB header was read in
full and answered 200, and its pieces are joined as they come (a 100 MB query
string took 11.5 s and 190 MB). An ASGI middleware cannot help, because the
app sees a request only once its whole head has been parsed. This protocol
counts the bytes of a head still being parsed and, past `MAX_HEAD_BYTES`,
answers 431 and closes the connection: a process holds at most the cap plus
one socket read per connection. Bodies are not counted here (the app limits
them: SPINE_MAX_BODY_BYTES).

`spine api` serves with it (`uvicorn.Config(http=PROTOCOL)`); h11 with
`h11_max_incomplete_event_size` does the same but costs 15-25% more CPU per
request (docs/benchmarks.md, "Issue 31, item 5: the request head limit").
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["MAX_HEAD_BYTES", "PROTOCOL", "BoundedHeadProtocol"]

MAX_HEAD_BYTES: Final = 64 * 1024
PROTOCOL: Final = "app.web.head_limit:BoundedHeadProtocol"
_MESSAGE: Final = f"request line and headers are larger than {MAX_HEAD_BYTES} bytes\n".encode()
_RESPONSE: Final = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: " + str(len(_MESSAGE)).encode() + b"\r\n"
    b"connection: close\r\n\r\n" + _MESSAGE
)


class BoundedHeadProtocol(HttpToolsProtocol):
    """httptools, refusing a request head over MAX_HEAD_BYTES with 431 before reading on."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True
        self._head_bytes = 0

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        # Checked after parsing: a legitimate head followed by its body can arrive in one
        # read larger than the cap, and it completes the head (so this is not reached).
        if self._in_head and self._head_bytes > MAX_HEAD_BYTES:
            self._refuse()

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head = True  # a keep-alive connection's next request starts its head
        self._head_bytes = 0

    def _refuse(self) -> None:
        transport: asyncio.Transport = self.transport
        if transport.is_closing():
            return
        self.logger.info(
            "refused a request head over %d bytes from %s", MAX_HEAD_BYTES, self.client
        )
        transport.write(_RESPONSE)
        transport.close()
        self._in_head = False  # nothing more of this connection is parsed
