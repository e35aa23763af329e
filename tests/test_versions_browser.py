"""Versions on the pages of `ingest serve`, in a real headless Chromium: an article that
changed says so and leads to what changed, word by word."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests import versions_site as site
from tests.newsroom import Newsroom
from tests.test_serve_browser import CHROMIUM, shot, sync_api
from tests.test_versions import edited_archive
from tests.webserver import serve

if not CHROMIUM.exists():
    pytest.skip("no /usr/bin/chromium: apt-get install -y chromium", allow_module_level=True)


def test_an_article_that_changed_leads_to_what_changed(tmp_path: Path, newsroom: Newsroom) -> None:
    cli, article_id, _ = edited_archive(tmp_path, newsroom, f"sqlite:///{tmp_path / 'a.sqlite3'}")
    assert cli.config is not None
    with (
        serve(cli.config) as server,
        sync_api.sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            page: Any = browser.new_page(viewport={"width": 1100, "height": 900})
            page.goto(f"{server.base_url}/articles/{article_id}")
            assert page.locator("h1").inner_text() == site.NEW_HEADLINE
            assert page.locator(".versions").inner_text().startswith("2, the last")
            shot(page, "article-versions", tmp_path)

            page.get_by_role("link", name="what changed").click()
            page.wait_for_url(f"**/articles/{article_id}/diff")
            assert page.locator("h2.title-change del").inner_text() == site.HEADLINE
            assert page.locator("h2.title-change ins").inner_text() == site.NEW_HEADLINE
            removed = page.locator(".text del").all_inner_texts()
            assert any(t.startswith("Shop owners") for t in removed)
            assert "Buses on routes" not in page.locator(".text").inner_text()
            assert page.locator("tr.chosen").count() == 2
            shot(page, "diff", tmp_path)

            page.get_by_role("link", name="whole text").click()
            assert "Buses on routes" in page.locator(".text").inner_text()

            phone: Any = browser.new_page(viewport={"width": 390, "height": 844})
            phone.goto(f"{server.base_url}/articles/{article_id}/diff")
            shot(phone, "diff-phone", tmp_path)
            width = phone.evaluate("document.documentElement.scrollWidth")
            assert width <= 390  # nothing runs off a phone's screen

            # A version that is not there: the error page, not a crash.
            answer = page.goto(f"{server.base_url}/articles/{article_id}/diff?from=1&to=7")
            assert answer.status == 404
            assert "no version 7" in page.locator("main").inner_text()
        finally:
            browser.close()
