"""Fetching a web page the model or a search named, without letting it reach anything private (SSRF).

Only http(s), no credentials in the address, and every address the host name resolves to must be public
(no loopback, private, link-local, cloud metadata, multicast or reserved range). The connection then goes
to the very address that was checked, with the name kept for the Host header and TLS, so a DNS answer that
changes between the check and the connection (rebinding) cannot redirect it. Each redirect is checked the
same way. Size, time and content type are limited. Tests allow their loopback stand-in through
`allow` (BNAGPT_FETCH_ALLOW), which nothing else sets.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import urllib3
from charset_normalizer import from_bytes

from errors import FetchFailed

MAX_BYTES = 2 * 2**20
TIMEOUT = 8.0  # seconds for the whole fetch, redirects included
MAX_REDIRECTS = 4
TEXT_TYPES = ("text/html", "application/xhtml+xml", "text/plain", "text/markdown")
USER_AGENT = "bnaGPT/1.0 (+a self-hosted chat fetching a page its user asked about)"

_pools = urllib3.PoolManager(num_pools=8, retries=False)


@dataclass(frozen=True, slots=True)
class Page:
    """A fetched page: where it ended up, its type and its text."""

    url: str
    content_type: str
    text: str


def addresses(host: str, port: int) -> list[str]:
    """Every address a host name resolves to (the system's resolver)."""
    return [info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


def fetch(
    url: str,
    allow: frozenset[str] = frozenset(),
    timeout: float = TIMEOUT,
    resolve: Callable[[str, int], list[str]] = addresses,
) -> Page:
    """Fetch a text page; raise FetchFailed saying why it was refused or failed."""
    deadline = time.monotonic() + timeout
    for _ in range(MAX_REDIRECTS + 1):
        host, port, address = _checked(url, allow, resolve)
        response = _request(url, host, port, address, deadline)
        try:
            if response.status in (301, 302, 303, 307, 308):
                location = response.headers.get("Location")
                if not location:
                    raise FetchFailed(f"{url} redirects nowhere.")
                url = urljoin(url, location)
                continue
            if response.status >= 400:
                raise FetchFailed(f"{url} answered HTTP {response.status}.")
            kind = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if kind not in TEXT_TYPES:
                raise FetchFailed(f"{url} is not a text page ({kind or 'no type given'}).")
            body = _read(response, deadline)
            return Page(url, kind, _decode(body, response.headers.get("Content-Type", "")))
        finally:
            response.release_conn()
    raise FetchFailed(f"{url} redirects more than {MAX_REDIRECTS} times.")


def _checked(
    url: str, allow: frozenset[str], resolve: Callable[[str, int], list[str]]
) -> tuple[str, int, str]:
    """(host name, port, the address to connect to), or FetchFailed if the address may not be fetched."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (a malformed address raises here, not later)
    except ValueError:
        raise FetchFailed(f"{url} is not a valid address.") from None
    if parts.scheme not in ("http", "https"):
        raise FetchFailed(f"Only http and https pages are fetched, not {parts.scheme or 'this'}: {url}")
    if parts.username or parts.password:
        raise FetchFailed("An address with a user name or password in it is not fetched.")
    host = parts.hostname
    if not host:
        raise FetchFailed(f"{url} names no host.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise FetchFailed(f"{url} has an invalid port.") from None
    try:
        found = resolve(host, port)
    except (OSError, UnicodeError):
        found = []
    if not found:
        raise FetchFailed(f"{host} could not be found.")
    if f"{host}:{port}" in allow:
        return host, port, found[0]
    for address in found:
        if not public(address):
            raise FetchFailed(f"{host} points to a private or local address ({address}); it is not fetched.")
    return host, port, found[0]


def check_public(url: str, resolve: Callable[[str, int], list[str]] = addresses) -> None:
    """Raise FetchFailed unless `url` is http(s) to a public address (the guard `fetch` applies)."""
    _checked(url, frozenset(), resolve)


_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def public(address: str) -> bool:
    """Whether an IP address is on the public internet. IPv6 forms that carry an IPv4 address are judged
    by it (IPv4-mapped, NAT64); tunnels whose far end cannot be checked (6to4 2002::/16, Teredo) and the
    old site-local range (fec0::/10, private in all but name) are not public."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        elif ip in _NAT64:
            ip = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        elif ip.sixtofour is not None or ip.teredo is not None or ip.is_site_local:
            return False
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_link_local)


def _request(url: str, host: str, port: int, address: str, deadline: float) -> urllib3.BaseHTTPResponse:
    parts = urlsplit(url)
    left = deadline - time.monotonic()
    if left <= 0:
        raise FetchFailed(f"{url} took longer than {TIMEOUT:g} seconds.")
    options = {"timeout": urllib3.Timeout(connect=min(left, 5.0), read=left)}
    if parts.scheme == "https":
        options |= {"server_hostname": host, "assert_hostname": host}
    pool = _pools.connection_from_host(address, port, parts.scheme, pool_kwargs=options)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    headers = {
        "Host": parts.netloc.rsplit("@", 1)[-1],
        "User-Agent": USER_AGENT,
        "Accept": "text/html,*/*;q=0.5",
    }
    try:
        return pool.urlopen(
            "GET", path, headers=headers, redirect=False, preload_content=False, retries=False
        )
    except urllib3.exceptions.HTTPError as error:
        raise FetchFailed(f"{url} could not be fetched ({type(error).__name__}).") from None


def _read(response: urllib3.BaseHTTPResponse, deadline: float) -> bytes:
    """The body, up to MAX_BYTES, read until the deadline: each read takes what has arrived and waits at
    most the time left, so a server sending a byte a second cannot stretch the fetch."""
    chunks, size = [], 0
    connection = getattr(response, "connection", None)
    try:
        while size < MAX_BYTES:
            left = deadline - time.monotonic()
            if left <= 0:
                break  # the start of a long page is enough to answer from
            if connection is not None and connection.sock is not None:
                connection.sock.settimeout(left)
            chunk = response.read1(64 * 1024)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except (urllib3.exceptions.HTTPError, OSError):
        if not chunks:
            raise FetchFailed("The page could not be read.") from None
    return b"".join(chunks)[:MAX_BYTES]


def _decode(body: bytes, content_type: str) -> str:
    for part in content_type.split(";")[1:]:
        name, _, value = part.strip().partition("=")
        if name.lower() == "charset":
            try:
                return body.decode(value.strip('"'), errors="replace")
            except LookupError:
                break
    best = from_bytes(body).best()
    return str(best) if best is not None else body.decode("utf-8", errors="replace")
