"""A generated loopback newsroom for the soak benchmark: endless feeds, generated article pages.

The servers are `bench.newsroom.LoopbackSite`'s: one per host, bound to 127.0.0.2, 127.0.0.3, ...
(all loopback on Linux), so the daemon sees several hosts with their own limits and robots.txt.

Everything is a pure function of the URL and the wall clock, so nothing piles up here either:

- feed ``i`` publishes entry ``k`` at ``started + offset(i) + k * period`` (offsets spread the
  feeds over one period) and lists its newest `LISTED` entries, RSS 2.0, with an ETag and a
  Last-Modified that change exactly when a new entry appears, and 304 for conditional requests;
- the article page of entry ``(i, k)`` is a realistic news page (navigation, headline, byline,
  6-12 paragraphs, share bar, related links, newsletter box, footer, inline CSS and a preloaded
  state blob) of 20-60 KB, the same bytes every time it is asked for;
- robots.txt and anything else answer 404.
"""

from __future__ import annotations

import html
import json
import random
import re
import time
from collections.abc import Callable
from email.utils import formatdate
from typing import Any
from xml.sax.saxutils import escape

from bench.newsroom import LoopbackSite, not_modified

LISTED = 20  # entries per feed document
SITE = "The Loopback Times"
SECTIONS = ("world", "politics", "business", "science", "health", "sport", "culture", "tech")
WORDS = tuple(
    """
    the a of to in and for on with by from after before as at over under about against between
    government minister officials said says report reports week year city country region border
    talks agreement deal vote election parliament court ruling judge police investigation
    economy markets prices inflation bank rates growth jobs workers union strike company shares
    energy oil gas power climate storm flooding drought heat wildfire emergency rescue hospital
    health vaccine doctors patients study researchers scientists data space mission launch
    team season match final coach players record fans stadium film festival music museum
    president leaders summit allies troops ceasefire refugees aid crisis protest crowd capital
    residents local council budget plan law bill tax reform schools students teachers university
    technology software chips network security hackers privacy regulators platform users online
    early late new major first second last several many most few million billion percent
    announced warned promised denied confirmed rejected approved expected delayed raised cut
    """.split()
)
FIRST = ("Ana", "Ben", "Chen", "Dara", "Elif", "Femi", "Greta", "Hugo", "Ines", "Jonas", "Kira")
LAST = ("Okafor", "Lindqvist", "Moreau", "Tanaka", "Silva", "Novak", "Haddad", "Byrne", "Kaur")
CSS = (
    "body{margin:0;font-family:Georgia,serif;color:#111;background:#fff}"
    ".site-header{display:flex;align-items:center;border-bottom:1px solid #ddd;padding:8px 16px}"
    ".main-nav ul{display:flex;list-style:none;gap:12px;margin:0;padding:0}"
    ".main-nav a,.footer-links a{color:#333;text-decoration:none;font:14px Helvetica,sans-serif}"
    "article{max-width:680px;margin:24px auto;padding:0 16px}h1{font-size:2.2rem;line-height:1.1}"
    ".byline{font:13px Helvetica,sans-serif;color:#555}.article-body p{font-size:1.1rem;"
    "line-height:1.6}.share-bar{display:flex;gap:8px}.related{max-width:680px;margin:auto}"
    ".newsletter{background:#f4f4f4;padding:16px;margin:24px auto;max-width:680px}"
    "footer{background:#111;color:#eee;padding:24px 16px}.footer-links{columns:4}"
) * 3  # real pages ship a lot of CSS inline
ARTICLE_PATH = re.compile(r"^/([a-z]+)/(\d+)/(\d+)/[a-z0-9-]+\.html$")
FEED_PATH = re.compile(r"^/feeds/(\d+)\.rss$")


def _sentence(rng: random.Random, low: int, high: int) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(low, high))]
    return " ".join(words).capitalize() + "."


