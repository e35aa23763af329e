"""Politeness towards the hosts we fetch from.

`Hosts` caps the requests in flight to one host, spaces them by a minimum delay (or the
host's robots.txt Crawl-delay, if longer), and remembers hosts that asked us to back off
(429/503 with Retry-After) so that no feed or page on them is requested before the time is up.
`Robots` fetches, caches and applies robots.txt for article pages (RFC 9309, parsed by
protego: the most specific group and the longest matching rule win). Both keep a bounded
amount of state, so a daemon's memory stays flat however many hosts it meets.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit

import httpx
from protego import Protego

from ingest.errors import (
    BlockedError,
    FetchError,
    HostBackoffError,
    HTTPStatusError,
    StoreUnavailableError,
)
from ingest.records import Page

MAX_HOSTS = 4096  # per-host state kept before idle hosts are forgotten
ROBOTS_TTL = 24 * 3600.0  # seconds a robots.txt is trusted
ROBOTS_RETRY = 600.0  # seconds before an unreachable robots.txt is asked again
ROBOTS_MAX_BYTES = 500_000  # RFC 9309 asks crawlers to read at least 500 KiB
MAX_CRAWL_DELAY = 60.0  # a longer Crawl-delay would starve the host's feeds


def host_of(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


class SharedSlots(Protocol):
    """Host turns taken in a place every worker sees (the archive database)."""

    def take_turn(
        self, host: str, hold: float, now: float
    ) -> tuple[float | None, datetime | None]: ...

    def end_turn(self, host: str, held: float, until: float) -> None: ...


@dataclass
class _HostState:
    slots: asyncio.Semaphore
    busy: int = 0  # requests holding or waiting for a slot: 0 means the state may go
    next_start: float = 0.0  # monotonic time before which no request may start
    reserved: float = -math.inf  # monotonic time of the latest turn a request took
    last_start: float = -math.inf  # monotonic time the last request really started
    answered: float = -math.inf  # monotonic time the last response began to arrive
    delay: float = 0.0  # Crawl-delay, when longer than the default delay (re-applied by Robots)
    # With a delay, held from a request's turn until its answer begins to arrive.
    quiet: asyncio.Lock = field(default_factory=asyncio.Lock)


class Turn:
    """A request's turn on its host; `answered` when its response begins to arrive (or it
    failed): from then on the host's next request waits the delay."""

    def __init__(self, hosts: Hosts, host: str, state: _HostState, held: float | None) -> None:
        self._hosts = hosts
        self._host = host
        self._state = state
        self._held = held  # the shared row's value while this turn holds it
        self._open = True

    def answered(self) -> None:
        if not self._open:
            return
        self._open = False
        hosts, state = self._hosts, self._state
        state.answered = hosts._clock()
        spacing = hosts.spacing(self._host)
        if self._held is not None and hosts.shared is not None:
            # Pacing only: an unavailable database must not cost the answer on its way in
            # (the hold then runs out by itself).
            with contextlib.suppress(StoreUnavailableError):
                hosts.shared.end_turn(self._host, self._held, hosts._wall() + spacing)
        if state.quiet.locked():
            state.quiet.release()


