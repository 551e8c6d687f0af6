"""Masking a request's secrets in what a peer answered, in every form the peer may echo them.

A webhook's URL and a routing key are secrets, and a peer that refuses a request often quotes it.
It may quote a secret as sent, or as its framework decoded it from the URL (`%2F` read as `/`, a
query's `+` read as a space), percent-encoded again (in either case of hex), or inside JSON (`/`
written `\\/`, as PHP does, or any character as `\\u` and four hex digits, as .NET writes
`+`). Each secret is matched character by character in any of those forms, so it is masked
however the peer wrote it; only text spelling a whole secret (8 characters or more) is masked,
never ordinary words.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass

REDACTED = "[redacted]"
SHORTEST_REDACTED_PART = 8
"""A part of a URL's path, query or user this long or longer is masked wherever an error would show
it (a Slack webhook's token is 24 characters); a shorter one (`v2`) is no secret, and masking it
would mask the same letters in ordinary words."""
_JSON_ESCAPES = {"/": "\\/", '"': '\\"', "\\": "\\\\"}
"""JSON's two-character escapes of characters a URL or key may hold."""


@dataclass(frozen=True)
class SecretMask:
    """The forms of one secret, and the most characters one of them can take."""

    pattern: re.Pattern[str]
    longest_form: int


def secret_masks(url: str, secrets: tuple[str, ...]) -> list[SecretMask]:
    """The masks of what must not be shown of a request to `url`: its path and query, each of
    their long parts, its user part, and `secrets`, each part also as the peer decodes it from the
    URL."""
    parts = urllib.parse.urlsplit(url)
    user = parts.netloc.rpartition("@")[0]
    pieces = [
        parts.path,
        parts.query,
        user,
        *user.split(":"),
        *parts.path.split("/"),
        *(value for pair in parts.query.split("&") for value in pair.split("=")),
    ]
    decoded = [urllib.parse.unquote(piece) for piece in pieces]
    return masks_of((*pieces, *decoded, *secrets))


def masks_of(secrets: Iterable[str]) -> list[SecretMask]:
    """The masks of `secrets` (those of SHORTEST_REDACTED_PART characters or more), longest
    first, so a whole is masked before its pieces."""
    long_secrets = {secret for secret in secrets if len(secret) >= SHORTEST_REDACTED_PART}
    return [_mask(secret) for secret in sorted(long_secrets, key=len, reverse=True)]


def masked(text: str, masks: list[SecretMask]) -> str:
    """`text` with every form of every masked secret shown as `[redacted]`."""
    for mask in masks:
        text = mask.pattern.sub(REDACTED, text)
    return text


def longest_form(masks: list[SecretMask]) -> int:
    """The most characters one form of a masked secret can take (0 without secrets): what may be
    left of a secret at the end of a text cut in the middle of it."""
    return max((mask.longest_form for mask in masks), default=0)


def _mask(secret: str) -> SecretMask:
    forms = [_character_forms(character) for character in secret]
    pattern = "".join(f"(?:{'|'.join(alternatives)})" for alternatives, _ in forms)
    return SecretMask(re.compile(pattern), sum(longest for _, longest in forms))


def _character_forms(character: str) -> tuple[list[str], int]:
    """The patterns one character of a secret may be echoed as, and the longest of them."""
    percent = "".join(f"%{byte:02X}" for byte in character.encode("utf-8"))
    forms = {character, percent, percent.lower(), _JSON_ESCAPES.get(character, character)}
    if character == "+":
        forms.add(" ")  # a query's `+` decoded as a form's space
    if ord(character) <= 0xFFFF:
        forms.update({f"\\u{ord(character):04X}", f"\\u{ord(character):04x}"})
    alternatives = sorted(forms, key=len, reverse=True)
    return [re.escape(form) for form in alternatives], len(alternatives[0])
