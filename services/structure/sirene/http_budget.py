"""What the HTTP sources (the INSEE API, recherche-entreprises) share in Redis, whatever process
asks: a request budget, a back-off after a 429, and a cache of their answers.

Keys (all under `structure:sirene:`; `{source}` is `insee` or `recherche`):

- `structure:sirene:budget:{source}`: the moving window of the requests sent, a list of their
  times (newest first, at most the budget's size); expires a window and a minute after the last
  request.
- `structure:sirene:backoff:{source}`: the time (epoch seconds) before which the source is not
  called, set after a 429; expires a minute after the back-off ends.
- `structure:sirene:strikes:{source}`: 429s in a row, for a back-off that grows when the answer
  gives no `Retry-After`; removed by the next answer that is not a 429, else expires after an
  hour.
- `structure:sirene:cache:{source}:{siret}`: the answer to a look-up, "unknown" included, as
  JSON; a day.
- `structure:sirene:search:{source}:{sha256}`: the answer to a search, keyed by the SHA-256 of
  the query (a query may be a person's name); five minutes.

Over its budget or backing off, a source is unavailable now (SourceUnavailable): nobody waits
for a free slot, the caller tries the next source. When Redis itself fails, the source is
unavailable too: it never sends a request it could not count.

The window and the back-off read the time from the injected clock (the same for both), not
from Redis, so that tests move time instead of sleeping; processes on one deployment share NTP
time, and a second of drift only shifts a window by a second.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from email.utils import parsedate_to_datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import redis
import urllib3

from services.structure.sirene.model import (
    CompanyHit,
    CompanyQuery,
    CompanyResults,
    Establishment,
    SourceUnavailable,
)

log = logging.getLogger(__name__)

PREFIX = "structure:sirene"
CACHE_SECONDS = 24 * 3600
SEARCH_CACHE_SECONDS = 300
STRIKES_SECONDS = 3600
RETRY_AFTER_CAP_SECONDS = 3600  # a Retry-After beyond an hour is read as an hour
# The window and the back-off are read against the clock; their keys outlive them by this much,
# so that a process whose clock is a little behind still sees them.
EXPIRY_MARGIN_SECONDS = 60

Clock = Callable[[], float]

# KEYS: back-off, window. ARGV: now, budget size, window length in seconds, expiry margin.
# Returns {0, resume_at} while backing off, {1, 0} when the budget is spent, {2, 0} when a request
# may go (and is counted).
_SPEND = """
local resume_at = tonumber(redis.call('GET', KEYS[1]) or '0')
local now = tonumber(ARGV[1])
if resume_at > now then
    return {0, tostring(resume_at)}
end
local size = tonumber(ARGV[2])
local period = tonumber(ARGV[3])
local oldest = redis.call('LINDEX', KEYS[2], size - 1)
if oldest and tonumber(oldest) > now - period then
    return {1, '0'}
end
redis.call('LPUSH', KEYS[2], ARGV[1])
redis.call('LTRIM', KEYS[2], 0, size - 1)
redis.call('EXPIRE', KEYS[2], math.ceil(period) + tonumber(ARGV[4]))
return {2, '0'}
"""
_BACKING_OFF, _SPENT, _GRANTED = 0, 1, 2


@dataclass(frozen=True)
class Budget:
    """A source's published limit (`requests` per `per_seconds`) and its back-off after a 429
    without `Retry-After`: `first_backoff` seconds, doubled at each 429 in a row, at most
    `max_backoff`."""

    requests: int
    per_seconds: float
    first_backoff: float
    max_backoff: float


class HttpBudget:
    """One source's share of Redis: its budget, its back-off and its cache."""

    def __init__(self, client: redis.Redis, source: str, budget: Budget, clock: Clock = time.time) -> None:
        self.client = client
        self.source = source
        self.budget = budget
        self.clock = clock
        self._spend = client.register_script(_SPEND)

    # --- keys ---------------------------------------------------------------------------------

    def _key(self, thing: str) -> str:
        return f"{PREFIX}:{thing}:{self.source}"

    def cache_key(self, siret: str) -> str:
        return f"{PREFIX}:cache:{self.source}:{siret}"

    def search_key(self, query: CompanyQuery) -> str:
        text = json.dumps(
            [
                query.text.strip().casefold(),
                query.postal_code.strip(),
                query.city.strip().casefold(),
                query.limit,
            ]
        )
        return f"{PREFIX}:search:{self.source}:{hashlib.sha256(text.encode()).hexdigest()}"

    # --- budget and back-off ------------------------------------------------------------------

    def spend(self) -> None:
        """Count one request, or raise SourceUnavailable: backing off, or over the budget."""
        try:
            outcome, resume_at = self._spend(
                keys=[self._key("backoff"), self._key("budget")],
                args=[
                    repr(self.clock()),
                    self.budget.requests,
                    self.budget.per_seconds,
                    EXPIRY_MARGIN_SECONDS,
                ],
            )
        except redis.RedisError as e:
            raise SourceUnavailable(f"{self.source}: Redis did not answer ({type(e).__name__})") from None
        if int(outcome) == _BACKING_OFF:
            wait = float(resume_at) - self.clock()
            raise SourceUnavailable(f"{self.source}: backing off after a 429 for {wait:.0f} more s")
        if int(outcome) == _SPENT:
            budget = self.budget
            raise SourceUnavailable(
                f"{self.source}: request budget spent ({budget.requests} per {budget.per_seconds:g} s)"
            )

    def back_off(self, retry_after: str | None) -> float:
        """After a 429: no process calls the source for `Retry-After` (seconds or an HTTP date),
        or, without it, for a time that doubles at each 429 in a row. Returns the wait."""
        try:
            strikes_key = self._key("strikes")
            pipe = self.client.pipeline()
            pipe.incr(strikes_key)
            pipe.expire(strikes_key, STRIKES_SECONDS)
            strikes = int(pipe.execute()[0])
            now = self.clock()
            wait = retry_after_seconds(retry_after, now)
            if wait is None:
                wait = min(self.budget.first_backoff * 2 ** (strikes - 1), self.budget.max_backoff)
            self.client.set(
                self._key("backoff"), repr(now + wait), ex=math.ceil(wait) + EXPIRY_MARGIN_SECONDS
            )
        except redis.RedisError as e:
            raise SourceUnavailable(f"{self.source}: Redis did not answer ({type(e).__name__})") from None
        return wait

    def answered(self) -> None:
        """The source answered something other than a 429: the next back-off starts small."""
        try:
            self.client.delete(self._key("strikes"))
        except redis.RedisError as e:
            raise SourceUnavailable(f"{self.source}: Redis did not answer ({type(e).__name__})") from None

    # --- cache --------------------------------------------------------------------------------

    def cached(self, siret: str) -> tuple[bool, Establishment | None]:
        """(True, the answer) when this look-up was answered within a day, "unknown" (None)
        included; (False, None) otherwise."""
        raw = self._get(self.cache_key(siret))
        if raw is None:
            return False, None
        try:
            found = json.loads(raw)["establishment"]
            return True, None if found is None else Establishment(**found)
        except (ValueError, TypeError, KeyError):
            log.warning("SIRENE source %s: a cached answer did not read, asked again", self.source)
            return False, None

    def remember(self, siret: str, establishment: Establishment | None) -> None:
        found = None if establishment is None else dataclasses.asdict(establishment)
        self._set(self.cache_key(siret), json.dumps({"establishment": found}), CACHE_SECONDS)

    def cached_search(self, query: CompanyQuery) -> CompanyResults | None:
        raw = self._get(self.search_key(query))
        if raw is None:
            return None
        try:
            data = json.loads(raw)
            return CompanyResults([CompanyHit(**hit) for hit in data["results"]], int(data["total"]))
        except (ValueError, TypeError, KeyError):
            log.warning("SIRENE source %s: a cached search did not read, asked again", self.source)
            return None

    def remember_search(self, query: CompanyQuery, results: CompanyResults) -> None:
        self._set(self.search_key(query), json.dumps(dataclasses.asdict(results)), SEARCH_CACHE_SECONDS)

    def _get(self, key: str) -> Any:
        try:
            return self.client.get(key)
        except redis.RedisError as e:
            raise SourceUnavailable(f"{self.source}: Redis did not answer ({type(e).__name__})") from None

    def _set(self, key: str, value: str, seconds: int) -> None:
        try:
            self.client.set(key, value, ex=seconds)
        except redis.RedisError as e:
            raise SourceUnavailable(f"{self.source}: Redis did not answer ({type(e).__name__})") from None


