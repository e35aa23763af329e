"""`ingest.decoding`: page bytes in every encoding, declared, undeclared and wrongly declared.

Real bytes, encoded by Python's codecs from text in the language the charset is for; each case
is decoded from the bytes alone, as a page comes from the network.
"""

from __future__ import annotations

import pytest

from ingest.decoding import decode_bytes, decode_html
from ingest.extract import extract_article

TEXT = "Café «naïve» — 5 € “quoted” œuvre"


def page_html(head: str = "", text: str = TEXT) -> str:
    return f"<html><head>{head}<title>t</title></head><body><p>{text}</p></body></html>"


# Text a reader of each charset would write: long enough to be a page's paragraph.
SAMPLES = {
    "cp1252": "Les propriétaires de café à Montréal protestent contre les nouvelles règles, "
    "qu’ils jugent « injustes » : même les crêpes coûtent désormais 5 € de plus.",
    "iso8859_15": "Die Bürger der Stadt München freuen sich über den schönen Frühling und "
    "genießen die Sonne an der Isar, während die Straßenbahnen fahren.",
    "cp1251": "Правительство объявило о новых мерах поддержки малого бизнеса в регионах "
    "страны; предприниматели ждут снижения налогов уже в этом году.",
    "koi8_r": "Москва. Городские власти открыли новый парк на берегу реки, где летом будут "
    "проходить концерты и выставки для жителей и гостей столицы.",
    "shift_jis": "気象庁によると、東京都心では今朝までに十センチの積雪を観測した。"
    "鉄道各社は運転を見合わせており、帰宅時の混雑が予想される。",
    "euc_jp": "大阪市は来年度から、市内の公園で無料の公衆無線ＬＡＮを提供すると発表した。"
    "観光客の利便性を高める狙いがある。",
    "gb18030": "国家统计局今天发布的数据显示，今年前三个季度国内生产总值同比增长百分之五，"
    "消费对经济增长的贡献继续扩大。",
    "big5": "台北市政府宣布，明年起將在各區增設公共自行車站點，鼓勵市民以綠色方式通勤，"
    "減少交通壅塞與空氣污染。",
    "euc_kr": "서울시는 내년부터 모든 지하철역에 무료 와이파이를 설치하고 시민들의 "
    "편의를 높이기 위해 안내 서비스를 확대한다고 밝혔다.",
    "cp1250": "Władze Krakowa ogłosiły, że od przyszłego roku bilety komunikacji miejskiej "
    "będą tańsze dla uczniów i studentów, a także dla seniorów.",
    "cp1253": "Η κυβέρνηση ανακοίνωσε νέα μέτρα στήριξης για τις μικρές επιχειρήσεις, "
    "καθώς οι τιμές της ενέργειας συνεχίζουν να αυξάνονται.",
    "cp1256": "أعلنت الحكومة اليوم عن خطة جديدة لدعم المشاريع الصغيرة والمتوسطة في جميع "
    "أنحاء البلاد، بهدف توفير فرص عمل للشباب.",
}


@pytest.mark.parametrize("codec", sorted(SAMPLES))
@pytest.mark.parametrize(
    "content_type", [None, "text/html", "text/html; charset=utf-8"], ids=["none", "bare", "utf8"]
)
def test_undeclared_or_wrongly_declared_utf8_pages_are_detected(
    codec: str, content_type: str | None
) -> None:
    text = SAMPLES[codec]
    body = page_html(text=text).encode(codec)

    decoded = decode_html(body, content_type)

    assert text in decoded
    assert "\ufffd" not in decoded


@pytest.mark.parametrize("codec", sorted(SAMPLES))
def test_a_declared_charset_is_used(codec: str) -> None:
    text = SAMPLES[codec]
    body = page_html(text=text).encode(codec)

    assert text in decode_html(body, f"text/html; charset={codec}")
    meta = page_html(f'<meta charset="{codec}">', text).encode(codec)
    assert text in decode_html(meta, "text/html")


def test_a_header_saying_utf8_of_windows_1252_bytes_gives_way_to_the_meta_charset() -> None:
    body = page_html('<meta charset="windows-1252">').encode("cp1252")

    assert TEXT in decode_html(body, "text/html; charset=utf-8")


