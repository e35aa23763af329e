"""The pages of `ingest serve` in a real headless Chromium (Debian's, driven by Playwright):
search and open an article, filter and page, the chart drawn, the hostile article inert,
the login when exposed. Each page's screenshot is saved (to docs/screenshots with
INGEST_SCREENSHOTS=1)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO
from tests.newsroom import Newsroom
from tests.webserver import HOSTILE_TITLE, TOKEN, Server, make_archive, serve

CHROMIUM = Path("/usr/bin/chromium")
sync_api = pytest.importorskip("playwright.sync_api")
if not CHROMIUM.exists():  # CI installs it (.ci/run); a bare machine skips with the reason
    pytest.skip("no /usr/bin/chromium: apt-get install -y chromium", allow_module_level=True)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    directory = tmp_path_factory.mktemp("browser")
    with Newsroom() as room:
        config = make_archive(directory, room, f"sqlite:///{directory / 'archive.sqlite3'}")
    with serve(config) as server:
        yield server, config


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.dialogs = dialogs
    yield page
    context.close()
    assert dialogs == []


def shot(page: Any, name: str, tmp_path: Path) -> None:
    folder = REPO / "docs/screenshots" if os.environ.get("INGEST_SCREENSHOTS") else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def test_search_then_open_an_article(site: Any, page: Any, tmp_path: Path) -> None:
    server, _ = site
    page.goto(server.base_url + "/")
    page.get_by_label("Search the archive").fill("danube")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/search\?q=danube"))
    hit = page.locator(".hit").first
    assert "Danube" in hit.locator("h3").inner_text()
    assert hit.locator("mark").first.inner_text().lower() == "danube"
    shot(page, "search", tmp_path)

    hit.locator("h3 a").click()
    assert "Danube" in page.locator("h1").inner_text()
    assert (
        page.get_by_role("link", name="Original article").get_attribute("href").startswith("http")
    )
    assert page.get_by_role("link", name="Raw capture").get_attribute("href").endswith("/capture")
    assert "Lucian Ardelean" in page.locator(".authors").inner_text()
    # The feed by its name; the page's subheads as headings, its paragraphs as paragraphs.
    assert page.get_by_role("link", name="World").get_attribute("title").endswith("world.rss")
    assert page.locator(".text h2.subhead").all_inner_texts() == [
        "Water levels help",
        "Prices under pressure",
    ]
    assert page.locator(".text p").count() >= 8
    shot(page, "article", tmp_path)


def test_filter_and_page_through_results(site: Any, page: Any) -> None:
    server, _ = site
    page.goto(server.base_url + "/search")
    page.get_by_label("Search query").fill("said")
    page.get_by_label("Per page").select_option("20")
    page.get_by_label("Feed", exact=True).select_option("World")
    page.get_by_role("button", name="Search").click()
    titles = page.locator(".hit h3").all_inner_texts()
    assert titles and len(titles) <= 20

    page.goto(server.base_url + "/search?q=said&limit=2")
    seen = page.locator(".hit h3").all_inner_texts()
    while page.get_by_role("link", name="Next page").count():
        page.get_by_role("link", name="Next page").click()
        seen += page.locator(".hit h3").all_inner_texts()
    page.goto(server.base_url + "/search?q=said&limit=100")
    assert seen == page.locator(".hit h3").all_inner_texts()

    # And back, a page at a time, to the first.
    page.goto(server.base_url + "/search?q=said&limit=2")
    pages = [page.locator(".hit h3").all_inner_texts()]
    for _ in range(2):
        page.get_by_role("link", name="Next page").click()
        pages.append(page.locator(".hit h3").all_inner_texts())
    back = []
    while page.get_by_role("link", name="Previous page").count():
        page.get_by_role("link", name="Previous page").click()
        back.append(page.locator(".hit h3").all_inner_texts())
    assert back == pages[-2::-1]
    assert page.get_by_role("link", name="First page").count() == 0


def test_the_overview_draws_the_chart(site: Any, page: Any, tmp_path: Path) -> None:
    server, _ = site
    page.goto(server.base_url + "/")
    bars = page.locator("#chart rect.bar")
    assert bars.count() >= 3  # today's bar, one segment per feed
    box = bars.first.bounding_box()
    assert box and box["height"] > 10 and box["width"] > 2
    assert page.locator(".legend li").count() == bars.count()
    assert "World" in page.locator(".legend").inner_text()
    shot(page, "overview", tmp_path)


def test_feeds_page_lists_failing_feeds_first(site: Any, page: Any, tmp_path: Path) -> None:
    server, _ = site
    page.goto(server.base_url + "/feeds")
    first = page.locator("tbody tr").first
    assert "failing" in first.get_attribute("class")
    assert "Homepage" in first.inner_text()
    shot(page, "feeds", tmp_path)


def test_the_hostile_article_runs_nothing(site: Any, page: Any, tmp_path: Path) -> None:
    server, _ = site
    page.goto(server.base_url + "/search?q=hostile")
    page.locator(".hit h3 a").first.click()
    page.wait_for_load_state("load")

    assert page.locator("h1").inner_text() == HOSTILE_TITLE
    assert page.evaluate("window.pwned") is None
    assert page.locator("script:not([src])").count() == 0
    assert page.locator("img").count() == 0
    assert page.locator("a[href^='javascript:' i]").count() == 0
    page.goto(server.base_url + "/search?q=hostile")
    assert page.evaluate("window.pwned") is None
    shot(page, "hostile", tmp_path)


def test_the_api_docs_page_runs_its_explorer(site: Any, page: Any, tmp_path: Path) -> None:
    server, _ = site
    page.goto(server.base_url + "/api/docs")
    page.locator(".opblock").first.wait_for(timeout=15000)
    assert page.locator(".opblock").count() >= 8
    shot(page, "api-docs", tmp_path)


def test_exposed_it_asks_for_the_token_once(site: Any, page: Any, tmp_path: Path) -> None:
    _, config = site
    with serve(config, listen_host="0.0.0.0", token=TOKEN) as exposed:
        page.goto(exposed.base_url + "/feeds")
        assert "/login" in page.url
        page.get_by_label("Token").fill("wrong token, surely")
        page.get_by_role("button", name="Log in").click()
        assert "not the token" in page.locator(".error").inner_text()
        shot(page, "login", tmp_path)
        page.get_by_label("Token").fill(TOKEN)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(re.compile(r"/feeds$"))
        assert page.locator("h1").inner_text() == "Feeds"
        cookie = next(c for c in page.context.cookies() if c["name"] == "ingest_session")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"


def test_a_phone_sees_the_pages_without_scrolling_sideways(site: Any, browser: Any) -> None:
    server, _ = site
    context = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True)
    page = context.new_page()
    for path in ("/", "/search?q=said", "/feeds", "/articles/1"):
        page.goto(server.base_url + path)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 375, path
    page.goto(server.base_url + "/search?q=said")
    page.screenshot(path=str(_phone_shot()), full_page=False)
    context.close()


def _phone_shot() -> Path:
    folder = REPO / "docs/screenshots" if os.environ.get("INGEST_SCREENSHOTS") else Path("/tmp")
    folder.mkdir(parents=True, exist_ok=True)
    return folder / "search-phone.png"


def test_an_entrys_media_are_listed_with_what_the_feed_says(site: Any, page: Any) -> None:
    server, _ = site
    page.goto(server.base_url + "/search?q=teardown")
    page.locator(".hit h3 a", has_text="Photo of the week").click()
    media = page.locator(".media li")
    assert media.count() == 1
    assert media.locator("a").get_attribute("href").endswith("/media/photo.png")
    assert "(image/png, 1 KB)" in media.inner_text()  # 246 bytes


def test_a_feeds_tags_lead_to_its_articles(site: Any, page: Any) -> None:
    server, _ = site
    page.goto(server.base_url + "/feeds")
    row = page.locator("tbody tr", has_text="World")
    assert row.locator(".tag").all_inner_texts() == ["news", "world"]
    row.locator(".tag", has_text="news").click()
    page.wait_for_url(re.compile(r"/search\?tag=news"))
    assert page.get_by_label("Tag", exact=True).input_value() == "news"
    listed = page.locator(".hit h3").all_inner_texts()
    page.goto(server.base_url + "/search?feed=World&limit=100")
    assert listed and listed == page.locator(".hit h3").all_inner_texts()[: len(listed)]