def retry_after_seconds(header: str | None, now: float) -> float | None:
    """`Retry-After` as seconds from `now` (it is a number of seconds or an HTTP date), capped;
    None when absent or unreadable."""
    if header is None or not header.strip():
        return None
    text = header.strip()
    if text.isascii() and text.isdigit():
        seconds = float(text)
    else:
        try:
            seconds = parsedate_to_datetime(text).timestamp() - now
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    return min(max(seconds, 1.0), RETRY_AFTER_CAP_SECONDS)


# --- one request, within the budget ---------------------------------------------------------


def guarded_get(
    http: urllib3.PoolManager,
    budget: HttpBudget,
    url: str,
    *,
    fields: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> urllib3.BaseHTTPResponse:
    """GET `url` if the budget allows, and return the answer whatever its status, except:
    a 429 (the back-off starts, shared by every process), a timeout, a refused or broken
    connection, all SourceUnavailable. Logged with the status or the error's kind only: the URL
    holds a SIRET or a query, which may name a person."""
    source = budget.source
    budget.spend()
    try:
        response = http.request("GET", url, fields=fields, headers=headers, redirect=False, retries=False)
    except urllib3.exceptions.TimeoutError:
        log.warning("SIRENE source %s: no answer in time", source)
        raise SourceUnavailable(f"{source}: no answer in time") from None
    except urllib3.exceptions.HTTPError as e:
        log.warning("SIRENE source %s: the request failed (%s)", source, type(e).__name__)
        raise SourceUnavailable(f"{source}: the request failed ({type(e).__name__})") from None
    if response.status == 429:
        wait = budget.back_off(response.headers.get("Retry-After"))
        log.warning("SIRENE source %s: 429, no request for %.0f s", source, wait)
        raise SourceUnavailable(f"{source}: too many requests, backing off for {wait:.0f} s")
    budget.answered()
    return response


def unavailable(source: str, status: int) -> SourceUnavailable:
    """An answer that means "cannot say now" (5xx, 401, 403…), logged by its status only."""
    log.warning("SIRENE source %s answered %s", source, status)
    return SourceUnavailable(f"{source}: answered {status}")


def json_body(source: str, response: urllib3.BaseHTTPResponse) -> Any:
    try:
        return json.loads(response.data)
    except ValueError:
        raise not_as_documented(source, "not JSON") from None


def not_as_documented(source: str, what: str) -> SourceUnavailable:
    log.warning("SIRENE source %s: the answer is not as documented (%s)", source, what)
    return SourceUnavailable(f"{source}: the answer is not as documented ({what})")


def today(clock: Clock) -> str:
    """The ISO date in France at `clock`'s time (UTC where no time-zone data is installed): the
    date of the data an API answers from."""
    try:
        zone: tzinfo = ZoneInfo("Europe/Paris")
    except ZoneInfoNotFoundError:
        zone = UTC
    return datetime.fromtimestamp(clock(), zone).date().isoformat()