class GeneratedSite(LoopbackSite):
    """``feeds`` endless feeds spread over ``hosts`` loopback hosts; use as ``with``."""

    def __init__(
        self,
        feeds: int,
        hosts: int,
        *,
        period: float = 20.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(hosts)
        self.feeds = feeds
        self.period = period
        self.clock = clock
        self.started = clock()

    # --- URLs ----------------------------------------------------------------------------------

    def feed_url(self, i: int) -> str:
        return f"{self.origin(i)}/feeds/{i}.rss"

    def article_url(self, i: int, k: int) -> str:
        # Pages land on another host than their feed now and then, as wire copy does.
        rng = random.Random(f"slug/{i}/{k}")
        slug = "-".join(rng.choice(WORDS) for _ in range(rng.randint(4, 8)))
        return f"{self.origin(i + k)}/{SECTIONS[i % len(SECTIONS)]}/{i}/{k}/{slug}.html"

    # --- the clock -----------------------------------------------------------------------------

    def published(self, i: int, k: int) -> float:
        offset = (i * 7919 % 1000) / 1000 * self.period  # spread the feeds over one period
        return self.started + offset + k * self.period

    def newest(self, i: int, now: float) -> int:
        """The newest entry of feed ``i`` at ``now``; -1 before its first."""
        return int((now - self.published(i, 0)) // self.period)

    # --- documents -----------------------------------------------------------------------------

    def _title(self, i: int, k: int) -> str:
        rng = random.Random(f"title/{i}/{k}")
        return _sentence(rng, 6, 12).rstrip(".")

    def _author(self, i: int, k: int) -> str:
        rng = random.Random(f"author/{i}/{k}")
        return f"{rng.choice(FIRST)} {rng.choice(LAST)}"

    def feed(self, i: int, now: float) -> tuple[bytes, str, str]:
        """Feed ``i`` as (body, ETag, Last-Modified) at ``now``."""
        newest = self.newest(i, now)
        changed = self.published(i, newest) if newest >= 0 else self.started
        etag = f'"feed-{i}-{newest}"'
        modified = formatdate(changed, usegmt=True)
        items = []
        for k in range(newest, max(newest - LISTED, -1), -1):
            url = escape(self.article_url(i, k))
            summary = _sentence(random.Random(f"summary/{i}/{k}"), 18, 30)
            items.append(
                f"<item><title>{escape(self._title(i, k))}</title><link>{url}</link>"
                f'<guid isPermaLink="true">{url}</guid>'
                f"<pubDate>{formatdate(self.published(i, k), usegmt=True)}</pubDate>"
                f"<dc:creator>{self._author(i, k)}</dc:creator>"
                f"<description>{escape(summary)}</description></item>"
            )
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>'
            f"<title>{SITE}: {SECTIONS[i % len(SECTIONS)]} {i}</title>"
            f"<link>{self.origin(i)}/{SECTIONS[i % len(SECTIONS)]}/</link>"
            f"<description>Generated feed {i}</description><language>en-gb</language>"
            f"<lastBuildDate>{modified}</lastBuildDate>{''.join(items)}</channel></rss>\n"
        )
        return body.encode("utf-8"), etag, modified

    def page(self, i: int, k: int) -> bytes:
        """The article page of entry ``(i, k)``: the same bytes whenever it is asked for."""
        rng = random.Random(f"page/{i}/{k}")
        url, title, author = self.article_url(i, k), self._title(i, k), self._author(i, k)
        published = formatdate(self.published(i, k), usegmt=True)
        iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.published(i, k)))
        section = SECTIONS[i % len(SECTIONS)]
        summary = _sentence(random.Random(f"summary/{i}/{k}"), 18, 30)
        paragraphs = []
        for _ in range(rng.randint(6, 12)):
            text = " ".join(_sentence(rng, 8, 22) for _ in range(rng.randint(3, 6)))
            paragraphs.append(f"<p>{html.escape(text)}</p>")
        related = "".join(
            f'<li><a href="{self.article_url(i, k - n)}">{html.escape(self._title(i, k - n))}'
            "</a></li>"
            for n in range(1, 7)
            if k - n >= 0
        )
        nav = "".join(f'<li><a href="/{s}/">{s.title()}</a></li>' for s in SECTIONS)
        footer = "".join(
            f'<li><a href="/{s}/{w}/">{w.title()}</a></li>' for s in SECTIONS for w in WORDS[40:52]
        )
        ld = json.dumps(
            {
                "@context": "https://schema.org",
                "@type": "NewsArticle",
                "headline": title,
                "author": [{"@type": "Person", "name": author}],
                "datePublished": iso,
                "mainEntityOfPage": url,
                "publisher": {"@type": "Organization", "name": SITE},
            }
        )
        doc = (
            f'<!DOCTYPE html><html lang="en-GB"><head><meta charset="utf-8">'
            f"<title>{html.escape(title)} | {SITE}</title>"
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<meta name="description" content="{html.escape(summary)}">'
            f'<meta property="og:title" content="{html.escape(title)}">'
            f'<meta property="og:type" content="article"><meta property="og:site_name" '
            f'content="{SITE}"><meta name="author" content="{author}">'
            f'<meta property="article:published_time" content="{iso}">'
            f'<link rel="canonical" href="{url}">'
            f'<script type="application/ld+json">{ld}</script><style>{CSS}</style></head><body>'
            f'<div class="browser-banner">Your browser is out of date. Update it for the best '
            f'experience.</div><header class="site-header"><a class="logo" href="/">{SITE}</a>'
            f'<nav class="main-nav"><ul>{nav}</ul></nav><a href="/subscribe">Subscribe</a>'
            f'<a href="/login">Sign in</a></header><main><article>'
            f'<p class="kicker"><a href="/{section}/">{section.title()}</a></p>'
            f"<h1>{html.escape(title)}</h1>"
            f'<p class="byline">By <a rel="author" href="/by/{author.replace(" ", "-").lower()}">'
            f'{author}</a> · <time datetime="{iso}">{published}</time></p>'
            f'<figure><img src="/img/{i}-{k}.jpg" alt="{html.escape(title)}" width="1200" '
            f'height="675"><figcaption>{html.escape(_sentence(rng, 8, 14))} Photo: Agency'
            f'</figcaption></figure><div class="article-body">{"".join(paragraphs)}</div>'
            f'<div class="share-bar"><a href="/share/fb">Share on Facebook</a>'
            f'<a href="/share/x">Share on X</a><a href="/share/mail">Email</a></div></article>'
            f'<aside class="related"><h2>More from {section.title()}</h2><ul>{related}</ul>'
            f'</aside><section class="newsletter"><h2>The Morning Briefing</h2><p>Sign up for '
            f"our newsletter and get the day's news in your inbox.</p><form><input "
            f'type="email" placeholder="Email"><button>Sign up</button></form></section></main>'
            f'<footer><ul class="footer-links">{footer}</ul><p>© 2025 {SITE}. All rights '
            f"reserved.</p></footer>"
        )
        # Pad to the page's size with a preloaded-state blob, as framework-built sites carry.
        target = rng.randint(20_000, 60_000)
        state: list[str] = []
        room = target - len(doc.encode("utf-8")) - 60
        while room > 0:
            token = f'"{rng.choice(WORDS)}-{rng.randrange(1 << 30):x}",'
            state.append(token)
            room -= len(token)
        doc += f"<script>window.__STATE__=[{''.join(state).rstrip(',')}];</script></body></html>"
        return doc.encode("utf-8")

    # --- serving -------------------------------------------------------------------------------

    def respond(self, host: int, path: str, headers: Any) -> tuple[int, dict[str, str], bytes]:
        """(status, headers, body) for a GET of ``path``: made from the URL and the clock."""
        path = path.split("?", 1)[0]
        match = FEED_PATH.match(path)
        if match and int(match[1]) < self.feeds:
            body, etag, modified = self.feed(int(match[1]), self.clock())
            validators = {"ETag": etag, "Last-Modified": modified}
            if not_modified(headers, etag, modified):
                return 304, validators, b""
            return 200, {**validators, "Content-Type": "application/rss+xml"}, body
        match = ARTICLE_PATH.match(path)
        if match and int(match[2]) < self.feeds:
            body = self.page(int(match[2]), int(match[3]))
            return 200, {"Content-Type": "text/html; charset=utf-8"}, body
        return 404, {"Content-Type": "text/plain"}, b"not found\n"
