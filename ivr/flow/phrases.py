"""What ivr says in its own built-in steps (a callback offer, a queue's announcements), in
every language the examples serve. Templates (`{{ number }}`) are compiled with the flow;
`{position}`-style fields are filled by whoever says them."""

from __future__ import annotations

# phrases of built-in steps, templates (`{{ number }}`) or str.format (`{position}`)
PHRASES: dict[str, dict[str, str]] = {
    # a callback node reads the number back
    "callback_confirm": {
        "en": "We will call you back on {{ number }}. If that is right, press 1 or say yes. "
        "To give another number, press 2 or say no.",
        "ru": "Мы перезвоним вам на номер {{ number }}. Если верно, нажмите 1 или скажите да. "
        "Чтобы указать другой номер, нажмите 2 или скажите нет.",
        "kk": "Біз сізге {{ number }} нөміріне қайта қоңырау шаламыз. Дұрыс болса, 1-ді "
        "басыңыз немесе иә деңіз. Басқа нөмір беру үшін 2-ні басыңыз немесе жоқ деңіз.",
        "ko": "{{ number }} 번호로 다시 전화드리겠습니다. 맞으면 1번을 누르거나 예라고 "
        "말씀해 주십시오. 다른 번호를 알려 주시려면 2번을 누르거나 아니요라고 말씀해 주십시오.",
    },
    "callback_number": {
        "en": "Please enter the number we should call, then press the pound key.",
        "ru": "Введите номер, на который нам перезвонить, и нажмите решётку.",
        "kk": "Қоңырау шалатын нөмірді енгізіп, тор белгісін басыңыз.",
        "ko": "전화받으실 번호를 입력하신 후 우물 정자를 눌러 주십시오.",
    },
    "callback_booked": {
        "en": "Thank you. An agent will call you back. Goodbye.",
        "ru": "Спасибо. Оператор вам перезвонит. До свидания.",
        "kk": "Рақмет. Оператор сізге қайта қоңырау шалады. Сау болыңыз.",
        "ko": "감사합니다. 상담원이 다시 전화드리겠습니다. 안녕히 계십시오.",
    },
    # a caller waiting in a queue
    "queue_position": {
        "en": "You are number {position} in line.",
        "ru": "Вы {position}-й в очереди.",
        "kk": "Сіз кезекте {position}-шісіз.",
        "ko": "대기 순서는 {position}번째입니다.",
    },
    "queue_wait": {
        "en": "Your expected wait is about {minutes} minutes.",
        "ru": "Примерное время ожидания {minutes} мин.",
        "kk": "Күту уақыты шамамен {minutes} минут.",
        "ko": "예상 대기 시간은 약 {minutes}분입니다.",
    },
    "queue_leave": {
        "en": "To be called back instead of waiting, press {key}.",
        "ru": "Чтобы мы перезвонили вам, а не ждать, нажмите {key}.",
        "kk": "Күтудің орнына қайта қоңырау алу үшін {key} басыңыз.",
        "ko": "기다리지 않고 다시 전화를 받으시려면 {key}번을 누르십시오.",
    },
}


def phrase(kind: str, language: str = "en") -> str:
    """The built-in phrase `kind` in `language` (its primary subtag chooses; English when
    it has none)."""
    said = PHRASES[kind]
    primary = language.replace("_", "-").split("-", 1)[0].lower()
    return said.get(primary, said["en"])
