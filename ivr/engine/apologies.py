"""What ivr itself says when it cannot go on with a call, in the call's language.

A flow may word its own apology (`defaults.apology`); these built-in ones are for
everything else: a call that failed in a flow without one, a call whose session
was lost, a transfer no agent took. A caller of a Korean flow must not hear them
in English, so each is kept in every language the examples serve.
"""

from __future__ import annotations

from functools import lru_cache

from ivr.engine import actions as act
from ivr.flow.model import Text

FALLBACK_LANGUAGE = "en"
# kind -> primary language subtag -> what is said
SAID: dict[str, dict[str, str]] = {
    # the call failed (ivr's fault): then a hang-up
    "failed": {
        "en": "Sorry, something went wrong on our side. Please call again later. Goodbye.",
        "ru": "Извините, у нас произошла ошибка. Пожалуйста, позвоните позже. До свидания.",
        "kk": "Кешіріңіз, бізде қате орын алды. Кейінірек қайта қоңырау шалыңыз. Сау болыңыз.",
        "ko": "죄송합니다. 시스템에 문제가 발생했습니다. 잠시 후 다시 전화해 주십시오. "
        "안녕히 계십시오.",
    },
    # the call cannot go on here, and an agent takes it next
    "fallback": {
        "en": "Sorry, something went wrong on our side.",
        "ru": "Извините, у нас произошла ошибка.",
        "kk": "Кешіріңіз, бізде қате орын алды.",
        "ko": "죄송합니다. 시스템에 문제가 발생했습니다.",
    },
    # the call's session is gone (expired, or never started here)
    "lost_call": {
        "en": "Sorry, we could not continue this call. Please call again. Goodbye.",
        "ru": "Извините, мы не смогли продолжить этот звонок. Пожалуйста, позвоните ещё раз. "
        "До свидания.",
        "kk": "Кешіріңіз, қоңырауды жалғастыра алмадық. Қайта қоңырау шалыңыз. Сау болыңыз.",
        "ko": "죄송합니다. 통화를 계속할 수 없습니다. 다시 전화해 주십시오. 안녕히 계십시오.",
    },
    # a transfer ended without an agent taking the call
    "no_agent": {
        "en": "Sorry, no agent could take your call. Please call again later. Goodbye.",
        "ru": "Извините, сейчас ни один оператор не может ответить. Пожалуйста, позвоните "
        "позже. До свидания.",
        "kk": "Кешіріңіз, қазір бос оператор жоқ. Кейінірек қайта қоңырау шалыңыз. Сау болыңыз.",
        "ko": "죄송합니다. 지금은 상담원이 전화를 받을 수 없습니다. 나중에 다시 전화해 주십시오. "
        "안녕히 계십시오.",
    },
    # one number called more often than a person would: a new call refused
    "busy": {
        "en": "Sorry, we cannot take another call from this number right now. "
        "Please call again in a few minutes. Goodbye.",
        "ru": "Извините, сейчас мы не можем принять ещё один звонок с этого номера. "
        "Пожалуйста, перезвоните через несколько минут. До свидания.",
        "kk": "Кешіріңіз, қазір бұл нөмірден тағы бір қоңырауды қабылдай алмаймыз. "
        "Бірнеше минуттан кейін қайта қоңырау шалыңыз. Сау болыңыз.",
        "ko": "죄송합니다. 지금은 이 번호의 전화를 더 받을 수 없습니다. "
        "몇 분 후에 다시 전화해 주십시오. 안녕히 계십시오.",
    },
    # retries ran out at a menu or ask that has nowhere to send the caller
    "give_up": {
        "en": "Sorry, I couldn't help you this time. Goodbye.",
        "ru": "Извините, на этот раз я не смог вам помочь. До свидания.",
        "kk": "Кешіріңіз, бұл жолы көмектесе алмадым. Сау болыңыз.",
        "ko": "죄송합니다. 이번에는 도와드리지 못했습니다. 안녕히 계십시오.",
    },
    # before a re-prompt, in flows with several `languages` that do not word their own
    "no_input": {
        "en": "Sorry, I didn't hear anything.",
        "ru": "Извините, я ничего не услышал.",
        "kk": "Кешіріңіз, мен ештеңе естімедім.",
        "ko": "죄송합니다. 아무 말씀도 듣지 못했습니다.",
    },
    "no_match": {
        "en": "Sorry, I didn't catch that.",
        "ru": "Извините, я не понял.",
        "kk": "Кешіріңіз, мен түсінбедім.",
        "ko": "죄송합니다. 잘 알아듣지 못했습니다.",
    },
    # a Media Streams call's recogniser failed: the call goes on with keys
    "speech_down": {
        "en": "Sorry, speech recognition is not available right now. Please use your keypad.",
        "ru": "Извините, распознавание речи сейчас недоступно. Пожалуйста, используйте "
        "клавиатуру телефона.",
        "kk": "Кешіріңіз, қазір сөйлеуді тану қолжетімсіз. Телефон пернелерін пайдаланыңыз.",
        "ko": "죄송합니다. 지금은 음성 인식을 사용할 수 없습니다. 전화기의 버튼을 눌러 주세요.",
    },
    # a menu's question when a spoken choice was heard with low confidence (a template)
    "confirm": {
        "en": "Did you mean {{ phrase }}?",
        "ru": "Вы имели в виду: {{ phrase }}?",
        "kk": "Сіз {{ phrase }} дедіңіз бе?",
        "ko": "{{ phrase }}, 맞습니까?",
    },
    # the process has as many calls in progress as it may take (IVR_MAX_CALLS)
    "lines_busy": {
        "en": "Sorry, all our lines are busy right now. Please call again later. Goodbye.",
        "ru": "Извините, сейчас все линии заняты. Пожалуйста, позвоните позже. До свидания.",
        "kk": "Кешіріңіз, қазір барлық желілер бос емес. Кейінірек қайта қоңырау шалыңыз. "
        "Сау болыңыз.",
        "ko": "죄송합니다. 지금은 모든 회선이 통화 중입니다. 나중에 다시 전화해 주십시오. "
        "안녕히 계십시오.",
    },
    # no flow answers the called number (no flow, so no language either: English)
    "not_in_service": {
        "en": "Sorry, this number is not in service. Goodbye.",
        "ru": "Извините, этот номер не обслуживается. До свидания.",
        "kk": "Кешіріңіз, бұл нөмірге қызмет көрсетілмейді. Сау болыңыз.",
        "ko": "죄송합니다. 이 번호는 서비스되지 않는 번호입니다. 안녕히 계십시오.",
    },
    # text channels (SMS, WhatsApp, web chat): a step that needs a call (a sensitive ask,
    # a voice-only node) without an `on_text`; {number} is the flow's first number
    "to_voice": {
        "en": "For your security we can't do this by message. Please call us{at}.",
        "ru": "В целях безопасности мы не можем сделать это в переписке. Пожалуйста, "
        "позвоните нам{at}.",
        "kk": "Қауіпсіздік үшін мұны хабарлама арқылы жасай алмаймыз. Бізге қоңырау шалыңыз{at}.",
        "ko": "보안을 위해 메시지로는 처리할 수 없습니다. 전화로 문의해 주십시오{at}.",
    },
    # a transfer reached in a text conversation: agents take calls
    "agent_by_voice": {
        "en": "To speak to an agent, please call us{at}.",
        "ru": "Чтобы поговорить с оператором, позвоните нам{at}.",
        "kk": "Оператормен сөйлесу үшін бізге қоңырау шалыңыз{at}.",
        "ko": "상담원과 통화하시려면 전화해 주십시오{at}.",
    },
    # a record node in a text conversation without a `text:` prompt of its own
    "record_text": {
        "en": "Please write your message in one reply.",
        "ru": "Пожалуйста, напишите ваше сообщение одним ответом.",
        "kk": "Хабарламаңызды бір жауаппен жазыңыз.",
        "ko": "남기실 말씀을 한 번의 답장으로 보내 주십시오.",
    },
}
# how a text channel words " at +1555..." after "call us" ({at} above)
AT_NUMBER = {"en": " at {number}", "ru": " по номеру {number}", "kk": " {number} нөміріне"}


def said(kind: str, language: str) -> str:
    """The built-in `kind` message in `language` (its primary subtag), else in English."""
    messages = SAID[kind]
    primary = language.replace("_", "-").split("-", 1)[0].lower()
    return messages.get(primary, messages[FALLBACK_LANGUAGE])


@lru_cache(maxsize=256)
def apology(kind: str, language: str = FALLBACK_LANGUAGE) -> act.Prompt:
    """The built-in `kind` apology in `language` (a BCP-47 tag: its primary subtag
    chooses), in English when the language has none."""
    return act.Prompt((Text(said(kind, language)),))