class Hosts:
    """Per-host concurrency, spacing and back-off. ``clock`` is monotonic seconds.

    With ``shared`` set, the spacing between requests to a host is booked there, so that it
    holds across every worker of an archive (``wall``: epoch seconds, for the booking); the
    concurrency cap stays per worker.
    """

    def __init__(
        self,
        *,
        per_host: int,
        delay: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        wall: Callable[[], float] = time.time,
        hold: float = 60.0,
    ) -> None:
        self._per_host = per_host
        self._delay = delay
        self._hold = hold  # longest a request may keep its host from the other workers
        self._clock = clock
        self._sleep = sleep
        self._wall = wall
        self.shared: SharedSlots | None = None
        self._state: dict[str, _HostState] = {}
        self._blocked: dict[str, datetime] = {}

    def _get(self, host: str) -> _HostState:
        state = self._state.get(host)
        if state is None:
            if len(self._state) >= MAX_HOSTS:
                self._forget_idle()
            state = self._state[host] = _HostState(asyncio.Semaphore(self._per_host))
        return state

    def _forget_idle(self) -> None:
        now = self._clock()
        for host, state in list(self._state.items()):
            if state.busy == 0 and self._turn(state) <= now:
                del self._state[host]
        wall = datetime.now(UTC)
        for host, until in list(self._blocked.items()):
            if until <= wall:
                del self._blocked[host]

    def set_crawl_delay(self, host: str, seconds: float) -> None:
        self._get(host).delay = min(max(seconds, 0.0), MAX_CRAWL_DELAY)

    def spacing(self, host: str) -> float:
        """Seconds between two requests to ``host``: the delay, or its longer Crawl-delay."""
        state = self._state.get(host)
        return max(self._delay, state.delay if state else 0.0)

    def _turn(self, state: _HostState) -> float:
        return max(state.next_start, self._after_last(state))

    def _after_last(self, state: _HostState) -> float:
        """The delay after the last request started, and after its answer began to arrive."""
        return max(state.last_start, state.answered) + max(self._delay, state.delay)

    def turn_at(self, host: str) -> float:
        """The monotonic time at which ``host``'s next request may start, as far as this
        worker knows (other workers' turns are learnt when a request books its own)."""
        state = self._state.get(host)
        return self._turn(state) if state is not None else 0.0

    def concurrency(self, host: str) -> int:
        """Requests ``host`` may have in flight: with a delay, one at a time (each waits for
        the last one's answer); without, `per_host`."""
        return 1 if self.spacing(host) > 0 else self._per_host

    def blocked_for(self, host: str) -> float:
        """Seconds until ``host`` may be asked again, if it asked us to wait (Retry-After);
        meanwhile a request to it fails at once, unsent."""
        if host not in self._blocked:
            return 0.0
        now = datetime.fromtimestamp(self._wall(), UTC)
        until = self.blocked_until(host, now)
        return (until - now).total_seconds() if until is not None else 0.0

    def block(self, host: str, until: datetime) -> None:
        """No request to ``host`` before ``until`` (an aware time)."""
        current = self._blocked.get(host)
        if current is None and len(self._blocked) >= MAX_HOSTS:
            self._forget_idle()
        if current is None or until > current:
            self._blocked[host] = until

    def blocked_until(self, host: str, now: datetime) -> datetime | None:
        until = self._blocked.get(host)
        if until is None:
            return None
        if until <= now:
            del self._blocked[host]
            return None
        return until

    @asynccontextmanager
    async def slot(self, url: str) -> AsyncIterator[Turn]:
        """Hold one of the host's request slots, started no sooner than its delay allows;
        call the `Turn`'s ``answered`` when the response begins to arrive.

        With a delay, requests to a host go one at a time, each at least the delay after the
        last one started and after its answer began to arrive, across every worker when
        ``shared`` is set: so the server never sees two requests closer than the delay, even
        when one was held up on its way there.
        """
        host = host_of(url)
        state = self._get(host)
        state.busy += 1
        turn: Turn | None = None
        try:
            async with state.slots:
                spacing = max(self._delay, state.delay)
                if spacing > 0:
                    await state.quiet.acquire()  # released by `Turn.answered`
                try:
                    held = await self._take(url, host, state, spacing)
                except BaseException:
                    if spacing > 0:
                        state.quiet.release()
                    raise
                state.last_start = self._clock()
                turn = Turn(self, host, state, held)
                if spacing <= 0:
                    turn._open = False  # nothing to wait for
                yield turn
        finally:
            if turn is not None:
                turn.answered()  # a request that failed ends its turn as well
            state.busy -= 1

    async def _take(self, url: str, host: str, state: _HostState, spacing: float) -> float | None:
        """Wait for the host's turn; with ``shared``, take it there (returns what the shared
        row holds while the turn lasts)."""
        # Our own turns count too, and the delay counts from when each request really started
        # and from when its answer began to arrive.
        turn = max(state.next_start, state.reserved + spacing, self._clock())
        while True:
            state.reserved = turn
            state.next_start = max(state.next_start, turn + spacing)
            while (wait := max(turn, self._after_last(state)) - self._clock()) > 0:
                await self._sleep(wait)
            if self.shared is None or spacing <= 0:
                return None
            # Taken in the archive just before sending, and held until the answer begins to
            # arrive (or `hold` runs out, should this worker die meanwhile).
            now = self._wall()
            held, blocked = self.shared.take_turn(host, self._hold, now)
            if blocked is not None and blocked > datetime.fromtimestamp(now, UTC):
                self.block(host, blocked)  # it told another worker to wait
                raise HostBackoffError(
                    f"host asked us to wait until {blocked.isoformat()}",
                    url=url,
                    retry_at=blocked,
                )
            if held is None:
                return now + self._hold
            # Another worker's turn: its next one, or (a request still out, held until its
            # answer) a look again after the delay.
            turn = self._clock() + min(held - now, spacing)


@dataclass
class _Rules:
    parser: Protego | None  # None: everything disallowed for now
    expires: float
    problem: str | None = None
    crawl_delay: float = 0.0


