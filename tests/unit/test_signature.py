"""Our signature must be Twilio's: the twilio library's RequestValidator is the judge."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from ivr.telephony.signature import keyed, signature

TOKEN = "12345678901234567890123456789012"
text = st.text(st.characters(codec="utf-8"), max_size=12)
forms = st.lists(st.tuples(text, text), max_size=12)
urls = st.sampled_from(
    [
        "https://ivr.example.com/twilio/voice",
        "https://ivr.example.com:443/twilio/gather?t=3&silence=1",
        "http://127.0.0.1:8080/twilio/status?flow=telebanking",
    ]
)


@given(urls, forms)
def test_signature_is_twilios(url: str, form: list[tuple[str, str]]) -> None:
    # compute_signature wants a dict, or a MultiDict-like object when a name repeats
    class Pairs(dict[str, str]):
        def getall(self, name: str) -> list[str]:
            return [v for k, v in form if k == name]

    params = Pairs(form)
    assert signature(keyed(TOKEN), url, form) == RequestValidator(TOKEN).compute_signature(
        url, params
    )


def test_twilios_documented_example() -> None:
    # twilio.com/docs/usage/security#validating-requests
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    form = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+12349013030",
        "Digits": "1234",
        "From": "+12349013030",
        "To": "+18005551212",
    }
    assert signature(keyed("12345"), url, form.items()) == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
