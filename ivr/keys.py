"""The keys of what ivr keeps: caller identities as keyed HMACs, personal fields encrypted.

`IVR_CUSTOMER_KEY` keys the HMAC that turns a phone number into a customer id (the same
number gives the same id for as long as the key stays: experiments and history depend on
it). `IVR_DATA_KEY` (a Fernet key) encrypts what must be kept but never in clear: phone
numbers, transcripts. When one is not set, one is made once into a 0600 file under the
data directory, with a loud warning: losing that file loses what it encrypted.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import itertools
import json
import logging
import os
import secrets
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ivr.errors import ConfigError

log = logging.getLogger("ivr.keys")

KEY_FILE = "keys.json"
SEALED = "s1:"  # how a sealed session starts (JSON starts with "{")
# a session and its reply sealed together: the length of the first (4 bytes), then both
PAIRED = "s2:"
# what Twilio and carriers send for a caller who hides their number
WITHHELD = frozenset({"", "anonymous", "restricted", "unknown", "private", "+266696687"})
# Twilio's address prefixes that carry a phone number: the same customer as the number
PHONE_SCHEMES = frozenset({"whatsapp", "sms", "tel"})


@dataclass(frozen=True)
class Keys:
    """The two keys, made by `Keys.load`; read by call records and experiment splits."""

    customer: bytes = field(repr=False)
    data: bytes = field(repr=False)

    @classmethod
    def load(cls, data_dir: Path, env: dict[str, str] | None = None) -> Keys:
        """The keys from the environment, or from (or made into) `data_dir`/keys.json."""
        env = dict(os.environ) if env is None else env
        customer, data = env.get("IVR_CUSTOMER_KEY"), env.get("IVR_DATA_KEY")
        if not (customer and data):
            kept = _kept(data_dir / KEY_FILE)
            customer, data = customer or kept["customer"], data or kept["data"]
        try:
            Fernet(data.encode())
        except ValueError:
            raise ConfigError(
                "IVR_DATA_KEY: expected a Fernet key (32 url-safe base64 bytes: "
                "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key())')"
            ) from None
        if len(customer) < 16:
            raise ConfigError("IVR_CUSTOMER_KEY: expected at least 16 characters of secret")
        return cls(customer.encode(), data.encode())

    @classmethod
    def for_tests(cls) -> Keys:
        """Fresh random keys that nothing is kept under."""
        return cls(secrets.token_urlsafe(32).encode(), Fernet.generate_key())

    def customer_id(self, number: str) -> str | None:
        """A stable id for the customer behind `number` (a phone number, `whatsapp:+...`,
        or a chat identity `chat:ID`); None for a withheld number or an empty identity."""
        address = customer_address(number)
        if address is None:
            return None
        mac = self._hmac.copy()  # keyed once: a copy costs a third of a new one
        mac.update(address.encode())
        digest = mac.digest()
        return "c_" + base64.b32encode(digest[:15]).decode().lower()

    @cached_property
    def _hmac(self) -> hmac.HMAC:
        return hmac.new(self.customer, digestmod=hashlib.sha256)

    @cached_property
    def _fernet(self) -> Fernet:
        return Fernet(self.data)

    def seal(self, text: str | None) -> str | None:
        """`text` encrypted (and authenticated) for keeping; None stays None."""
        return None if text is None else self._fernet.encrypt(text.encode()).decode()

    @cached_property
    def _sessions(self) -> AESGCM:
        # sessions are sealed on every turn: AES-GCM, under a key of their own derived from
        # the data key, costs a fraction of Fernet's HMAC and CBC on a few kilobytes
        data = base64.urlsafe_b64decode(self.data)
        key = HKDF(algorithm=SHA256(), length=32, salt=None, info=b"ivr sessions").derive(data)
        return AESGCM(key)

    def seal_session(self, call_id: str, text: str) -> str:
        """A call's session (or reply) encrypted for its store, bound to `call_id`: no store
        holds a caller's number or a sensitive answer in clear, in any byte (SQLite's WAL,
        Redis's dump); a sealed value moved to another call does not open."""
        return SEALED + self._seal(call_id, text.encode())

    def open_session(self, call_id: str, token: str) -> str:
        """What `seal_session` sealed for `call_id` (InvalidTag when it was not that)."""
        if not token.startswith(SEALED):  # saved before sessions were sealed
            return token
        return self._open(call_id, token).decode()

    def seal_pair(self, call_id: str, first: str, second: str) -> str:
        """A session and its reply sealed as `seal_session` seals one, in one operation
        (a turn saves both: one nonce, one tag, one base64 instead of two)."""
        head = first.encode()
        return PAIRED + self._seal(call_id, len(head).to_bytes(4, "big") + head + second.encode())

    def open_pair(self, call_id: str, token: str) -> tuple[str, str]:
        """What `seal_pair` sealed for `call_id` (InvalidTag when it was not that)."""
        if not token.startswith(PAIRED):
            raise ValueError("not a sealed pair")
        raw = self._open(call_id, token)
        size = int.from_bytes(raw[:4], "big")
        return raw[4 : 4 + size].decode(), raw[4 + size :].decode()

    def _seal(self, call_id: str, plain: bytes) -> str:
        nonce = _nonce()
        sealed = self._sessions.encrypt(nonce, plain, call_id.encode())
        return binascii.b2a_base64(nonce + sealed, newline=False).decode()

    def _open(self, call_id: str, token: str) -> bytes:
        raw = binascii.a2b_base64(token[3:])  # after the prefix
        return self._sessions.decrypt(raw[:12], raw[12:], call_id.encode())

    def open(self, token: str | None) -> str | None:
        """What `seal` sealed; a token this key did not seal reads as None."""
        if token is None:
            return None
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            return None