class RobotsError(FetchError):
    reason = "robots_disallowed"


class Robots:
    """robots.txt for each host, fetched once per `ROBOTS_TTL` and kept for `MAX_HOSTS` hosts.

    Per RFC 9309: a robots.txt that answers 4xx means no rules; one that cannot be fetched
    (5xx, network error) means nothing may be fetched until it can.
    """

    def __init__(
        self,
        fetch: Callable[[str], Awaitable[Page]],
        hosts: Hosts,
        *,
        user_agent: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._hosts = hosts
        self._agent = user_agent
        self._clock = clock
        self._rules: OrderedDict[str, _Rules] = OrderedDict()
        self._loading: dict[str, asyncio.Future[_Rules]] = {}

    async def check(self, url: str) -> None:
        """Raise `RobotsError` if robots.txt forbids ``url`` (or cannot be read), and
        `FetchError` (bad_url) for a URL that could not be fetched at all."""
        check_url(url, url)  # its own failure, not its robots.txt's
        parts = urlsplit(url)
        origin = urlunsplit((parts.scheme, parts.netloc, "", "", "")).lower()
        rules = await self._rules_for(origin)
        if rules.crawl_delay:
            # Kept with the rules, not only in Hosts, which may forget an idle host.
            self._hosts.set_crawl_delay(host_of(url), rules.crawl_delay)
        if rules.parser is None:
            raise RobotsError(
                f"robots.txt unavailable ({rules.problem}): not fetched",
                url=url,
                reason="robots_unavailable",
            )
        if not rules.parser.can_fetch(url, self._agent):
            raise RobotsError("robots.txt disallows this page: not fetched", url=url)

    async def _rules_for(self, origin: str) -> _Rules:
        rules = self._rules.get(origin)
        if rules is not None and rules.expires > self._clock():
            self._rules.move_to_end(origin)
            return rules
        loading = self._loading.get(origin)
        if loading is not None:  # another task is fetching it: share its answer
            return await asyncio.shield(loading)
        future: asyncio.Future[_Rules] = asyncio.get_running_loop().create_future()
        self._loading[origin] = future
        try:
            rules = await self._load(origin)
        except BaseException:
            future.cancel()  # the load did not finish (cancelled, or a bug): waiters give up too
            raise
        finally:
            del self._loading[origin]
        future.set_result(rules)
        self._rules[origin] = rules
        while len(self._rules) > MAX_HOSTS:
            self._rules.popitem(last=False)
        return rules

    async def _load(self, origin: str) -> _Rules:
        try:
            page = await self._fetch(origin + "/robots.txt")
        except (HostBackoffError, BlockedError):
            # The host asked us to wait, or is one we may not reach at all (a page redirected
            # into a private network): no verdict on its robots.txt, and said as it is.
            raise
        except HTTPStatusError as exc:
            # 4xx means "no rules", except 429, which like 5xx says "not now".
            if 400 <= exc.status < 500 and exc.status != 429:
                return _Rules(Protego.parse(""), self._clock() + ROBOTS_TTL)
            return _Rules(None, self._clock() + ROBOTS_RETRY, exc.reason)
        except FetchError as exc:
            return _Rules(None, self._clock() + ROBOTS_RETRY, exc.reason)
        parser = Protego.parse(page.body.decode("utf-8", "replace"))
        delay = parser.crawl_delay(self._agent) or 0.0
        return _Rules(parser, self._clock() + ROBOTS_TTL, crawl_delay=float(delay))


def check_url(url: str, current: str) -> None:
    """Refuse, before any connection, a URL (the first or a redirect's) that is not http(s)
    or that httpx or a socket could not take (a port past 65535, a broken host)."""
    shown = current if len(current) <= 200 else current[:200] + "..."
    try:
        scheme = urlsplit(current).scheme.lower()
    except ValueError as exc:  # a host that NFKC would change, a broken IPv6 literal
        raise FetchError(f"invalid URL: {exc}", url=url, reason="bad_url") from None
    if scheme not in {"http", "https"}:
        raise FetchError(f"unsupported URL scheme in {shown}", url=url, reason="scheme")
    try:
        parsed = httpx.URL(current)
        # As the resolver will have it: "a..b", a 64-byte label, a bad "xn--" label raise
        # UnicodeError there, out of httpx's errors.
        parsed.host.encode("idna")
    except (httpx.InvalidURL, UnicodeError) as exc:
        raise FetchError(f"invalid URL: {exc}", url=url, reason="bad_url") from None
    if parsed.port is not None and not 0 < parsed.port < 65536:
        raise FetchError(f"invalid port {parsed.port} in URL", url=url, reason="bad_url")
