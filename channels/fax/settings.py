"""Fax channel settings from ``HUB_FAX_*`` environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


def default_ocr_workers() -> int:
    """One OCR thread per core, at most two: what the per-page target was measured with on
    the 2-core reference machine (bench/README.md); a bigger machine can ask for more."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(2, cores or 1))


@dataclass(frozen=True, slots=True)
class DocumentLimits:
    """What a received document may cost us, checked from its header BEFORE decoding.

    A fax page is 1728 pixels wide (ITU-T T.4, A4 at 204 dpi), 2432 for A3, 3456 at 400 dpi
    ("superfine"); a page of 10,000 lines is a very long receipt. Anything beyond is an
    attack or not a fax.
    """

    max_bytes: int = 10 * 1024 * 1024
    max_pages: int = 50
    max_width: int = 5000
    max_height: int = 10000
    max_page_pixels: int = 40_000_000
    max_total_pixels: int = 400_000_000
    max_page_bytes: int = 64 * 1024 * 1024  # decoded size of one page (pixels × depth)
    pdf_dpi: int = 200
    # Time, which no header tells: the worker doing the job is killed at the limit.
    # A PDF takes 0.05–1 s to open and render here, a dense page 0.8 s of OCR CPU.
    render_seconds: float = 30.0  # open, check and render one file, every page
    ocr_page_seconds: float = 30.0  # OCR of one page
    file_seconds: float = 120.0  # all worker time one file may take, render and OCR


@dataclass(frozen=True, slots=True)
class FaxSettings:
    spool_dir: Path | None = None  # inbound: HylaFAX recvq copies or faxrcvd hook drops
    spool_inbox: str = "Fax"
    poll_seconds: float = 2.0
    outgoing_dir: Path | None = None  # None: <var_dir>/fax/outgoing
    sendfax: str = ""  # path of HylaFAX sendfax; empty: write to outgoing_dir only
    sendfax_host: str = ""  # sendfax -h
    upload_secret: str = ""  # shared secret for POST /webhooks/fax/{inbox}
    station_name: str = "Contact Hub"
    station_number: str = ""
    default_region: str = "US"
    ocr_lang: str = "eng"
    # Pages OCR'd at once across all faxes (one tesseract model per thread); default: one
    # per core, at most 2. 1 leaves a core free for calls on a 2-core machine.
    ocr_workers: int = field(default_factory=default_ocr_workers)
    ocr_tessdata: Path | None = None  # directory of <lang>.traineddata; None: Debian's
    limits: DocumentLimits = DocumentLimits()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> FaxSettings:
        e = os.environ if env is None else env
        d = cls()
        dl = DocumentLimits()

        def get(name: str) -> str | None:
            return e.get(f"HUB_FAX_{name}") or None

        spool = get("SPOOL_DIR")
        outgoing = get("OUTGOING_DIR")
        tessdata = get("OCR_TESSDATA")
        return cls(
            spool_dir=Path(spool) if spool else None,
            spool_inbox=get("SPOOL_INBOX") or d.spool_inbox,
            poll_seconds=float(get("POLL_SECONDS") or d.poll_seconds),
            outgoing_dir=Path(outgoing) if outgoing else None,
            sendfax=get("SENDFAX") or d.sendfax,
            sendfax_host=get("SENDFAX_HOST") or d.sendfax_host,
            upload_secret=get("UPLOAD_SECRET") or d.upload_secret,
            station_name=get("STATION_NAME") or d.station_name,
            station_number=get("STATION_NUMBER") or d.station_number,
            default_region=get("DEFAULT_REGION") or d.default_region,
            ocr_lang=get("OCR_LANG") or d.ocr_lang,
            ocr_workers=int(get("OCR_WORKERS") or d.ocr_workers),
            ocr_tessdata=Path(tessdata) if tessdata else None,
            limits=DocumentLimits(
                max_bytes=int(get("MAX_BYTES") or dl.max_bytes),
                max_pages=int(get("MAX_PAGES") or dl.max_pages),
                max_width=int(get("MAX_WIDTH") or dl.max_width),
                max_height=int(get("MAX_HEIGHT") or dl.max_height),
                max_page_pixels=int(get("MAX_PAGE_PIXELS") or dl.max_page_pixels),
                max_total_pixels=int(get("MAX_TOTAL_PIXELS") or dl.max_total_pixels),
                pdf_dpi=int(get("PDF_DPI") or dl.pdf_dpi),
                render_seconds=float(get("RENDER_SECONDS") or dl.render_seconds),
                ocr_page_seconds=float(get("OCR_TIMEOUT_SECONDS") or dl.ocr_page_seconds),
                file_seconds=float(get("FILE_SECONDS") or dl.file_seconds),
            ),
        )
