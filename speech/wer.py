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
    """Number words to digits: "forty five" → 45, "two thousand five hundred" → 2500."""
    out: list[str] = []
    total = 0  # thousands so far
    current: int | None = None  # the part below a thousand
    last = ""  # kind of the previous number word

    def flush() -> None:
        nonlocal total, current
        if total or current is not None:
            out.append(str(total + (current or 0)))
        total, current = 0, None

    for tok in tokens:
        if tok in _SMALL or tok in _TENS:
            n, kind = (_SMALL[tok], "unit") if tok in _SMALL else (_TENS[tok], "tens")
            joins_hundred = current is not None and last == "hundred"
            joins_tens = current is not None and last == "tens" and kind == "unit" and n < 10
            if joins_hundred or joins_tens:
                current = (current or 0) + n
            elif current is None and last == "thousand":
                current = n
            else:
                flush()
                current = n
            last = kind
        elif tok == "hundred" and current is not None and current < 10 and last == "unit":
            current *= 100
            last = "hundred"
        elif tok == "thousand" and current is not None and total == 0:
            total, current, last = current * 1000, None, "thousand"
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
    # A sentence end stops a run of digits, unless a digit follows ("5. 0. 9." is one run).
    text = re.sub(r"[.!?;:]+(?=\s+[^\d\s]|\s*$)", " | ", text)
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
