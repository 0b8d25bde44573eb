"""Personal data and secrets in text: where they are, checked as well as a pattern can.

Patterns alone flag too much (every long number looks like a card), so each category
that has a check digit is confirmed by it: card numbers by Luhn, IBANs by their ISO
7064 mod-97 check. E-mail addresses, phone numbers and API-key-shaped strings (``sk-``,
``AKIA``, ``ghp_``, ``xox?-``, ``AIza``) have no check and are matched by shape.

Every pattern has a bounded length, so a stream scanner knows how much text it must
hold back before a match can no longer start in it (:data:`MAX_WIDTH`).

Pure: text in, spans out.
"""

import re
from collections.abc import Callable, Iterable
from typing import Literal, get_args

__all__ = [
    "CATEGORIES",
    "LABELS",
    "MAX_WIDTH",
    "PIICategory",
    "find_pii",
    "iban_valid",
    "luhn_valid",
]

PIICategory = Literal["email", "phone", "card", "iban", "api_key"]
#: Every category, in the order overlapping matches are preferred (a card number is
#: not also reported as a phone number).
CATEGORIES: tuple[str, ...] = get_args(PIICategory)

#: The default replacement of each category.
LABELS = {
    "email": "[EMAIL]",
    "phone": "[PHONE]",
    "card": "[CARD]",
    "iban": "[IBAN]",
    "api_key": "[API_KEY]",
}


def luhn_valid(digits: str) -> bool:
    """The Luhn check of a card number (digits only)."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def iban_valid(iban: str) -> bool:
    """The ISO 13616 check of an IBAN (no spaces): the country and check digits moved
    to the end, letters as 10..35, the number mod 97 is 1."""
    if not 15 <= len(iban) <= 34:
        return False
    moved = iban[4:] + iban[:4]
    number = "".join(str(int(char, 36)) for char in moved)
    return int(number) % 97 == 1


def _card(text: str) -> str | None:
    digits = re.sub(r"[ -]", "", text)
    return text if 13 <= len(digits) <= 19 and luhn_valid(digits) else None


def _iban(text: str) -> str | None:
    # The pattern may run on into a following word ("... 3000 AND"): drop trailing
    # groups until the check passes.
    while True:
        if iban_valid(text.replace(" ", "")):
            return text
        if " " not in text:
            return None
        text = text.rsplit(" ", 1)[0]


_DOTTED_QUAD = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")


def _phone(text: str) -> str | None:
    if _DOTTED_QUAD.fullmatch(text):
        return None  # an IPv4 address
    digits = sum(c.isdigit() for c in text)
    # A bare run of digits is an id or an amount more often than a number to call.
    formatted = text.startswith("+") or any(c in text for c in " .-()")
    return text if 9 <= digits <= 15 and formatted else None


#: (category, pattern, check returning the matched text to report or None).
_DETECTORS: tuple[tuple[str, re.Pattern[str], Callable[[str], str | None]], ...] = (
    (
        "api_key",
        re.compile(
            r"(?<![A-Za-z0-9])(?:sk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,160}"
            r"|AKIA[0-9A-Z]{16}|ASIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{36,80}"
            r"|xox[abprs]-[A-Za-z0-9-]{10,100}|AIza[0-9A-Za-z_-]{35})"
        ),
        lambda text: text,
    ),
    (
        "email",
        re.compile(
            r"(?<![\w.%+-])[\w.%+-]{1,64}@(?:[A-Za-z0-9-]{1,63}\.){1,4}[A-Za-z]{2,24}(?![\w-])"
        ),
        lambda text: text,
    ),
    ("card", re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d])"), _card),
    (
        "iban",
        re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]{1,4}){3,8}(?![A-Za-z0-9])"),
        _iban,
    ),
    (
        "phone",
        re.compile(
            r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,5}(?:[ .-]?\d{2,5}){1,4}"
            r"(?![\w])"
        ),
        _phone,
    ),
)

#: The longest text any pattern above can match (a stream holds this much back).
MAX_WIDTH = max(
    min(re._parser.parse(p.pattern).getwidth()[1], 400)  # type: ignore[attr-defined]
    for _, p, _ in _DETECTORS
)


def find_pii(text: str, categories: Iterable[str]) -> list[tuple[int, int, str]]:
    """Where ``text`` holds data of ``categories``: sorted, non-overlapping
    ``(start, end, category)``; of overlapping matches the earlier category (in
    `CATEGORIES` order after api_key) and then the earlier start wins."""
    wanted = set(categories)
    found: list[tuple[int, int, str]] = []
    taken: list[tuple[int, int]] = []
    for category, pattern, check in _DETECTORS:
        if category not in wanted:
            continue
        for match in pattern.finditer(text):
            kept = check(match.group())
            if kept is None:
                continue
            start, end = match.start(), match.start() + len(kept)
            if any(start < t_end and t_start < end for t_start, t_end in taken):
                continue
            taken.append((start, end))
            found.append((start, end, category))
    found.sort()
    return found
