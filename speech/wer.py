"""Word error rate, with the text normalization that makes ASR output comparable.

Whisper writes "$45" and "4412" where a prompt said "forty five dollars" and "four four one
two"; a fair WER compares what was said, not how it was spelled. The normalizer lower-cases,
drops punctuation, turns number words into digits, reads "$N" as "N dollars" and joins runs
of digits ("4 4 1 2" and "4-4-1-2" both become "4412").
"""

from __future__ import annotations

import re

__all__ = ["normalize_for_wer", "word_error_rate", "word_errors"]

_UNITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_TEENS = ("ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen")
_TEENS += ("seventeen", "eighteen", "nineteen")
_SMALL = {word: n for n, word in enumerate(_UNITS + _TEENS)}
_TENS_WORDS = ("twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_TENS = {word: 10 * n for n, word in enumerate(_TENS_WORDS, start=2)}


def _numbers_to_digits(tokens: list[str]) -> list[str]:
    out: list[str] = []
    value: int | None = None
    last = ""  # kind of the previous number word: unit, tens or hundred

    def flush() -> None:
        nonlocal value
        if value is not None:
            out.append(str(value))
        value = None

    for tok in tokens:
        if tok in _SMALL:
            n = _SMALL[tok]
            if value is not None and (last == "hundred" or (last == "tens" and n < 10)):
                value += n
            else:
                flush()
                value = n
            last = "unit"
        elif tok in _TENS:
            if value is not None and last == "hundred":
                value += _TENS[tok]
            else:
                flush()
                value = _TENS[tok]
            last = "tens"
        elif tok == "hundred" and value is not None and value < 10 and last == "unit":
            value *= 100
            last = "hundred"
        elif tok == "and" and last == "hundred":
            continue
        else:
            flush()
            last = ""
            out.append(tok)
    flush()
    return out


def normalize_for_wer(text: str) -> list[str]:
    """Words to compare, after the normalization described above."""
    text = text.lower()
    text = re.sub(r"\$\s*(\d[\d,]*)(?:\.(\d\d))?", r" \1 dollars \2 cents", text)
    text = re.sub(r"\bdollars\s+cents\b", "dollars", text)
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)  # 1,200 → 1200
    text = re.sub(r"%", " percent", text)
    text = re.sub(r"[.!?;:]+(\s|$)", " | ", text)  # sentence ends stop digit runs
    text = re.sub(r"[^\w\s'|]", " ", text.replace("-", " "))
    tokens = _numbers_to_digits(text.split())
    joined: list[str] = []
    for tok in tokens:
        if tok.isdigit() and joined and joined[-1].isdigit():
            joined[-1] += tok
        else:
            joined.append(tok)
    return [tok for tok in joined if tok != "|"]


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(substitutions + deletions + insertions, reference word count), by edit distance."""
    ref, hyp = normalize_for_wer(reference), normalize_for_wer(hypothesis)
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        current = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h))
        previous = current
    return previous[-1], len(ref)


def word_error_rate(pairs: list[tuple[str, str]]) -> float:
    """Corpus WER over (reference, hypothesis) pairs: total errors / total reference words."""
    errors = words = 0
    for reference, hypothesis in pairs:
        e, n = word_errors(reference, hypothesis)
        errors, words = errors + e, words + n
    return errors / words if words else 0.0
