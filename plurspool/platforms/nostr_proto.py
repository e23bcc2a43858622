"""Nostr wire formats: NIP-19 bech32 keys and ids, NIP-01 event ids, BIP-340 signatures.

Pure functions, no I/O. coincurve (libsecp256k1) is imported only by the functions that sign, so
importing this module stays cheap.

Event ids: NIP-01 asks for the compact JSON of `[0,pubkey,created_at,kind,tags,content]` with only
`\\n \\" \\\\ \\r \\t \\b \\f` escaped. Relays in the field do not do that for the other control
characters: rust-nostr (serde_json) writes them as `\\u00xx` with lower-case hex, and nostr-relay
(python-rapidjson) as `\\u00XX` with upper-case hex. We hash as serde_json and Python's json
module do (lower case), which both relays accept when the hex digits of the character are plain
digits (U+0001..U+0007, U+0010..U+0019); for the others (`AMBIGUOUS_CONTROLS`) no id can satisfy
every relay, so `ambiguous_controls()` lets `check` refuse such text before anything is signed.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from datetime import datetime

KIND_TEXT_NOTE = 1
KIND_DELETION = 5  # NIP-09
KIND_REPOST = 6  # NIP-18

# --- bech32 (BIP-173), as NIP-19 uses it --------------------------------------------------

_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_GENERATORS = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


# For each value of the checksum's top five bits, the XOR of the generators its bits select:
# one lookup a character instead of five tests (a note id is ~70 characters, one per post sent).
_TOP = tuple(
    functools.reduce(int.__xor__, (g for i, g in enumerate(_GENERATORS) if top >> i & 1), 0)
    for top in range(32)
)


def created_at(due: datetime) -> int:
    """An event's `created_at`: the post's time, so every host signs the same event (plurspool(5),
    SEVERAL MACHINES) -- but never later than now, since relays refuse events from the future
    (a post is sent at or after its time; only a clock set ahead, as in tests, meets this)."""
    return min(int(due.timestamp()), int(time.time()))


def _polymod(values: Iterable[int]) -> int:
    chk = 1
    for v in values:
        chk = ((chk & 0x1FFFFFF) << 5 ^ v) ^ _TOP[chk >> 25]
    return chk


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _convert_bits(data: Iterable[int], frm: int, to: int, pad: bool) -> list[int]:
    acc, bits, out = 0, 0, []
    maxv = (1 << to) - 1
    for value in data:
        if value < 0 or value >> frm:
            raise ValueError("bad data")
        acc = (acc << frm) | value
        bits += frm
        while bits >= to:
            bits -= to
            out.append((acc >> bits) & maxv)
    if pad:
        if bits:
            out.append((acc << (to - bits)) & maxv)
    elif bits >= frm or ((acc << (to - bits)) & maxv):
        raise ValueError("bad padding")
    return out


def bech32_encode(hrp: str, data: bytes) -> str:
    """`data` as bech32 with human-readable part `hrp` (no length limit, as NIP-19 wants)."""
    five = _convert_bits(data, 8, 5, True)
    values = _hrp_expand(hrp) + five
    mod = _polymod([*values, 0, 0, 0, 0, 0, 0]) ^ 1
    checksum = [(mod >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(_CHARSET[d] for d in five + checksum)


def bech32_decode(text: str) -> tuple[str, bytes]:
    """(hrp, data) of a bech32 string; ValueError saying what is wrong, never echoing it."""
    if text.lower() != text and text.upper() != text:
        raise ValueError("mixed upper and lower case")
    text = text.lower()
    pos = text.rfind("1")
    if pos < 1 or pos + 7 > len(text):
        raise ValueError("not bech32 (no separator or too short)")
    hrp, rest = text[:pos], text[pos + 1 :]
    if any(ord(c) < 33 or ord(c) > 126 for c in hrp):
        raise ValueError("bad characters in the prefix")
    try:
        values = [_CHARSET.index(c) for c in rest]
    except ValueError:
        raise ValueError("a character outside the bech32 alphabet") from None
    if _polymod(_hrp_expand(hrp) + values) != 1:
        raise ValueError("bad bech32 checksum (a typo, or a truncated copy)")
    return hrp, bytes(_convert_bits(values[:-6], 5, 8, False))


def npub(pubkey_hex: str) -> str:
    return bech32_encode("npub", bytes.fromhex(pubkey_hex))


def nsec(secret: bytes) -> str:
    return bech32_encode("nsec", secret)


def note(event_id_hex: str) -> str:
    return bech32_encode("note", bytes.fromhex(event_id_hex))


_EVENT_REF = re.compile(r"(?:nostr:)?((?:note|nevent)1[02-9ac-hj-np-z]{6,})")


@dataclass(frozen=True)
class EventRef:
    """A note named by NIP-19 (`note1...`, `nevent1...`), for a NIP-18 quote."""

    bech32: str
    event_id: str  # hex
    relay: str = ""
    author: str = ""  # hex, when the nevent names it


def event_ref(text: str) -> EventRef | None:
    """The first `note1`/`nevent1` reference in `text` (a `nostr:` URI, a web link that
    holds one, or the bare ID; or a bare event id in hex), or None."""
    if re.fullmatch(r"[0-9a-f]{64}", text.strip().lower()):
        return EventRef(note(text.strip().lower()), text.strip().lower())
    for m in _EVENT_REF.finditer(text.lower()):
        try:
            hrp, data = bech32_decode(m.group(1))
        except ValueError:
            continue
        if hrp == "note" and len(data) == 32:
            return EventRef(m.group(1), data.hex())
        found: dict[int, bytes] = {}
        while len(data) >= 2:  # NIP-19 TLV: 0 the event id, 1 a relay, 2 the author
            kind, size = data[0], data[1]
            found.setdefault(kind, data[2 : 2 + size])
            data = data[2 + size :]
        if hrp == "nevent" and len(found.get(0, b"")) == 32:
            author = found.get(2, b"")
            return EventRef(
                m.group(1),
                found[0].hex(),
                relay=found.get(1, b"").decode("ascii", "replace"),
                author=author.hex() if len(author) == 32 else "",
            )
    return None


# secp256k1's group order: a secret key is an integer in [1, N).
_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def parse_secret(text: str) -> bytes:
    """The 32-byte secret key in an `nsec1...` or 64-hex string.

    ValueError says what is wrong without ever including the text, which is a secret.
    """
    s = text.strip()
    if re.fullmatch(r"[0-9A-Fa-f]{64}", s):
        key = bytes.fromhex(s)
    elif s[:5].lower() == "nsec1":
        _, key = bech32_decode(s)
        if len(key) != 32:
            raise ValueError(f"an nsec must hold 32 bytes, this one holds {len(key)}")
    elif s[:5].lower() == "npub1":
        raise ValueError("it is an npub, a public key; plurspool needs the secret key (nsec1...)")
    else:
        raise ValueError(
            f"expected nsec1... or 64 hex digits, got {len(s)} characters of another form"
        )
    if not 0 < int.from_bytes(key, "big") < _N:
        raise ValueError("the number is outside the range of secp256k1 secret keys")
    return key


def public_key(secret: bytes) -> str:
    """The x-only public key (hex) of a secret key."""
    return _keypair(secret)[1]


@functools.lru_cache(maxsize=8)
def _keypair(secret: bytes) -> tuple[Any, str]:
    """The signing key and x-only public key (hex) of a secret, derived once per sender pass
    (`forget_keys` clears them at its end)."""
    from coincurve import PrivateKey

    key = PrivateKey(secret)
    return key, key.public_key_xonly.format().hex()


def forget_keys() -> None:
    _keypair.cache_clear()


# --- events (NIP-01) ------------------------------------------------------------------------

# Control characters whose \\u00XX escape holds a letter: relays hash them differently.
AMBIGUOUS_CONTROLS = frozenset(
    chr(c)
    for c in range(0x20)
    if chr(c) not in "\n\t\r\b\f" and any(h in "abcdef" for h in f"{c:02x}")
)


def ambiguous_controls(text: str) -> list[str]:
    """The characters of `text` whose id serialization relays disagree on, as U+XXXX."""
    return sorted({f"U+{ord(c):04X}" for c in text if c in AMBIGUOUS_CONTROLS})


def serialize(
    pubkey: str, created_at: int, kind: int, tags: Sequence[Sequence[str]], content: str
) -> bytes:
    """The bytes whose sha256 is the event id (see the module docstring on escaping)."""
    data = [0, pubkey, created_at, kind, [list(t) for t in tags], content]
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def event_id(
    pubkey: str, created_at: int, kind: int, tags: Sequence[Sequence[str]], content: str
) -> str:
    return hashlib.sha256(serialize(pubkey, created_at, kind, tags, content)).hexdigest()


def sign_event(
    secret: bytes,
    created_at: int,
    tags: Sequence[Sequence[str]],
    content: str,
    kind: int = KIND_TEXT_NOTE,
) -> dict[str, Any]:
    """A complete signed event."""
    key, pubkey = _keypair(secret)
    tag_list = [list(t) for t in tags]
    eid = event_id(pubkey, created_at, kind, tag_list, content)
    sig = key.sign_schnorr(bytes.fromhex(eid))
    return {
        "id": eid,
        "pubkey": pubkey,
        "created_at": created_at,
        "kind": kind,
        "tags": tag_list,
        "content": content,
        "sig": sig.hex(),
    }


# --- tags -----------------------------------------------------------------------------------

# `#word` not glued to a preceding word, URL path or entity; at least one non-digit (`#1` is not
# a hashtag), as Mastodon and most Nostr clients see it.
_HASHTAG = re.compile(r"(?<![\w/#&])#(\w+)")


def hashtags(text: str) -> list[str]:
    """The hashtags of a text, lower-cased, without `#`, in order, each once."""
    tags = [m.group(1).lower() for m in _HASHTAG.finditer(text)]
    return list(dict.fromkeys(t for t in tags if not t.replace("_", "").isdigit()))


def language_tags(language: str) -> list[list[str]]:
    """NIP-32 label tags for a BCP 47 language ("en", "pt-BR"): its primary ISO 639 code."""
    primary = language.split("-")[0].lower()
    namespace = "ISO-639-1" if len(primary) == 2 else "ISO-639-3"
    return [["L", namespace], ["l", primary, namespace]]


def verified(event: Any, wanted: str) -> bool:
    """Whether `event`, as a relay gave it, is the event `wanted` (its id recomputed)."""
    try:
        fields = (event["pubkey"], event["created_at"], event["kind"], event["tags"])
        return bool(event["id"] == wanted == event_id(*fields, event["content"]))
    except (KeyError, TypeError, ValueError):
        return False
