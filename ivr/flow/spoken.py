"""Values spoken in a flow's language: amounts, numbers, dates, times and digits (Babel's CLDR).

Each flow's templates get these filters bound to its language and currency
(`spoken_filters`), so a template calls a plain one-argument function: no Jinja
context on the turn. What the filters write is what text-to-speech reads well, checked
with espeak-ng: in Korean "12,345원" is read as a number and then "won", whereas
"₩12,345" is read "won" (in English) before the number; a leading "-" is dropped, so
negative values start with the language's word for minus.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale, UnknownLocaleError
from babel.core import get_global
from babel.dates import format_date, format_time
from babel.numbers import (
    format_currency,
    format_decimal,
    get_currency_precision,
    get_decimal_symbol,
    get_group_symbol,
    get_territory_currencies,
    is_currency,
)

DEFAULT_LANGUAGE = "en-US"
DEFAULT_CURRENCY = "USD"
# words for minus: TTS engines drop a leading "-" (espeak-ng -v ko) or read it oddly
MINUS = {"en": "minus ", "ko": "마이너스 ", "ru": "минус ", "kk": "минус "}
# units said after the number where the currency's symbol reads badly before it
UNITS = {
    "ko": {"KRW": "원", "USD": "달러", "EUR": "유로", "JPY": "엔", "CNY": "위안"},
    "ru": {"KZT": " тенге", "RUB": " рублей", "USD": " долларов", "EUR": " евро"},
    "kk": {"KZT": " теңге", "RUB": " рубль", "USD": " доллар", "EUR": " еуро"},
}
# the zero of phone and account numbers read digit by digit (Korean says 공, not 영)
ZERO = {"ko": "공"}
_CODE = re.compile(r"^[A-Z]{3}$")
# amounts a fast formatter must write as Babel does before it is used (digits, grouping)
_PROBES = tuple(map(Decimal, ("0", "1", "0.5", "999.995", "1234.5", "1234567.891", "-0")))
_NON_DIGIT = re.compile(r"\D")

Filter = Callable[..., str]


@lru_cache(maxsize=64)
def locale_of(language: str) -> Locale:
    """Babel's locale for a BCP-47 tag (`ko-KR`, `en`); ValueError when CLDR has none."""
    try:
        return Locale.parse(language.replace("-", "_"))
    except (UnknownLocaleError, ValueError, TypeError) as e:
        raise ValueError(f"no locale data for language {language!r}") from e


def default_currency(language: str) -> str:
    """The currency of the language's country: ko-KR -> KRW, en-US -> USD, ko -> KRW."""
    locale = locale_of(language)
    territory = locale.territory
    if territory is None:  # a bare language: its most likely country (ko -> KR)
        likely = str(get_global("likely_subtags").get(locale.language, ""))
        territory = likely.rsplit("_", 1)[-1] if "_" in likely else None
    found = get_territory_currencies(territory) if territory else []
    return str(found[0]) if found else DEFAULT_CURRENCY


@lru_cache(maxsize=256)
def known_currency(code: str) -> bool:
    """Whether `code` is an ISO 4217 currency CLDR knows (KRW, USD, EUR, ...)."""
    return bool(_CODE.match(code)) and is_currency(code)


def _amount(value: Any) -> Decimal | None:
    """`value` as a finite decimal number, or None (text, booleans, NaN, infinity)."""
    if isinstance(value, bool):
        return None
    try:
        amount = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    return amount if amount.is_finite() else None


Money = Callable[[Decimal], str]


def money(locale: Locale, code: str, pattern: str | None = None) -> Money:
    """`format_currency(amount, code, pattern, locale)` for amounts of 0 and more: Babel's
    own, or the same text from Python's format() (~1 us, Babel's ~30 us) where the
    locale groups by threes with Western digits, as checked here on probe amounts."""

    def babel(amount: Decimal) -> str:
        return str(format_currency(amount, code, format=pattern, locale=locale))

    group, point = get_group_symbol(locale), get_decimal_symbol(locale)
    digits = get_currency_precision(code)
    table = str.maketrans({",": group, ".": point})
    core = f"{{:,.{digits}f}}"
    one = core.format(Decimal(1)).translate(table)
    sample = babel(Decimal(1))
    if sample.count(one) != 1:
        return babel
    prefix, suffix = sample.split(one)

    def fast(amount: Decimal) -> str:
        return prefix + core.format(amount).translate(table) + suffix

    return fast if all(fast(abs(a)) == babel(abs(a)) for a in _PROBES) else babel


