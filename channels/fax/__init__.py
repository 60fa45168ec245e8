"""The fax channel: HylaFAX spool/hooks, fax-to-email (via the email channel), HTTP upload.

Modules: ``settings`` (``HUB_FAX_*``), ``tiff`` (header checks before decoding, T.4/T.6
pages, standard-mode stretch), ``pdf``, ``ocr`` (tesseract's library), ``worker`` (the
worker processes that decode and OCR received documents, killed at the time limits),
``document`` (pages → text, PNG, thumbnail, under the limits), ``intake`` (→ ingest;
a resent file is a duplicate before it is decoded),
``spool`` (inbound spool and outgoing status files), ``hylafax`` (``faxrcvd``/``notify``
hook glue), ``render`` (reply → G3 fine TIFF with cover page), ``sender``, ``routes``
(``POST /webhooks/fax/{inbox}`` and ``…/status``), ``runtime``.

Main settings: ``HUB_FAX_UPLOAD_SECRET`` (enables the upload API), ``HUB_FAX_SPOOL_DIR`` and
``HUB_FAX_SPOOL_INBOX`` (inbound spool), ``HUB_FAX_OUTGOING_DIR`` (default
``var/fax/outgoing``), ``HUB_FAX_SENDFAX`` and ``HUB_FAX_SENDFAX_HOST`` (hand replies to
HylaFAX), ``HUB_FAX_STATION_NAME``/``_NUMBER`` (cover page), ``HUB_FAX_OCR_WORKERS`` (pages
OCR'd at once; default one per core, at most 2), ``HUB_FAX_OCR_LANG``,
``HUB_FAX_OCR_TESSDATA`` (model directory; default Debian's), and the limits
``HUB_FAX_MAX_BYTES``/``_MAX_PAGES``/``_MAX_WIDTH``/``_MAX_HEIGHT``/``_MAX_PAGE_PIXELS``/
``_MAX_TOTAL_PIXELS``, and the time limits ``HUB_FAX_RENDER_SECONDS`` (open and render one
file, default 30), ``HUB_FAX_OCR_TIMEOUT_SECONDS`` (one page's OCR, default 30) and
``HUB_FAX_FILE_SECONDS`` (all the worker time one file may take, default 120). A file
stopped at a limit is stored with a note naming the limit; the faxes behind it go on.
"""
