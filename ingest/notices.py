"""Lines a site prints into a page's text, told by what they say, in the languages of the web
the archive reads: share bars, cookie notices, paywall prompts, ad labels.

Class names fail on them (a share bar's links in a plain ``<p>``, a notice inside the story's
container), so `ingest.cleanup` drops them by their words wherever they are in the body. Each
test asks for a signal no sentence of an article gives: nothing but share words; a site's own
voice about its cookies, addressed to the reader; a prompt to subscribe to read on.
"""

from __future__ import annotations

import re

from ingest.markup import text_key

# A share bar's words: "Share this article: Facebook Twitter WhatsApp", "Like this: Like
# Loading...", "Partager cet article", "Artikel teilen", "Compartilhe", "分享到".
_SHARE_VERBS = frozenset(
    "share shares sharing tweet like partager partagez partage teilen teile compartir comparte"
    " compartilhar compartilhe condividi condividere delen deel udostępnij sdílet dela jaa"
    " поделиться paylaş bagikan 分享 分享到 シェア 공유 공유하기 共有".split()
)
_NETWORKS = frozenset(
    "facebook twitter x whatsapp linkedin pinterest reddit telegram messenger email mail e"
    " print tumblr pocket flipboard xing vk line weibo wechat threads bluesky mastodon sms"
    " copy link url imprimer drucken imprimir stampa kopieren copier copiar 微博 微信".split()
)
_SHARE_FILLER = frozenset(
    "this the article story post page on via to with your friends it or and now loading"
    " cet cette sur par le la les en diesen artikel beitrag den die auf per mit este esta"
    " artículo artigo matéria nesta no na em questo articolo su deze op dit".split()
)
_SHARE_WORDS = _SHARE_VERBS | _NETWORKS | _SHARE_FILLER

# Cookie notices: the site speaking of the cookies it sets, and to the reader.
_COOKIE_SITE = re.compile(
    r"\b(?:we|this (?:web)?site|our (?:web)?site|this page)\b.{0,40}\b(?:use|uses|using|set)\b"
    r".{0,40}\bcookies?"
    r"|(?:nous utilisons|ce site (?:web )?utilise|utilise des)\b.{0,40}\bcookies?"
    r"|(?:wir (?:verwenden|nutzen|setzen)|(?:diese|unsere) (?:web)?seite (?:verwendet|nutzt|setzt)"
    r"|website (?:verwendet|nutzt|setzt))\b.{0,60}\bcookies?"
    r"|(?:utilizamos|usamos|este (?:sitio|site|portal) (?:web )?(?:utiliza|usa))\b.{0,60}"
    r"\bcookies?"
    r"|(?:utilizziamo|usiamo|questo sito (?:web )?(?:utilizza|usa))\b.{0,60}\bcookies?"
    r"|(?:wij gebruiken|we gebruiken|deze (?:web)?site gebruikt)\b.{0,60}\bcookies?",
    re.I,
)
_SHORT_NOTICE = re.compile(r"^.{0,30}\bcookies?\b[.!]?(?:\s+\w+(?:\s\w+)?[.!]?)?$", re.I | re.S)
_READER = re.compile(
    r"\b(?:you|your|vous|votre|vos|sie|ihnen|ihre|du|dein|usted|su|sus|tu|tus|você|seu|sua"
    r"|acepta|aceptas|aceita|acconsenti|accetti|je|jij|u|uw)\b"
    r"|\b(?:by (?:continuing|using|clicking|browsing)|en poursuivant|en continuant"
    r"|si continúa|si continúas|al continuar|ao continuar|proseguendo|continuando)\b",
    re.I,
)
# The buttons under a cookie notice.
_CONSENT_BUTTON = re.compile(
    r"^(?:(?:i )?(?:accept|agree|ok|okay|got it|allow)(?: all| cookies| all cookies)?"
    r"|(?:reject|decline|deny|refuse)(?: all| cookies)?|(?:manage|cookie) (?:settings|preferences)"
    r"|(?:more|further) (?:info|information)|learn more|settings|tout accepter|accepter"
    r"|(?:tout )?refuser|paramétrer|personnaliser|(?:alle )?akzeptieren|ablehnen|einstellungen"
    r"|aceptar(?: todo| todas)?|rechazar|configurar|aceitar(?: todos)?|rejeitar|accetta(?: tutti)?"
    r"|accetto|rifiuta|impostazioni|akkoord|accepteren|weigeren)[.!]?$",
    re.I,
)