def _signed(text: str, negative: bool, minus: str | None) -> str:
    """A spoken minus word before `text` (when it is not zero once rounded)."""
    if negative and minus and any(ch in "123456789" for ch in text):
        return minus + text
    return text


def _moment(value: Any, tz: str | None) -> datetime.date | datetime.datetime | None:
    """A date or datetime from a date, an ISO 8601 string, or a Unix time (seconds, UTC
    unless `tz` names a time zone); None for anything else."""
    if isinstance(value, datetime.datetime | datetime.date):
        moment = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        try:
            moment = datetime.datetime.fromtimestamp(value, datetime.UTC)
        except (OverflowError, OSError, ValueError):
            return None
    elif isinstance(value, str):
        try:
            moment = datetime.datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    else:
        return None
    if tz and isinstance(moment, datetime.datetime):
        try:
            zone = ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            return moment
        aware = moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)
        return aware.astimezone(zone)
    return moment


def spoken_filters(language: str, currency: str | None = None) -> dict[str, Filter]:
    """The filters `currency`, `number`, `date`, `time` and `digits` for one language (its
    country's currency unless `currency` names one). ValueError for an unknown language."""
    locale = locale_of(language)
    code = currency or default_currency(language)
    base = locale.language
    minus, units, zero = MINUS.get(base), UNITS.get(base, {}), ZERO.get(base)
    formats: dict[str, Money] = {}  # by currency: made on first use

    def amount_in(wanted: str, amount: Decimal) -> str:
        found = formats.get(wanted)
        if found is None:
            pattern = "#,##0.00" if wanted in units else None  # the number alone
            found = formats[wanted] = money(locale, wanted, pattern)
        return found(amount) + units.get(wanted, "")

    def currency_filter(value: Any, unit: str | None = None) -> str:
        """12345 -> "$12,345.00" (en-US), "12,345원" (ko-KR); `unit`: another ISO code
        ("EUR") or a symbol ("€"); text that is not a number is returned as it is."""
        amount = _amount(value)
        if amount is None:
            return str(value)
        wanted = unit or code
        if not known_currency(wanted):  # a symbol: before the number, two decimals
            text = wanted + format_decimal(abs(amount), format="#,##0.00", locale=locale)
        elif minus or amount >= 0:
            text = amount_in(wanted, abs(amount))
        else:  # the locale's own way of writing a negative amount
            text = format_currency(amount, wanted, locale=locale)
        return _signed(text, amount < 0, minus)

    def number(value: Any, decimals: int | None = None) -> str:
        """1234.5 -> "1,234.5" (en-US, ko-KR), "1.234,5" (de-DE); `decimals`: that many
        decimal places; text that is not a number is returned as it is."""
        amount = _amount(value)
        if amount is None:
            return str(value)
        pattern = None if decimals is None else "#,##0." + "0" * max(0, int(decimals))
        magnitude = abs(amount) if minus else amount
        return _signed(format_decimal(magnitude, format=pattern, locale=locale), amount < 0, minus)

    def date(value: Any, form: str = "long", tz: str | None = None) -> str:
        """A date as said in the language: "November 30, 2026", "2026년 11월 30일"; `form`:
        short, medium, long, full or a CLDR pattern; `tz`: the zone of a Unix time."""
        moment = _moment(value, tz)
        return str(value) if moment is None else format_date(moment, form, locale=locale)

    def time(value: Any, form: str = "short", tz: str | None = None) -> str:
        """A time of day: "3:30 PM", "오후 3:30"; a date alone is returned as it is."""
        moment = _moment(value, tz)
        if isinstance(moment, datetime.datetime):
            return format_time(moment.time(), form, locale=locale)
        return str(value)

    def digits(value: Any, group: int = 0) -> str:
        """The digits of `value` one by one ("010-12" -> "공 1 공 1 2" in Korean,
        "0 1 0 1 2" in English), in groups of `group` separated by a pause (a comma)."""
        found = _NON_DIGIT.sub("", str(value))
        said = [zero if zero and d == "0" else d for d in found]
        size = int(group) if group and int(group) > 0 else len(said) or 1
        chunks = [" ".join(said[i : i + size]) for i in range(0, len(said), size)]
        return ", ".join(chunks)

    return {
        "currency": currency_filter,
        "number": number,
        "date": date,
        "time": time,
        "digits": digits,
    }
