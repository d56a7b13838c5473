"""The HTTP transport under every provider's client: replies that can be stopped, and llama.cpp mended.

- `stop()` ends the reply being streamed: the body simply ends, so the openai client and llama-index finish
  normally, and the connection is closed, so the server stops generating too.
- A server-sent stream that ends without `data: [DONE]` was cut short (a crash, a dropped connection); the
  openai client would take it for a normal end, so we raise instead.
- llama.cpp's server reports some errors (a prompt longer than its context) only after it has answered a
  streaming request with 200 and an empty body. On an empty stream we send the request once more without
  streaming, where the server does say what is wrong, and raise that as the openai client would have.
- When tools are offered, a reply that is only a tool call written as plain JSON (`controller/tool_calls.py`)
  comes back as the OpenAI `tool_calls` it means. Such a reply is held back while it may still be one; any
  other reply streams as it arrives.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator

import httpx
import openai

from controller import tool_calls

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

    def __init__(self) -> None:
        self._inner = httpx.HTTPTransport()
        self._stop = threading.Event()

    def stop(self) -> None:
        """End the reply being streamed; its connection is closed."""
        self._stop.set()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send the request; hand back a response whose body can be cut short."""
        self._stop.clear()
        response = self._inner.handle_request(request)
        is_sse = response.headers.get("content-type", "").startswith("text/event-stream")
        stream: httpx.SyncByteStream = response.stream
        headers = response.headers
        names = _offered_tools(request) if response.status_code == 200 else []
        if names and is_sse:
            stream = _RecognisedCalls(stream, names)
        elif names:
            body = _with_recognised_calls(b"".join(stream), names)
            stream = httpx.ByteStream(body)
            headers = httpx.Headers({k: v for k, v in headers.items() if k.lower() != "content-length"})
        return httpx.Response(
            status_code=response.status_code,
            headers=headers,
            stream=_StoppableStream(
                stream, self._stop, expect_done=is_sse, on_empty=lambda: self._explain(request)
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


class _RecognisedCalls(httpx.SyncByteStream):
    """A chat completion event stream in which a reply that is only a plain-JSON tool call becomes one."""

    def __init__(self, inner: httpx.SyncByteStream, names: list[str]) -> None:
        self._inner = inner
        self._names = names

    def __iter__(self) -> Iterator[bytes]:
        pending = b""
        held: list[bytes] = []  # events of a reply that may still be a call
        text = ""
        last: dict = {}
        deciding = True
        for chunk in self._inner:
            if not deciding:
                yield chunk
                continue
            pending += chunk
            while deciding and b"\n\n" in pending:
                event, pending = pending.split(b"\n\n", 1)
                event += b"\n\n"
                data = _event_data(event)
                if data == "[DONE]":
                    calls = tool_calls.parse(text, self._names)
                    if calls:
                        held = [_calls_event(last, calls)]
                    deciding = False
                    held.append(event)
                    continue
                try:
                    payload = json.loads(data) if data else {}
                    delta = payload["choices"][0]["delta"] if payload.get("choices") else {}
                except (ValueError, KeyError, IndexError, TypeError, AttributeError):
                    payload, delta = {}, {}
                held.append(event)
                if isinstance(payload, dict) and payload.get("choices"):
                    last = payload
                if not isinstance(delta, dict) or delta.get("tool_calls"):
                    deciding = False  # the server recognised a call itself
                    continue
                text += delta.get("content") or ""
                deciding = tool_calls.could_be_call(text)
            if not deciding:
                yield from held
                held = []
                if pending:
                    yield pending
                    pending = b""
        yield from held
        if pending:
            yield pending

    def close(self) -> None:
        self._inner.close()


def _event_data(event: bytes) -> str:
    """The `data:` payload of one server-sent event."""
    lines = event.decode("utf-8", errors="replace").splitlines()
    return "\n".join(line[5:].lstrip() for line in lines if line.startswith("data:"))


def _calls_event(last: dict, calls: list[dict]) -> bytes:
    """One chunk event carrying `calls`, shaped like the server's own chunks."""
    chunk = {k: v for k, v in last.items() if k not in ("choices", "usage", "timings")}
    chunk["choices"] = [
        {
            "index": 0,
            "delta": {"role": "assistant", "tool_calls": [{"index": i, **c} for i, c in enumerate(calls)]},
            "finish_reason": "tool_calls",
        }
    ]
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


def _with_recognised_calls(body: bytes, names: list[str]) -> bytes:
    """A complete chat completion whose text is only a plain-JSON tool call, as that call."""
    try:
        document = json.loads(body)
        choice = document["choices"][0]
        message = choice["message"]
    except (ValueError, KeyError, IndexError, TypeError):
        return body
    if not isinstance(message, dict) or message.get("tool_calls") or not message.get("content"):
        return body
    calls = tool_calls.parse(message["content"], names)
    if not calls:
        return body
    message["content"] = None
    message["tool_calls"] = calls
    choice["finish_reason"] = "tool_calls"
    return json.dumps(document).encode()


def _offered_tools(request: httpx.Request) -> list[str]:
    """The tool names a chat completion request offers, if any."""
    if request.method != "POST" or not request.url.path.endswith("/chat/completions"):
        return []
    try:
        if b'"tools"' not in request.content:  # most requests: no need to parse a long history
            return []
        return tool_calls.tool_names(json.loads(request.content))
    except (ValueError, httpx.RequestNotRead):
        return []


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


def _with_body(request: httpx.Request, body: dict) -> httpx.Request:
    """The same request with another JSON body."""
    headers = {k: v for k, v in request.headers.items() if k.lower() != "content-length"}
    return httpx.Request(request.method, request.url, headers=headers, json=body)