def test_utf8_bytes_are_utf8_whatever_is_declared() -> None:
    body = page_html('<meta charset="iso-8859-1">').encode("utf-8")

    for content_type in (None, "text/html; charset=iso-8859-1", "text/html; charset=koi8-r"):
        assert TEXT in decode_html(body, content_type)


def test_utf8_with_a_stray_windows_1252_byte_stays_utf8() -> None:
    # A UTF-8 page with a snippet pasted in from a windows-1252 file: one curly apostrophe.
    body = page_html(text=TEXT + " — it\x92s").encode("utf-8").replace(b"\xc2\x92", b"\x92")

    decoded, codec = decode_bytes(body, "text/html; charset=utf-8")

    assert codec == "utf-8"
    assert TEXT + " — it’s" in decoded


def test_a_page_of_windows_1252_is_not_read_as_damaged_utf8() -> None:
    body = page_html(text=SAMPLES["cp1252"]).encode("cp1252")

    decoded, codec = decode_bytes(body, "text/html; charset=utf-8")

    assert codec == "cp1252"
    assert SAMPLES["cp1252"] in decoded


def test_a_byte_order_mark_wins_and_is_dropped() -> None:
    for codec, bom in (("utf-8", b"\xef\xbb\xbf"), ("utf-16-le", b"\xff\xfe")):
        body = bom + page_html().encode(codec)
        for content_type in (None, "text/html", "text/html; charset=iso-8859-1"):
            decoded = decode_html(body, content_type)
            assert TEXT in decoded
            assert decoded.startswith("<html>")


def test_ascii_and_utf8_pages_decode_as_themselves() -> None:
    assert decode_bytes(b"<p>plain</p>", "text/html; charset=utf-8") == ("<p>plain</p>", "ascii")
    assert TEXT in decode_html(page_html().encode("utf-8"), "text/html")


# --- pages that begin with an XML declaration -------------------------------------------------

XHTML = """<?xml version="1.0" encoding="{encoding}"?>
<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN"
  "http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">
<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="de">
<head><title>Grüße aus München</title></head>
<body><div class="article"><h1>Grüße aus München</h1>
{paragraphs}
</div></body></html>"""
PARAGRAPH = (
    "<p>Absatz {n}: Die Bürger der Stadt München freuen sich über den schönen Frühling und "
    "genießen die Sonne an der Isar, während die Straßenbahnen durch die Altstadt fahren.</p>"
)


@pytest.mark.parametrize(
    ("encoding", "codec", "content_type"),
    [
        ("utf-8", "utf-8", "application/xhtml+xml"),
        ("iso-8859-1", "cp1252", "application/xhtml+xml"),
        ("iso-8859-1", "cp1252", "text/html"),
        ("windows-1252", "cp1252", None),
    ],
)
def test_xhtml_with_an_xml_declaration_is_extracted(
    encoding: str, codec: str, content_type: str | None
) -> None:
    paragraphs = "\n".join(PARAGRAPH.format(n=n) for n in range(1, 7))
    body = XHTML.format(encoding=encoding, paragraphs=paragraphs).encode(codec)

    article = extract_article(body, "https://stadt.example/gruesse", content_type=content_type)

    assert article.title == "Grüße aus München"
    assert article.text.startswith("Absatz 1: Die Bürger der Stadt München")
    assert article.language == "de"
    assert not decode_html(body, content_type).lstrip().startswith("<?xml")


@pytest.mark.parametrize("charset", ["undefined", "rot13", "base64", "zlib", "punycode"])
def test_a_python_codec_that_is_no_charset_is_not_used(charset: str) -> None:
    # "undefined" raised UnicodeError out of the extraction (a traceback); the others are
    # no text encodings. The page is read as if it declared nothing.
    body = b"<html><body><p>caf\xe9 au lait, cr\xe8me br\xfbl\xe9e</p></body></html>"
    text, codec = decode_bytes(body, f"text/html; charset={charset}")
    assert codec == "cp1252"
    assert "café" in text
