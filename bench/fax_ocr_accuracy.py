"""Fax OCR accuracy on varied pages, so a faster OCR set-up cannot quietly read worse.

    .venv/bin/python bench/fax_ocr_accuracy.py

24 one-page faxes through ``process_document`` (one OCR worker): four texts (the bench's
purchase-order paragraph ×8, two 300-word stretches of Debian's GPL-3 text, a business
letter full of numbers and names) in 12 pt and 9 pt, each clean, noisy (rotated 0.6°,
grey noise, specks, re-thresholded) and sent in standard mode (204×98, stretched back on
receipt). One JSON line per page with its word accuracy (1 − word error rate against the
rendered text), then a summary. ``PYTHONPATH=<another checkout>`` measures that checkout's
pipeline (e.g. an older commit's) on the same pages.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def _import_path() -> None:
    """bench/ off the path (its channels.py would shadow the package), the repo root last,
    so that PYTHONPATH=<another checkout> measures that checkout's pipeline instead."""
    here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]
    sys.path.append(str(here.parent))


PARAGRAPH = (
    "Purchase order 4711. Please deliver forty blue widgets and twelve red gaskets to "
    "the Springfield warehouse before Friday. Invoice to accounts payable, reference "
    "PO-4711, net thirty days. Call us if any item is out of stock."
)
LETTER = """ACME Industrial Supply Co., 1200 Harbor Blvd, Suite 14B, Oakland CA 94607
Tel (510) 555-0142  Fax (510) 555-0199  orders@acme-supply.example

Attn: Accounts Receivable, Contact Hub Ltd. Re: Invoice #INV-2024-08817, account 554-221-9.

Dear Ms. Okonkwo,

We received your remittance of $12,480.50 dated 03/14/2025 but it covers only items 1-7 of
the statement. Items 8 through 12 (catalogue nos. 7731-A, 7731-B, 9902, 4410/XL and 0057)
remain open, a balance of $3,215.75 including 8.25% sales tax. Please quote reference
PO-88213 on your payment; our bank details are unchanged (routing 121000358, acct 0071-553).
If you believe this is in error, call Jürgen Weiß on extension 2231 between 9:00 a.m. and
4:30 p.m. Pacific time, or reply by fax to the number above. Thank you for your business.

Sincerely, Priya Raman, Credit Department"""


def texts() -> dict[str, str]:
    gpl = Path("/usr/share/common-licenses/GPL-3").read_text().split()
    return {
        "po": "\n\n".join([PARAGRAPH] * 8),
        "gpl_a": " ".join(gpl[1500:1800]),
        "gpl_b": " ".join(gpl[3000:3300]),
        "letter": LETTER,
    }


def words(text: str) -> list[str]:
    return [w for w in ("".join(c for c in t if c.isalnum()).lower() for t in text.split()) if w]


def word_errors(reference: list[str], recognized: list[str]) -> int:
    """Word-level edit distance (substitutions, insertions, deletions)."""
    previous = list(range(len(recognized) + 1))
    for i, r in enumerate(reference, 1):
        row = [i]
        for j, h in enumerate(recognized, 1):
            row.append(min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (r != h)))
        previous = row
    return previous[-1]


def noisy(page: Image.Image, seed: int) -> Image.Image:
    """A rough scan: slightly rotated, grey noise on the edges, specks, thresholded again."""
    rng = np.random.default_rng(seed)
    grey = page.convert("L").rotate(0.6, resample=Image.Resampling.BILINEAR, fillcolor=255)
    pixels = np.asarray(grey, dtype=np.float32) + rng.normal(0, 35, (grey.height, grey.width))
    pixels[rng.random(pixels.shape) < 0.001] = 0
    return Image.fromarray((pixels > 140).astype(np.uint8) * 255).convert("1")


def faxes() -> list[tuple[str, str, bytes]]:
    """(label, reference text, one-page G4 TIFF) for every text, size and condition."""
    from channels.fax.render import STANDARD_DPI, text_pages, to_tiff

    out = []
    for name, text in texts().items():
        for size in (34, 26):  # 12 pt and 9 pt at 204 dpi
            clean = text_pages(text, size=size)
            assert len(clean) == 1, f"{name} at {size} px does not fit one page"
            out.append((f"{name}/{size}/clean", text, to_tiff(clean, compression="group4")))
            seed = zlib.crc32(name.encode()) + size
            rough = [noisy(clean[0], seed)]
            out.append((f"{name}/{size}/noisy", text, to_tiff(rough, compression="group4")))
            standard = text_pages(text, size=size, dpi=STANDARD_DPI)
            document = to_tiff(standard, compression="group4", dpi=STANDARD_DPI)
            out.append((f"{name}/{size}/standard", text, document))
    return out


def _cpu() -> float:
    own, children = (
        resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


async def main() -> None:
    import channels.fax.ocr
    from channels.fax.document import process_document
    from channels.fax.settings import DocumentLimits
    from channels.fax.worker import FaxWorkers

    ocr = FaxWorkers(1)  # the worker processes' CPU counts as RUSAGE_CHILDREN once they end
    total_words = total_errors = 0
    accuracies = []
    cpu = _cpu()
    try:
        for label, text, document in faxes():
            fax = await process_document(document, DocumentLimits(), ocr)
            reference = words(text)
            errors = word_errors(reference, words(fax.pages[0].text))
            total_words += len(reference)
            total_errors += errors
            accuracies.append(1 - errors / len(reference))
            line = {"page": label, "words": len(reference), "word_errors": errors}
            print(json.dumps({**line, "word_accuracy": round(accuracies[-1], 4)}), flush=True)
    finally:
        await ocr.close()
    print(
        json.dumps(
            {
                "summary": "fax_ocr_accuracy",
                "code": channels.fax.ocr.__file__,
                "pages": len(accuracies),
                "reference_words": total_words,
                "word_errors": total_errors,
                "word_accuracy_mean": round(sum(accuracies) / len(accuracies), 4),
                "word_accuracy_min": round(min(accuracies), 4),
                "cpu_seconds_per_page": round((_cpu() - cpu) / len(accuracies), 3),
                "measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            }
        )
    )


if __name__ == "__main__":
    _import_path()
    asyncio.run(main())
