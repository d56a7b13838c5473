"""Web search back-ends behind one seam: SearXNG (self-hosted), Brave, Tavily and DuckDuckGo.

Each is configured from the environment (or `.env`); which one answers is chosen in Settings, and by
default SearXNG when its address is set, then Brave, then Tavily, then DuckDuckGo (no key needed). Keys
stay in the environment: they never reach the data files, the log or the model.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from errors import SearchUnavailable
from utils.loading import IMPORTS

TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class Hit:
    """One search result."""

    title: str
    url: str
    snippet: str


class SearchEngine(ABC):
    """A web search API."""

    name: str = ""
    label: str = ""

    @abstractmethod
    def search(self, query: str, count: int) -> list[Hit]:
        """The results for `query`, best first; raise SearchUnavailable saying what went wrong."""

    def _get_json(self, method: str, url: str, **options: object) -> dict:
        try:
            response = httpx.request(method, url, timeout=TIMEOUT, **options)
        except httpx.HTTPError as error:
            raise SearchUnavailable(
                f"{self.label} could not be reached ({type(error).__name__}). {WHAT_TO_CONFIGURE}"
            ) from None
        if response.status_code in (401, 403):
            raise SearchUnavailable(f"{self.label} refused the key (HTTP {response.status_code}): check it.")
        if response.status_code >= 400:
            raise SearchUnavailable(f"{self.label} answered HTTP {response.status_code}. {WHAT_TO_CONFIGURE}")
        try:
            data = response.json()
        except ValueError:
            raise SearchUnavailable(
                f"{self.label} did not answer with JSON (for SearXNG, enable the json format in its "
                "settings.yml: search.formats)."
            ) from None
        if not isinstance(data, dict):
            raise SearchUnavailable(f"{self.label} answered in an unexpected form.")
        return data


WHAT_TO_CONFIGURE = (
    "Set BNAGPT_SEARXNG_URL to a SearXNG server (JSON format enabled), or BRAVE_API_KEY or "
    "TAVILY_API_KEY, in the environment or .env, then choose it in Settings."
)


def _hits(rows: object, title: str, url: str, snippet: str) -> list[Hit]:
    if not isinstance(rows, list):
        return []
    found = []
    for row in rows:
        address = row.get(url) if isinstance(row, Mapping) else None
        # Only web pages: a result is untrusted, and its address becomes a link under the reply.
        if isinstance(address, str) and address.lower().startswith(("http://", "https://")):
            found.append(
                Hit(" ".join(str(row.get(title) or address).split()), address, str(row.get(snippet) or ""))
            )
    return found


class SearXNG(SearchEngine):
    """A SearXNG instance's JSON API."""

    name, label = "searxng", "SearXNG"

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")

    def search(self, query: str, count: int) -> list[Hit]:
        data = self._get_json("GET", f"{self.base_url}/search", params={"q": query, "format": "json"})
        return _hits(data.get("results"), "title", "url", "content")[:count]


class Brave(SearchEngine):
    """Brave Search's web API."""

    name, label = "brave", "Brave Search"
    URL = "https://api.search.brave.com/res/v1/web/search"

    def __init__(self, key: str) -> None:
        self._key = key

    def search(self, query: str, count: int) -> list[Hit]:
        headers = {"X-Subscription-Token": self._key, "Accept": "application/json"}
        data = self._get_json("GET", self.URL, params={"q": query, "count": count}, headers=headers)
        web = data.get("web")
        return _hits(web.get("results") if isinstance(web, Mapping) else None, "title", "url", "description")


class Tavily(SearchEngine):
    """Tavily's search API."""

    name, label = "tavily", "Tavily"
    URL = "https://api.tavily.com/search"

    def __init__(self, key: str) -> None:
        self._key = key

    def search(self, query: str, count: int) -> list[Hit]:
        headers = {"Authorization": f"Bearer {self._key}"}
        data = self._get_json("POST", self.URL, json={"query": query, "max_results": count}, headers=headers)
        return _hits(data.get("results"), "title", "url", "content")[:count]


class DuckDuckGo(SearchEngine):
    """DuckDuckGo and other engines through the `ddgs` package: no key, but the public internet."""

    name, label = "duckduckgo", "DuckDuckGo (ddgs)"

    def search(self, query: str, count: int) -> list[Hit]:
        with IMPORTS:
            from ddgs import DDGS
            from ddgs.exceptions import DDGSException

        try:
            rows = DDGS(timeout=int(TIMEOUT)).text(query, max_results=count)
        except (DDGSException, OSError, ValueError) as error:
            raise SearchUnavailable(f"{self.label} could not search ({error}). {WHAT_TO_CONFIGURE}") from None
        return _hits(rows, "title", "href", "body")[:count]


def available(environment: Mapping[str, str]) -> dict[str, SearchEngine]:
    """The configured back-ends by name, in the default order of preference."""
    engines: dict[str, SearchEngine] = {}
    if environment.get("BNAGPT_SEARXNG_URL"):
        engines["searxng"] = SearXNG(environment["BNAGPT_SEARXNG_URL"])
    if environment.get("BRAVE_API_KEY"):
        engines["brave"] = Brave(environment["BRAVE_API_KEY"])
    if environment.get("TAVILY_API_KEY"):
        engines["tavily"] = Tavily(environment["TAVILY_API_KEY"])
    engines["duckduckgo"] = DuckDuckGo()
    return engines


def chosen(environment: Mapping[str, str], preference: str | None) -> SearchEngine:
    """The back-end chosen in Settings if it is configured, else the first configured one."""
    engines = available(environment)
    return engines.get(preference or "") or next(iter(engines.values()))