# Paywall prompts: "Subscribe to continue reading", "Réservé aux abonnés", "Já é assinante?".
_PAYWALL = re.compile(
    r"\b(?:subscribe|sign up|register|log ?in|sign in|become a (?:member|subscriber))\b.{0,40}"
    r"\b(?:to (?:continue|keep) reading|to read (?:the|this) (?:full|rest|whole|entire)"
    r"|to read more|for (?:full|unlimited) access)"
    r"|\b(?:this|the) (?:article|story|content) is (?:only )?(?:for|available to|reserved for"
    r"|exclusive to|exclusively for) (?:paying )?(?:subscribers|members)"
    r"|\bfor subscribers only\b|\bsubscribers only\b|\balready (?:a subscriber|subscribed)\b"
    r"|\byou(?:'ve| have) reached your (?:limit|maximum) of free"
    r"|\bréservée? aux abonnés|\b(?:abonnez-vous|inscrivez-vous) pour (?:lire|continuer)"
    r"|\bil vous reste \d+ ?% de (?:cet|l') article|\bdéjà abonné"
    r"|\b(?:nur|exklusiv) für (?:abonnenten|abonnentinnen|abonnierende)"
    r"|\bjetzt (?:weiterlesen|freischalten)\b|\bbereits abonnent"
    r"|\b(?:exclusivo|solo|sólo) para (?:suscriptores|abonados|socios|assinantes)"
    r"|\bsuscr[ií]bete para (?:seguir|continuar) leyendo|\bpara (?:seguir|continuar) leyendo"
    r"|\bya eres (?:suscriptor|socio)"
    r"|\b(?:assine|cadastre-se) para (?:continuar|ler)|\bcontinuar lendo|\bjá é assinante"
    r"|\briservat[oa] agli abbonati|\b(?:abbonati|iscriviti) per (?:continuare|leggere)"
    r"|\bper continuare a leggere|\bsei già abbonato"
    r"|\balleen voor abonnees|\bben je al abonnee",
    re.I,
)
# Words every prompt above has one of: the long pattern runs only where one is.
_PAYWALL_WORDS = frozenset(
    "subscri abonn abbona suscr assin member limit lendo leyendo leggere weiterlesen"
    " freischalten socio".split()
) | {"vous reste"}
_SUBSCRIBE_BUTTON = re.compile(
    r"^(?:subscribe(?: now| today)?|s'abonner|je m'abonne|abonnieren|jetzt abonnieren"
    r"|suscr[ií]bete|assine(?: já)?|abbonati(?: ora)?|log ?in|sign in|se connecter|anmelden"
    r"|iniciar sesión|entrar|accedi)[.!]?$",
    re.I,
)
# Ad and sponsor labels, as a line of their own.
_AD_LABEL = re.compile(
    r"^(?:advertisement|advertising|ad|sponsored(?: content| stories| links)?|promoted"
    r"|paid (?:content|post|partnership)|(?:ads?|sponsored|presented|promoted) (?:via|by)\b.{0,40}"
    r"|from around the web|around the web|anzeige|werbung|publicité|publicidad|pubblicità"
    r"|publicidade|advertentie|реклама|广告|広告)[.:]?$",
    re.I,
)


def share_line(para: str) -> bool:
    """Nothing but share words, with a verb or two networks: a share bar."""
    if len(para) > 160:
        return False
    words = text_key(para).split()
    if not words or not all(w in _SHARE_WORDS for w in words):
        return False
    # "Like this:" alone may be a sentence's end; "Like Loading..." is the likes widget.
    verbs = {w for w in words if w in _SHARE_VERBS}
    if "loading" not in words:
        verbs.discard("like")
    return bool(verbs) or len({w for w in words if w in _NETWORKS}) >= 2


def _share_heading(para: str) -> bool:
    """What stands above a share bar: "Like this:", "Share:"."""
    return (
        len(para) < 40
        and para.endswith(":")
        and all(w in _SHARE_WORDS for w in text_key(para).split())
    )


def cookie_notice(para: str) -> bool:
    """The site telling the reader it uses cookies (and asking to agree)."""
    if len(para) > 700 or "cookie" not in para.casefold() or _COOKIE_SITE.search(para) is None:
        return False
    # A short notice says only that: "This website uses cookies. Learn more".
    return _READER.search(para) is not None or (len(para) < 80 and bool(_SHORT_NOTICE.match(para)))


def consent_button(para: str) -> bool:
    return len(para) < 40 and _CONSENT_BUTTON.match(para) is not None


def paywall_prompt(para: str) -> bool:
    """A prompt to subscribe to read on ("Already a subscriber?"), or its button."""
    if len(para) < 30 and _SUBSCRIBE_BUTTON.match(para):
        return True
    folded = para.casefold()
    return (
        len(para) < 300 and any(w in folded for w in _PAYWALL_WORDS) and bool(_PAYWALL.search(para))
    )


def ad_label(para: str) -> bool:
    return len(para) < 60 and _AD_LABEL.match(para) is not None


def drop_notices(paras: list[str]) -> list[str]:
    """The paragraphs without share bars, cookie notices (and their buttons), paywall prompts
    and ad labels."""
    kept: list[str] = []
    after_notice = False
    for para in paras:
        if cookie_notice(para):
            after_notice = True
            # and its buttons, above or below it
            while kept and consent_button(kept[-1]):
                kept.pop()
            continue
        if after_notice and consent_button(para):
            continue
        after_notice = False
        if share_line(para):
            if kept and _share_heading(kept[-1]):
                kept.pop()
        elif not (paywall_prompt(para) or ad_label(para)):
            kept.append(para)
    return kept
