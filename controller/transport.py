"""The HTTP transport under every provider's client: replies that can be stopped, and llama.cpp mended.

- `stop()` ends the reply being streamed: the body simply ends, so the openai client and llama-index finish
  normally, and the connection is closed, so the server stops generating too.
- A server-sent stream that ends without `data: [DONE]` was cut short (a crash, a dropped connection); the
  openai client would take it for a normal end, so we raise instead.
- llama.cpp's server reports some errors (a prompt longer than its context) only after it has answered a
  streaming request with 200 and an empty body. On an empty stream we send the request once more without
  streaming, where the server does say what is wrong, and raise that as the openai client would have.
- llama.cpp's server refuses an assistant message whose `content` is null, which llama-index sends after a
  tool call; with `mend_null_content` it goes out as "".
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator

import httpx
import openai

_STATUS_ERRORS: dict[int, type[openai.APIStatusError]] = {
    400: openai.BadRequestError,
    401: openai.AuthenticationError,
    403: openai.PermissionDeniedError,
    404: openai.NotFoundError,
    409: openai.ConflictError,
    422: openai.UnprocessableEntityError,
    429: openai.RateLimitError,
}


class StoppableTransport(httpx.BaseTransport):
    """An HTTP transport whose response streams end cleanly as soon as `stop()` is called."""

    def __init__(self, mend_null_content: bool = False) -> None:
        self._inner = httpx.HTTPTransport()
        self._stop = threading.Event()
        self._mend_null_content = mend_null_content

    def stop(self) -> None:
        """End the reply being streamed; its connection is closed."""
        self._stop.set()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send the request; hand back a response whose body can be cut short."""
        self._stop.clear()
        if self._mend_null_content and request.method == "POST":
            request = _with_text_content(request)
        response = self._inner.handle_request(request)
        is_sse = response.headers.get("content-type", "").startswith("text/event-stream")
        return httpx.Response(
            status_code=response.status_code,
            headers=response.headers,
            stream=_StoppableStream(
                response.stream, self._stop, expect_done=is_sse, on_empty=lambda: self._explain(request)
            ),
            extensions=response.extensions,
        )

    def close(self) -> None:
        """Close the pooled connections."""
        self._inner.close()

    def _explain(self, request: httpx.Request) -> None:
        """Resend a request whose stream came back empty, without streaming; raise the error it gets."""
        try:
            body = json.loads(request.content)
        except (ValueError, httpx.RequestNotRead):
            return
        if not isinstance(body, dict) or not body.get("stream"):
            return
        body["stream"] = False
        body.pop("stream_options", None)
        retry = _with_body(request, body)
        response = self._inner.handle_request(retry)
        response.read()
        response.request = retry
        if response.status_code >= 400:
            raise _status_error(response)


class _StoppableStream(httpx.SyncByteStream):
    """A response body that ends when told to, and that notices a server-sent stream cut short."""

    def __init__(
        self,
        inner: httpx.SyncByteStream,
        stop: threading.Event,
        expect_done: bool,
        on_empty: Callable[[], None],
    ) -> None:
        self._inner = inner
        self._stop = stop
        self._expect_done = expect_done
        self._on_empty = on_empty

    def __iter__(self) -> Iterator[bytes]:
        tail = b""
        received = False
        for chunk in self._inner:
            if self._stop.is_set():
                return
            received = received or bool(chunk)
            tail = (tail + chunk)[-32:]
            yield chunk
        if self._expect_done and b"[DONE]" not in tail:
            if not received:
                self._on_empty()
            raise httpx.RemoteProtocolError("the reply stream ended before its end marker")

    def close(self) -> None:
        self._inner.close()


def _status_error(response: httpx.Response) -> openai.APIStatusError:
    """The exception the openai client raises for this error response."""
    try:
        body = response.json()
    except ValueError:
        body = response.text
    data = body.get("error", body) if isinstance(body, dict) else body
    cls = _STATUS_ERRORS.get(response.status_code)
    if cls is None:
        cls = openai.InternalServerError if response.status_code >= 500 else openai.APIStatusError
    return cls(f"Error code: {response.status_code} - {body}", response=response, body=data)


def _with_text_content(request: httpx.Request) -> httpx.Request:
    """The same request with every `"content": null` message sent as `""`."""
    try:
        body = json.loads(request.content)
    except (ValueError, httpx.RequestNotRead):
        return request
    messages = body.get("messages") if isinstance(body, dict) else None
    if not isinstance(messages, list) or all(
        not isinstance(m, dict) or m.get("content") is not None for m in messages
    ):
        return request
    for message in messages:
        if isinstance(message, dict) and message.get("content") is None:
            message["content"] = ""
    return _with_body(request, body)


def _with_body(request: httpx.Request, body: dict) -> httpx.Request:
    """The same request with another JSON body."""
    headers = {k: v for k, v in request.headers.items() if k.lower() != "content-length"}
    return httpx.Request(request.method, request.url, headers=headers, json=body)