def customer_address(address: str) -> str | None:
    """What a customer is keyed by: the phone number of a voice, SMS or WhatsApp address
    (`whatsapp:+15550001` is the customer who calls from +15550001), or a chat identity as
    given (`chat:ID`: a namespace no phone number shares); None when nobody is known."""
    address = address.strip()
    scheme, colon, rest = address.partition(":")
    if colon and scheme.lower() in PHONE_SCHEMES:
        address = rest.strip()
    elif colon and not rest.strip():
        return None  # `chat:` with no identity
    return None if address.lower() in WITHHELD else address


class _Nonces:
    """AES-GCM nonces that never repeat: this process's random 8 bytes, then a 4-byte count
    (SP 800-38D's deterministic construction), new random bytes when the count runs out or
    the process was forked. A nonce must be unique, not secret, and os.urandom for each
    cost 9 µs here, as much as the sealing itself."""

    def __init__(self) -> None:
        self._renew()

    def _renew(self) -> None:
        self._prefix, self._count, self._pid = os.urandom(8), itertools.count(), os.getpid()

    def __call__(self) -> bytes:
        n = next(self._count)
        if n >= 1 << 32 or self._pid != os.getpid():
            self._renew()
            n = next(self._count)
        return self._prefix + n.to_bytes(4, "big")


_nonce = _Nonces()


def _kept(path: Path) -> dict[str, str]:
    """The keys kept in `path`, made there (readable by this user only) the first time."""
    if path.exists():
        known: dict[str, str] = json.loads(path.read_text())
        return known
    path.parent.mkdir(parents=True, exist_ok=True)
    kept = {"customer": secrets.token_urlsafe(32), "data": Fernet.generate_key().decode()}
    draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    try:  # made once, whole: a second process starting meanwhile reads the first's
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(kept, f)
        os.link(draft, path)
    except FileExistsError:
        found: dict[str, str] = json.loads(path.read_text())
        return found
    finally:
        draft.unlink(missing_ok=True)
    log.warning(
        "IVR_CUSTOMER_KEY and IVR_DATA_KEY are not set: made keys into %s. Back it up, or "
        "set both variables: without that file, caller ids change and encrypted fields of "
        "call records cannot be read",
        path,
    )
    return kept
