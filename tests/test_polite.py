"""`ingest.polite`: per-host spacing, concurrency and back-off (`Hosts`), robots.txt (`Robots`).

Time is a virtual monotonic clock (`tests.virtual_clock`): it passes only while every task
sleeps, so nothing here really sleeps.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest

from ingest import polite
from ingest.config import DEFAULT_USER_AGENT
from ingest.errors import (
    BlockedError,
    FetchError,
    HostBackoffError,
    HTTPStatusError,
    NetworkError,
)
from ingest.polite import (
    MAX_CRAWL_DELAY,
    ROBOTS_RETRY,
    ROBOTS_TTL,
    Hosts,
    Robots,
    RobotsError,
)
from ingest.records import Page
from ingest.schedule import page_retry
from tests.virtual_clock import VirtualClock

AGENT = "ingest/0.1.0 (news feed archiver; python-httpx)"
SITE = "https://news.example"
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


async def let_others_run(turns: int = 10) -> None:
    """Yield to the event loop a few times (no time passes)."""
    for _ in range(turns):
        await asyncio.sleep(0)


def make_hosts(clock: VirtualClock, *, per_host: int = 1, delay: float = 1.0) -> Hosts:
    return Hosts(per_host=per_host, delay=delay, clock=clock, sleep=clock.sleep)


async def start_times(hosts: Hosts, clock: VirtualClock, urls: list[str]) -> list[float]:
    """Take a slot for each URL in turn; the fake time at which each request may start."""
    starts: list[float] = []
    for url in urls:
        async with hosts.slot(url):
            starts.append(clock())
    return starts


def gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in pairwise(times)]


# --- Hosts: spacing -----------------------------------------------------------------------------


def test_requests_to_one_host_are_spaced_by_the_delay() -> None:
    clock = VirtualClock()
    hosts = make_hosts(clock, delay=2.0)
    urls = [f"{SITE}/a", f"{SITE}/b?x=1", "https://NEWS.example:8443/c", f"{SITE}/d"]
    starts = asyncio.run(start_times(hosts, clock, urls))
    assert gaps(starts) == [2.0, 2.0, 2.0]
    assert clock.waits == [2.0, 2.0, 2.0]


def test_no_wait_once_the_delay_has_passed() -> None:
    clock = VirtualClock()
    hosts = make_hosts(clock, delay=2.0)

    async def scenario() -> None:
        async with hosts.slot(f"{SITE}/a"):
            pass
        clock.advance(5.0)
        async with hosts.slot(f"{SITE}/b"):
            pass
        clock.advance(1.5)
        async with hosts.slot(f"{SITE}/c"):
            pass

    asyncio.run(scenario())
    assert clock.waits == [pytest.approx(0.5)]


def test_a_zero_delay_never_waits() -> None:
    clock = VirtualClock()
    hosts = make_hosts(clock, delay=0.0)
    asyncio.run(start_times(hosts, clock, [f"{SITE}/{n}" for n in range(5)]))
    assert clock.waits == []


def test_a_longer_crawl_delay_wins() -> None:
    clock = VirtualClock()
    hosts = make_hosts(clock, delay=1.0)
    hosts.set_crawl_delay("news.example", 7.0)
    starts = asyncio.run(start_times(hosts, clock, [f"{SITE}/{n}" for n in range(3)]))
    assert gaps(starts) == [7.0, 7.0]


def test_a_shorter_crawl_delay_does_not_shorten_the_delay() -> None:
    clock = VirtualClock()
    hosts = make_hosts(clock, delay=3.0)
    hosts.set_crawl_delay("news.example", 0.5)
    starts = asyncio.run(start_times(hosts, clock, [f"{SITE}/{n}" for n in range(3)]))
    assert gaps(starts) == [3.0, 3.0]


def test_the_crawl_delay_is_capped() -> None:
    clock = VirtualClock()
    hosts = make_hosts(clock, delay=1.0)
    hosts.set_crawl_delay("news.example", 86400.0)
    starts = asyncio.run(start_times(hosts, clock, [f"{SITE}/{n}" for n in range(3)]))
    assert gaps(starts) == [MAX_CRAWL_DELAY, MAX_CRAWL_DELAY]
    assert MAX_CRAWL_DELAY <= 60.0


def test_a_crawl_delay_applies_to_its_host_only() -> None:
    clock = VirtualClock()
    hosts = make_hosts(clock, delay=1.0)
    hosts.set_crawl_delay("slow.example", 30.0)
    starts = asyncio.run(start_times(hosts, clock, [f"{SITE}/a", f"{SITE}/b"]))
    assert gaps(starts) == [1.0]


def test_different_hosts_do_not_wait_for_each_other() -> None:
    clock = VirtualClock()
    hosts = make_hosts(clock, delay=5.0)
    urls = [f"https://site{n}.example/page" for n in range(10)]
    starts = asyncio.run(start_times(hosts, clock, urls))
    assert clock.waits == []
    assert set(starts) == {1000.0}


def test_a_busy_host_does_not_hold_up_another() -> None:
    clock = VirtualClock()
    hosts = make_hosts(clock, per_host=1, delay=0.0)
    done: list[str] = []

    async def scenario() -> None:
        release = asyncio.Event()

        async def hold_a() -> None:
            async with hosts.slot("https://a.example/1"):
                await release.wait()
            done.append("a")

        holder = asyncio.create_task(hold_a())
        await let_others_run()
        async with hosts.slot("https://b.example/1"):
            done.append("b")
        release.set()
        await holder

    asyncio.run(scenario())
    assert done == ["b", "a"]


# --- Hosts: concurrency -------------------------------------------------------------------------


async def peak_concurrency(hosts: Hosts, urls: list[str]) -> dict[str, int]:
    """Run one task per URL; the most tasks inside a slot at once, per host."""
    inside: dict[str, int] = {}
    peak: dict[str, int] = {}

    async def one(url: str) -> None:
        host = polite.host_of(url)
        async with hosts.slot(url):
            inside[host] = inside.get(host, 0) + 1
            peak[host] = max(peak.get(host, 0), inside[host])
            await let_others_run()
            inside[host] -= 1

    await asyncio.gather(*(one(url) for url in urls))
    return peak


@pytest.mark.parametrize("per_host", [1, 2, 3])
def test_per_host_limits_requests_in_flight(per_host: int) -> None:
    clock = VirtualClock()
    hosts = make_hosts(clock, per_host=per_host, delay=0.0)
    peak = asyncio.run(peak_concurrency(hosts, [f"{SITE}/{n}" for n in range(8)]))
    assert peak == {"news.example": per_host}


def test_per_host_limit_is_per_host() -> None:
    clock = VirtualClock()
    hosts = make_hosts(clock, per_host=2, delay=0.0)
    urls = [f"https://{host}.example/{n}" for n in range(6) for host in ("a", "b", "c")]
    peak = asyncio.run(peak_concurrency(hosts, urls))
    assert peak == {"a.example": 2, "b.example": 2, "c.example": 2}


def test_with_a_delay_requests_to_one_host_go_one_at_a_time_and_spaced() -> None:
    clock = VirtualClock()
    hosts = make_hosts(clock, per_host=4, delay=2.0)
    peak = asyncio.run(peak_concurrency(hosts, [f"{SITE}/{n}" for n in range(4)]))
    assert peak == {"news.example": 1}
    assert clock.waits == [2.0, 2.0, 2.0]  # each 2 s after the last one's answer
    assert hosts.concurrency("news.example") == 1
    assert hosts.concurrency("other.example") == 1  # the delay holds for every host
    assert make_hosts(clock, per_host=4, delay=0.0).concurrency("news.example") == 4


def test_the_delay_counts_from_the_answer_as_the_server_sees_it() -> None:
    # A request held up on its way (a slow network, a busy server) is answered late: the
    # next one waits the delay from the answer, not from when the first one was sent.
    clock = VirtualClock()
    hosts = make_hosts(clock, per_host=4, delay=1.0)
    starts: list[float] = []

    async def request(answer_after: float) -> None:
        async with hosts.slot(f"{SITE}/story") as turn:
            starts.append(clock())
            await clock.sleep(answer_after)
            turn.answered()
            await clock.sleep(5.0)  # the body still downloading holds nobody back

    async def scenario() -> None:
        await asyncio.gather(request(3.0), request(0.0), request(0.0))

    asyncio.run(scenario())
    assert starts == [1000.0, 1004.0, 1005.0]


# --- Hosts: back-off ----------------------------------------------------------------------------


def test_block_keeps_the_later_time() -> None:
    hosts = make_hosts(VirtualClock())
    hosts.block("news.example", NOW + timedelta(minutes=10))
    hosts.block("news.example", NOW + timedelta(minutes=5))
    assert hosts.blocked_until("news.example", NOW) == NOW + timedelta(minutes=10)
    hosts.block("news.example", NOW + timedelta(minutes=20))
    assert hosts.blocked_until("news.example", NOW) == NOW + timedelta(minutes=20)


def test_blocking_one_host_leaves_others_alone() -> None:
    hosts = make_hosts(VirtualClock())
    hosts.block("news.example", NOW + timedelta(minutes=10))
    assert hosts.blocked_until("other.example", NOW) is None


def test_blocked_until_forgets_a_block_once_passed() -> None:
    hosts = make_hosts(VirtualClock())
    until = NOW + timedelta(minutes=10)
    hosts.block("news.example", until)
    assert hosts.blocked_until("news.example", until - timedelta(seconds=1)) == until
    assert hosts.blocked_until("news.example", until) is None
    # Forgotten, not just compared: an earlier "now" no longer sees it either.
    assert hosts.blocked_until("news.example", NOW) is None


# --- Hosts: bounded state -----------------------------------------------------------------------


def test_idle_hosts_are_forgotten_so_state_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(polite, "MAX_HOSTS", 4)
    clock = VirtualClock()
    hosts = make_hosts(clock, delay=1.0)

    async def scenario() -> None:
        for n in range(50):
            async with hosts.slot(f"https://site{n}.example/"):
                pass
            clock.advance(2.0)
            assert len(hosts._state) <= 4

    asyncio.run(scenario())


def test_a_forgotten_host_is_still_spaced_while_its_delay_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(polite, "MAX_HOSTS", 2)
    clock = VirtualClock()
    hosts = make_hosts(clock, delay=5.0)
    urls = [f"{SITE}/1", "https://b.example/", "https://c.example/", f"{SITE}/2"]
    asyncio.run(start_times(hosts, clock, urls))
    assert clock.waits == [5.0]  # news.example was not idle yet: its spacing was kept


def test_hosts_with_a_crawl_delay_are_pruned_too(monkeypatch: pytest.MonkeyPatch) -> None:
    # BUG: _forget_idle() skips every host whose Crawl-delay is set, so a daemon that meets
    # many sites with a Crawl-delay in robots.txt (common) keeps per-host state for all of
    # them forever, although the module promises bounded state.
    monkeypatch.setattr(polite, "MAX_HOSTS", 4)
    clock = VirtualClock()
    hosts = make_hosts(clock, delay=1.0)

    async def scenario() -> None:
        for n in range(40):
            host = f"site{n}.example"
            hosts.set_crawl_delay(host, 5.0)
            async with hosts.slot(f"https://{host}/"):
                pass
            clock.advance(3600.0)  # every host long idle

    asyncio.run(scenario())
    assert len(hosts._state) <= 4


def test_pruning_never_lets_a_host_exceed_per_host(monkeypatch: pytest.MonkeyPatch) -> None:
    # BUG: _forget_idle() treats a host as idle when `not slots.locked()`, i.e. when one slot
    # is free. With per_host=2 and one request in flight (longer than the delay), the host's
    # state is dropped; new requests get a fresh semaphore and 3 run at once.
    monkeypatch.setattr(polite, "MAX_HOSTS", 2)
    clock = VirtualClock()
    hosts = make_hosts(clock, per_host=2, delay=0.0)  # without a delay, per_host applies
    inside = 0
    peak = 0

    async def scenario() -> None:
        release = asyncio.Event()

        async def request(url: str) -> None:
            nonlocal inside, peak
            async with hosts.slot(url):
                inside += 1
                peak = max(peak, inside)
                await release.wait()
                inside -= 1

        slow = asyncio.create_task(request(f"{SITE}/slow"))
        await let_others_run()
        clock.advance(30.0)  # the slow request is still in flight
        for other in ("https://b.example/", "https://c.example/"):
            async with hosts.slot(other):
                pass
        more = [asyncio.create_task(request(f"{SITE}/{n}")) for n in range(2)]
        await let_others_run()
        release.set()
        await asyncio.gather(slow, *more)

    asyncio.run(scenario())
    assert peak == 2


# --- Robots -------------------------------------------------------------------------------------


def robots_page(url: str, text: str) -> Page:
    return Page(
        url=url,
        final_url=url,
        status=200,
        headers={"content-type": "text/plain"},
        body=text.encode(),
        fetched_at=NOW,
    )


Answer = str | FetchError  # a robots.txt body, or the error its fetch raises


class FakeWeb:
    """The robots.txt of each origin, fetched through a fake async fetch that counts calls."""

    def __init__(self, answers: dict[str, Answer] | None = None) -> None:
        self.answers: dict[str, Answer] = dict(answers or {})
        self.calls: list[str] = []
        self.gate: asyncio.Event | None = None  # when set, fetches wait for it

    async def fetch(self, url: str) -> Page:
        self.calls.append(url)
        if self.gate is not None:
            await self.gate.wait()
        await asyncio.sleep(0)
        origin = url.removesuffix("/robots.txt")
        answer = self.answers.get(origin, HTTPStatusError("HTTP 404", url=url, status=404))
        if isinstance(answer, FetchError):
            raise answer
        return robots_page(url, answer)


def make_robots(
    web: FakeWeb, clock: VirtualClock, *, hosts: Hosts | None = None, agent: str = AGENT
) -> Robots:
    fetch: Callable[[str], Awaitable[Page]] = web.fetch
    return Robots(fetch, hosts or make_hosts(clock), user_agent=agent, clock=clock)


async def verdict(robots: Robots, url: str) -> str:
    """ "allowed", or the reason of the RobotsError."""
    try:
        await robots.check(url)
    except RobotsError as error:
        assert error.url == url
        return error.reason
    return "allowed"


def verdicts(robots: Robots, urls: list[str]) -> list[str]:
    async def run() -> list[str]:
        return [await verdict(robots, url) for url in urls]

    return asyncio.run(run())


STANDARD = "User-agent: *\nDisallow: /private/\nDisallow: /search\n"


def test_a_disallowed_path_raises_robots_disallowed() -> None:
    robots = make_robots(FakeWeb({SITE: STANDARD}), VirtualClock())
    with pytest.raises(RobotsError) as caught:
        asyncio.run(robots.check(f"{SITE}/private/report.html"))
    assert caught.value.reason == "robots_disallowed"
    assert isinstance(caught.value, FetchError)
    assert caught.value.url == f"{SITE}/private/report.html"


def test_allowed_paths_pass() -> None:
    robots = make_robots(FakeWeb({SITE: STANDARD}), VirtualClock())
    urls = [f"{SITE}/", f"{SITE}/news/2024/story.html", f"{SITE}/privateer", f"{SITE}/a?q=1"]
    assert verdicts(robots, urls) == ["allowed"] * 4
    assert verdicts(robots, [f"{SITE}/search?q=x"]) == ["robots_disallowed"]


def test_the_section_for_ingest_applies_to_the_full_user_agent() -> None:
    text = (
        "User-agent: *\nDisallow: /\n\n"
        "User-agent: otherbot\nAllow: /\n\n"
        "User-agent: ingest\nDisallow: /drafts/\n"
    )
    robots = make_robots(FakeWeb({SITE: text}), VirtualClock())
    assert verdicts(robots, [f"{SITE}/news/1", f"{SITE}/drafts/1"]) == [
        "allowed",
        "robots_disallowed",
    ]


def test_the_section_for_ingest_applies_with_the_default_user_agent() -> None:
    text = "User-agent: *\nAllow: /\n\nUser-agent: Ingest\nDisallow: /archive/\n"
    robots = make_robots(FakeWeb({SITE: text}), VirtualClock(), agent=DEFAULT_USER_AGENT)
    assert verdicts(robots, [f"{SITE}/archive/1", f"{SITE}/news/1"]) == [
        "robots_disallowed",
        "allowed",
    ]


def test_a_section_for_another_agent_does_not_apply() -> None:
    text = "User-agent: otherbot\nDisallow: /\n"
    robots = make_robots(FakeWeb({SITE: text}), VirtualClock())
    assert verdicts(robots, [f"{SITE}/news/1"]) == ["allowed"]


def test_the_most_specific_rule_wins_as_rfc_9309_says() -> None:
    # BUG: urllib.robotparser applies the first matching rule in file order, not the longest
    # match RFC 9309 (2.2.2) requires. With "Allow: /" first (a common pattern), every
    # Disallow of the group is ignored and disallowed pages are fetched.
    text = "User-agent: *\nAllow: /\nDisallow: /private/\n"
    robots = make_robots(FakeWeb({SITE: text}), VirtualClock())
    assert verdicts(robots, [f"{SITE}/private/x", f"{SITE}/news/1"]) == [
        "robots_disallowed",
        "allowed",
    ]


@pytest.mark.parametrize("status", [401, 403, 404, 410])
def test_a_4xx_robots_txt_allows_everything(status: int) -> None:
    web = FakeWeb({SITE: HTTPStatusError(f"HTTP {status}", url=SITE, status=status)})
    robots = make_robots(web, VirtualClock())
    assert verdicts(robots, [f"{SITE}/", f"{SITE}/private/x"]) == ["allowed", "allowed"]
    assert web.calls == [f"{SITE}/robots.txt"]


@pytest.mark.parametrize(
    "error",
    [
        HTTPStatusError("HTTP 500", url=f"{SITE}/robots.txt", status=500),
        HTTPStatusError("HTTP 503", url=f"{SITE}/robots.txt", status=503),
        NetworkError("connection refused", url=f"{SITE}/robots.txt"),
        NetworkError("timed out", url=f"{SITE}/robots.txt", reason="timeout"),
    ],
)
def test_an_unreachable_robots_txt_disallows_everything(error: FetchError) -> None:
    robots = make_robots(FakeWeb({SITE: error}), VirtualClock())
    with pytest.raises(RobotsError) as caught:
        asyncio.run(robots.check(f"{SITE}/news/1"))
    assert caught.value.reason == "robots_unavailable"
    assert error.reason in str(caught.value)


def test_an_unreachable_robots_txt_is_asked_again_only_after_robots_retry() -> None:
    clock = VirtualClock()
    web = FakeWeb({SITE: HTTPStatusError("HTTP 500", url=SITE, status=500)})
    robots = make_robots(web, clock)
    assert verdicts(robots, [f"{SITE}/1", f"{SITE}/2"]) == ["robots_unavailable"] * 2
    assert len(web.calls) == 1
    clock.advance(ROBOTS_RETRY - 1)
    assert verdicts(robots, [f"{SITE}/3"]) == ["robots_unavailable"]
    assert len(web.calls) == 1
    web.answers[SITE] = STANDARD  # the site is back
    clock.advance(1)
    assert verdicts(robots, [f"{SITE}/4", f"{SITE}/private/5"]) == [
        "allowed",
        "robots_disallowed",
    ]
    assert len(web.calls) == 2
    assert ROBOTS_RETRY < ROBOTS_TTL


def test_robots_txt_is_fetched_once_per_origin_while_cached() -> None:
    clock = VirtualClock()
    web = FakeWeb({SITE: STANDARD})
    robots = make_robots(web, clock)
    urls = [f"{SITE}/{n}" for n in range(5)] + [f"{SITE}/private/x", "HTTPS://NEWS.EXAMPLE/a"]
    verdicts(robots, urls)
    assert web.calls == [f"{SITE}/robots.txt"]
    clock.advance(ROBOTS_TTL - 1)
    verdicts(robots, [f"{SITE}/later"])
    assert len(web.calls) == 1


def test_robots_txt_is_fetched_again_after_robots_ttl() -> None:
    clock = VirtualClock()
    web = FakeWeb({SITE: STANDARD})
    robots = make_robots(web, clock)
    assert verdicts(robots, [f"{SITE}/news/1"]) == ["allowed"]
    web.answers[SITE] = "User-agent: *\nDisallow: /news/\n"
    clock.advance(ROBOTS_TTL)
    assert verdicts(robots, [f"{SITE}/news/1"]) == ["robots_disallowed"]
    assert len(web.calls) == 2


def test_each_origin_has_its_own_robots_txt() -> None:
    web = FakeWeb({SITE: "User-agent: *\nDisallow: /\n"})
    robots = make_robots(web, VirtualClock())
    urls = [
        f"{SITE}/a",
        "http://news.example/a",
        "https://news.example:8443/a",
        "https://b.example/a",
    ]
    assert verdicts(robots, urls) == ["robots_disallowed", "allowed", "allowed", "allowed"]
    assert web.calls == [f"{url.rsplit('/', 1)[0]}/robots.txt" for url in urls]


def test_concurrent_checks_of_one_origin_share_one_fetch() -> None:
    web = FakeWeb({SITE: STANDARD})
    robots = make_robots(web, VirtualClock())

    async def scenario() -> list[str]:
        web.gate = asyncio.Event()
        urls = [f"{SITE}/news/{n}" for n in range(5)] + [f"{SITE}/private/x"]
        tasks = [asyncio.create_task(verdict(robots, url)) for url in urls]
        await let_others_run()
        web.gate.set()
        return await asyncio.gather(*tasks)

    results = asyncio.run(scenario())
    assert results == ["allowed"] * 5 + ["robots_disallowed"]
    assert web.calls == [f"{SITE}/robots.txt"]


def test_concurrent_checks_share_an_unavailable_answer() -> None:
    web = FakeWeb({SITE: NetworkError("refused", url=SITE)})
    robots = make_robots(web, VirtualClock())

    async def scenario() -> list[str]:
        web.gate = asyncio.Event()
        tasks = [asyncio.create_task(verdict(robots, f"{SITE}/{n}")) for n in range(4)]
        await let_others_run()
        web.gate.set()
        return await asyncio.gather(*tasks)

    assert asyncio.run(scenario()) == ["robots_unavailable"] * 4
    assert len(web.calls) == 1


def test_crawl_delay_is_applied_to_the_hosts() -> None:
    clock = VirtualClock()
    hosts = make_hosts(clock, delay=1.0)
    web = FakeWeb({SITE: "User-agent: *\nCrawl-delay: 7\nDisallow: /private/\n"})
    robots = make_robots(web, clock, hosts=hosts)

    async def scenario() -> list[float]:
        await robots.check(f"{SITE}/news/1")
        return await start_times(hosts, clock, [f"{SITE}/1", f"{SITE}/2", f"{SITE}/3"])

    assert gaps(asyncio.run(scenario())) == [7.0, 7.0]


def test_the_crawl_delay_for_ingest_is_applied() -> None:
    clock = VirtualClock()
    hosts = make_hosts(clock, delay=1.0)
    text = "User-agent: *\nCrawl-delay: 2\n\nUser-agent: ingest\nCrawl-delay: 9\n"
    robots = make_robots(FakeWeb({SITE: text}), clock, hosts=hosts)

    async def scenario() -> list[float]:
        await robots.check(f"{SITE}/news/1")
        return await start_times(hosts, clock, [f"{SITE}/1", f"{SITE}/2"])

    assert gaps(asyncio.run(scenario())) == [9.0]


def test_the_robots_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(polite, "MAX_HOSTS", 3)
    web = FakeWeb()
    robots = make_robots(web, VirtualClock())
    origins = [f"https://site{n}.example" for n in range(10)]
    verdicts(robots, [f"{origin}/a" for origin in origins])
    assert len(robots._rules) <= 3
    assert len(web.calls) == 10
    verdicts(robots, [f"{origins[-1]}/b"])  # recently used: still cached
    assert len(web.calls) == 10
    verdicts(robots, [f"{origins[0]}/b"])  # least recently used: forgotten, fetched again
    assert len(web.calls) == 11


def test_a_host_backoff_on_robots_txt_does_not_use_up_page_attempts() -> None:
    # BUG: when the host is blocked (an earlier 429/503 with Retry-After), the robots.txt
    # fetch raises HostBackoffError, which Robots turns into a plain "robots_unavailable"
    # RobotsError without retry_at. page_retry then counts it as an attempt and retries in
    # first_retry seconds, so while a host asks us to wait a day its pages use up all their
    # attempts and are given up, although no request for them was ever sent.
    until = NOW + timedelta(hours=24)
    blocked = HostBackoffError("host asked us to wait", url=f"{SITE}/robots.txt", retry_at=until)
    robots = make_robots(FakeWeb({SITE: blocked}), VirtualClock())
    with pytest.raises(FetchError) as caught:
        asyncio.run(robots.check(f"{SITE}/news/1"))
    attempts, next_try = page_retry(0, caught.value, NOW, first_retry=600.0, max_attempts=5)
    assert (attempts, next_try) == (0, until)


@pytest.mark.parametrize(
    "url", ["http://a..b/x", "http://xn--zz/x", "http://\u2100.test/x", "http://h.test:99999/x"]
)
def test_a_url_that_cannot_be_fetched_is_bad_url_not_robots_unavailable(url: str) -> None:
    # It was "robots.txt unavailable", and by the fetch of the page itself an internal error
    # with a traceback (UnicodeError from the resolver, ValueError from urlsplit).
    web = FakeWeb()
    robots = make_robots(web, VirtualClock())
    with pytest.raises(FetchError) as caught:
        asyncio.run(robots.check(url))
    assert caught.value.reason == "bad_url"
    assert web.calls == []


def test_a_host_we_may_not_reach_is_blocked_not_robots_unavailable() -> None:
    # A page redirected to 10.0.0.1: its robots.txt is refused by the address guard, and
    # that is the page's failure (blocked_address), as it was before robots.txt was asked.
    web = FakeWeb({"http://10.0.0.1": BlockedError("refused", url="http://10.0.0.1/robots.txt")})
    robots = make_robots(web, VirtualClock())
    with pytest.raises(BlockedError):
        asyncio.run(robots.check("http://10.0.0.1/secret"))
