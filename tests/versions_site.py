"""A newsroom story edited between polls, for the versions tests: its page in each state."""

from __future__ import annotations

from tests.newsroom import Newsroom

STORY = "/metro/bridge-closure.html"
FEED = "/feeds/metro.rss"

HEADLINE = "Harbour bridge to close for three weeks of repairs"
NEW_HEADLINE = "Harbour bridge closure cut to two weeks after council vote"

PARAGRAPHS = [
    "The Harbour Street bridge will close to all traffic from Monday for three weeks while "
    "crews replace the expansion joints and resurface the deck, the city's transport office "
    "said on Thursday.",
    "Buses on routes 4 and 11 will be diverted over the Mill Lane crossing, adding about ten "
    "minutes to journeys at peak times, and a temporary footbridge will stay open for "
    "pedestrians and cyclists throughout the works.",
    "Shop owners on the south bank said they feared losing trade during the closure. A "
    "spokeswoman for the traders' association said members had asked for the work to be "
    "done at night instead.",
    "The bridge, opened in 1962, carries about 18,000 vehicles a day. Engineers found cracks "
    "in two of its joints during an inspection last autumn.",
]
CORRECTION = (
    "Correction: An earlier version of this article said the bridge opened in 1962. It "
    "opened in 1964."
)


def page(
    headline: str = HEADLINE,
    paragraphs: list[str] | None = None,
    *,
    stamp: str = "This article was last updated at 9:14 GMT on 6 March 2025.",
) -> str:
    body = "\n".join(f"<p>{p}</p>" for p in (PARAGRAPHS if paragraphs is None else paragraphs))
    return f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<title>{headline} | Harbour Herald</title>
<meta property="og:site_name" content="Harbour Herald">
<meta property="article:published_time" content="2025-03-06T08:00:00Z">
<meta name="author" content="Tomas Reyes"></head>
<body><nav><a href="/">Home</a> <a href="/metro/">Metro</a> <a href="/sport/">Sport</a></nav>
<article><h1>{headline}</h1>
<p class="byline">By Tomas Reyes</p>
{body}
<p>{stamp}</p>
</article>
<aside><h2>Most read</h2><ul><li><a href="/a.html">Council tax rise approved</a></li>
<li><a href="/b.html">New ferry timetable</a></li></ul></aside>
<footer>© 2025 Harbour Herald · <a href="/privacy">Privacy</a></footer></body></html>"""


def feed() -> str:
    return f"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Harbour Herald: Metro</title>
<link>{{{{BASE}}}}/metro/</link><description>Metro news</description>
<item><title>{HEADLINE}</title><link>{{{{BASE}}}}{STORY}</link><guid>bridge-closure</guid>
<pubDate>Thu, 06 Mar 2025 08:00:00 GMT</pubDate></item>
</channel></rss>"""


def publish(room: Newsroom, html: str | None = None) -> None:
    """Serve the feed and the story (``html``: its page now; default the first state)."""
    room.set(FEED, feed(), headers={"Content-Type": "application/rss+xml"})
    room.set(STORY, html or page(), headers={"Content-Type": "text/html; charset=utf-8"})


def config_lines(room: Newsroom, database: str) -> str:
    return "\n".join(
        [
            "[database]",
            f'url = "{database}"',
            "[fetch]",
            "allow_private_networks = true",
            "host_delay = 0",
            "[[feeds]]",
            f'url = "{room.url(FEED)}"',
            'name = "Metro"',
        ]
    )
