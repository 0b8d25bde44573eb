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
from collections.abc import Callable, Iterable, Iterator
from typing import Literal, get_args

import attrs

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


_DIGIT = re.compile(r"\d")
_KEY_PREFIX = re.compile(r"sk-|AKIA|ASIA|gh[pousr]_|xox[abprs]-|AIza")


def _has_digit(text: str) -> bool:
    return _DIGIT.search(text) is not None


#: Cheap tests a text must pass for a category to be searched at all (most texts have
#: no "@", no digit, no key prefix: the patterns then cost nothing).
_MAY_HOLD: dict[str, Callable[[str], bool]] = {
    "api_key": lambda text: _KEY_PREFIX.search(text) is not None,
    "email": lambda text: "@" in text,
    "card": _has_digit,
    "iban": _has_digit,
    "phone": _has_digit,
}

_WORD = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
_ALNUM = _WORD - {"_"}


@attrs.frozen
class _Detector:
    """One category's pattern, the check that confirms a match (returning the text to
    report, or None), and the characters a match must not follow.

    The patterns begin with what they match, not with a lookbehind: the regex engine
    then skips ahead to a possible first character instead of trying every position
    (several times faster on prose); the character before is checked here instead.
    """

    category: str
    pattern: re.Pattern[str]
    check: Callable[[str], str | None]
    not_after: frozenset[str]

    def find(self, text: str) -> Iterator[tuple[int, int]]:
        for match in self.pattern.finditer(text):
            start = match.start()
            if start and text[start - 1] in self.not_after:
                continue
            kept = self.check(match.group())
            if kept is not None:
                yield start, start + len(kept)


class _Emails(_Detector):
    """E-mail addresses, looked for only around each "@" (rare in most text), since
    the local part's pattern would match at nearly every position of prose."""

    def find(self, text: str) -> Iterator[tuple[int, int]]:
        at = text.find("@")
        done = 0
        while at != -1:
            start = at
            while start > max(done, at - 64) and text[start - 1] in _LOCAL:
                start -= 1
            match = self.pattern.match(text, start) if start < at else None
            if match is not None and not (start and text[start - 1] in self.not_after):
                done = match.end()
                yield start, done
            at = text.find("@", max(at + 1, done))


_LOCAL = _WORD | frozenset(".%+-")
#: Where a phone number may be: 9 or more digits, with separators between.
_DIGIT_RUN = re.compile(r"\d(?:[ .()-]{0,2}\d){8,}")


class _Phones(_Detector):
    """Phone numbers, looked for only in runs of 9 digits or more (with separators):
    the pattern's optional prefixes would otherwise be tried at every position."""

    def find(self, text: str) -> Iterator[tuple[int, int]]:
        done = 0
        for run in _DIGIT_RUN.finditer(text):
            # A "+44 " or "(030) " just before the run belongs to it.
            begin = max(done, run.start() - 6)
            for match in self.pattern.finditer(text, begin, min(len(text), run.end() + 1)):
                start = match.start()
                if start < run.start() - 6 or (start and text[start - 1] in self.not_after):
                    continue
                kept = self.check(match.group())
                if kept is not None:
                    done = start + len(kept)
                    yield start, done


def _same(text: str) -> str:
    return text


_DETECTORS: tuple[_Detector, ...] = (
    _Detector(
        "api_key",
        re.compile(
            r"(?:sk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,160}"
            r"|AKIA[0-9A-Z]{16}|ASIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{36,80}"
            r"|xox[abprs]-[A-Za-z0-9-]{10,100}|AIza[0-9A-Za-z_-]{35})"
        ),
        _same,
        _ALNUM,
    ),
    _Emails(
        "email",
        re.compile(r"[\w.%+-]{1,64}@(?:[A-Za-z0-9-]{1,63}\.){1,4}[A-Za-z]{2,24}(?![\w-])"),
        _same,
        _LOCAL,
    ),
    _Detector("card", re.compile(r"\d(?:[ -]?\d){12,18}(?![\d])"), _card, frozenset("0123456789-")),
    _Detector(
        "iban",
        re.compile(r"[A-Z]{2}\d{2}(?: ?[A-Z0-9]{1,4}){3,8}(?![A-Za-z0-9])"),
        _iban,
        _ALNUM,
    ),
    _Phones(
        "phone",
        re.compile(
            r"(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,5}(?:[ .-]?\d{2,5}){1,4}(?![\w])"
        ),
        _phone,
        _WORD | {"+"},
    ),
)

#: The longest text any pattern above can match (a stream holds this much back).
MAX_WIDTH = max(
    min(re._parser.parse(d.pattern.pattern).getwidth()[1], 400)  # type: ignore[attr-defined]
    for d in _DETECTORS
)


def find_pii(text: str, categories: Iterable[str]) -> list[tuple[int, int, str]]:
    """Where ``text`` holds data of ``categories``: sorted, non-overlapping
    ``(start, end, category)``; of overlapping matches the earlier category (in
    `CATEGORIES` order after api_key) and then the earlier start wins."""
    wanted = set(categories)
    found: list[tuple[int, int, str]] = []
    taken: list[tuple[int, int]] = []
    for detector in _DETECTORS:
        category = detector.category
        if category not in wanted or not _MAY_HOLD[category](text):
            continue
        for start, end in detector.find(text):
            if any(start < t_end and t_start < end for t_start, t_end in taken):
                continue
            taken.append((start, end))
            found.append((start, end, category))
    found.sort()
    return found
