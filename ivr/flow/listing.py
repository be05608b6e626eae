"""A menu as one text message, for text channels (SMS, WhatsApp, web chat) when its prompt
has no `text:` of its own: "Reply 1 for balance, 2 for block card. Or tell me what you
need." The spoken prompt ("press 1 or say balance") reads badly in a message."""

from __future__ import annotations

from ivr.flow.model import Menu, Option

# primary language subtag -> (the message, one choice, what joins the choices, the offer
# to write words, for menus that take them)
WORDS: dict[str, tuple[str, str, str, str]] = {
    "en": ("Reply {choices}.", "{key} for {label}", ", ", " Or tell me what you need."),
    "ru": ("Ответьте: {choices}.", "{key} — {label}", ", ", " Или напишите, что вам нужно."),
    "kk": ("Жауап беріңіз: {choices}.", "{key} — {label}", ", ", " Немесе не керегін жазыңыз."),
    "ko": (
        "번호로 답장해 주세요: {choices}.",
        "{key} {label}",
        ", ",
        " 또는 원하시는 내용을 적어 주세요.",
    ),
}


def listing(menu: Menu, language: str) -> str:
    """The choices of `menu` as one message in `language` (English when it has no words)."""
    primary = language.replace("_", "-").split("-", 1)[0].lower()
    primary = primary if primary in WORDS else "en"
    made = _made.get((id(menu), primary))
    if made is None or made[0] is not menu:  # (menus hold mappings: not hashable)
        if len(_made) > 4096:  # flow versions come and go with reloads
            _made.clear()
        made = _made[(id(menu), primary)] = (menu, _listing(menu, primary))
    return made[1]


_made: dict[tuple[int, str], tuple[Menu, str]] = {}


def _listing(menu: Menu, primary: str) -> str:
    message, choice, join, offer = WORDS[primary]
    shown = [o for o in menu.options if o.dtmf and _leads(o)]
    choices = join.join(choice.format(key=o.dtmf, label=_label(o)) for o in shown)
    words = any(o.phrases for o in menu.options)
    if not choices:  # a menu of words only
        return offer.strip()
    return message.format(choices=choices) + (offer if words else "")


def _leads(option: Option) -> bool:
    """Whether a choice goes somewhere worth listing (not repeat, help or start over)."""
    return option.goto is not None and not option.help


def _label(option: Option) -> str:
    return option.phrases[0] if option.phrases else option.name.replace("_", " ")
