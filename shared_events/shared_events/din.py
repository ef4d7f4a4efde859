"""ISBT 128 Donation Identification Numbers (DIN), pure rules.

A DIN is 13 characters: facility identification number (one letter or digit
then 4 digits), 2-digit year, 6-digit sequence. A printed label adds a check
character computed with ISO/IEC 7064 MOD 37-2 over those 13 characters.
"""

from __future__ import annotations

import re
import string

DIN_LENGTH = 13
_DIN = re.compile(r"^[A-Z0-9][0-9]{4}[0-9]{2}[0-9]{6}$")
# ISO/IEC 7064 MOD 37-2 alphabet: 0-9 = 0-9, A-Z = 10-35, * = 36.
_ALPHABET = string.digits + string.ascii_uppercase + "*"
_VALUE = {char: value for value, char in enumerate(_ALPHABET)}


class InvalidDIN(ValueError):
    """The text is not an ISBT 128 DIN, or its check character does not match."""


def check_character(din: str) -> str:
    """The ISO/IEC 7064 MOD 37-2 check character of ``din`` (any characters of the alphabet)."""
    total = 0
    for char in din:
        try:
            total = ((total + _VALUE[char]) * 2) % 37
        except KeyError:
            raise InvalidDIN(f"character {char!r} is not allowed in a DIN") from None
    return _ALPHABET[(38 - total) % 37]


def normalize_din(text: str) -> str:
    """Return the 13-character DIN of ``text`` (with or without its check character).

    Raises ``InvalidDIN`` when the format is wrong or a given check character
    does not match.
    """
    din = text.strip().upper()
    if len(din) == DIN_LENGTH + 1:
        din, given = din[:DIN_LENGTH], din[DIN_LENGTH]
        if not _DIN.match(din):
            raise InvalidDIN(f"{text!r} is not an ISBT 128 DIN")
        if check_character(din) != given:
            raise InvalidDIN(f"check character {given!r} does not match DIN {din} (expected {check_character(din)!r})")
        return din
    if len(din) != DIN_LENGTH or not _DIN.match(din):
        raise InvalidDIN(f"{text!r} is not an ISBT 128 DIN (13 characters, or 14 with the check character)")
    return din


def make_din(facility: str, year: int, sequence: int) -> str:
    """Compose a DIN from its parts (``facility`` like ``A9999``)."""
    din = f"{facility}{year % 100:02d}{sequence:06d}"
    return normalize_din(din)
