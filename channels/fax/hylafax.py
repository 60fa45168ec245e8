"""Glue for HylaFAX's hook scripts: hand received faxes and job outcomes to the hub.

HylaFAX runs ``etc/FaxDispatch``/``bin/faxrcvd`` for every received fax with
``qfile devID commID error-msg CIDNumber CIDName destination`` and ``bin/notify`` when a
job ends with ``qfile why jobtime``. Point those hooks at::

    python -m channels.fax.hylafax faxrcvd SPOOL_DIR qfile devID commID error CIDNumber CIDName dest
    python -m channels.fax.hylafax notify OUTGOING_DIR qfile why

``faxrcvd`` copies the TIFF into the hub's spool and writes the JSON sidecar last (atomic
rename), which is what the spool watcher waits for. ``notify`` writes
``hylafax-<jobid>.status``. Neither needs the hub to be running.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from channels.fax.sender import write_atomically


def parse_qfile(text: str) -> dict[str, str]:
    """HylaFAX queue files are ``key:value`` lines (``jobid:12``, ``status:Busy``)."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key and key not in fields:
            fields[key.strip()] = value.strip()
    return fields


def faxrcvd(spool: Path, args: list[str]) -> Path:
    qfile, device, commid = args[0], args[1], args[2]
    error = args[3] if len(args) > 3 else ""
    cid_number = args[4] if len(args) > 4 else ""
    cid_name = args[5] if len(args) > 5 else ""
    destination = args[6] if len(args) > 6 else ""
    source = Path(qfile)
    spool.mkdir(parents=True, exist_ok=True)
    target = spool / f"{commid}{source.suffix or '.tif'}"
    write_atomically(target, source.read_bytes())
    sidecar = {
        "file": target.name,
        "id": commid,
        "sender": cid_number,
        "sender_name": cid_name or None,
        "device": device,
        "destination": destination,
        "error": error or None,
    }
    path = spool / f"{commid}.json"
    write_atomically(path, json.dumps(sidecar).encode())
    return path


def notify(outgoing: Path, args: list[str]) -> Path | None:
    fields = parse_qfile(Path(args[0]).read_text(errors="replace"))
    why = args[1] if len(args) > 1 else fields.get("state", "")
    if why in ("requeued", "blocked") or why.startswith("poll"):
        return None  # not an outcome yet: HylaFAX tries again
    status = "delivered" if why == "done" else "failed"
    detail = fields.get("status") or why
    path = outgoing / f"hylafax-{fields.get('jobid', 'unknown')}.status"
    write_atomically(path, json.dumps({"status": status, "detail": detail}).encode())
    return path


def main(argv: list[str]) -> int:  # pragma: no cover - a thin CLI over the two hooks
    if len(argv) < 3 or argv[0] not in ("faxrcvd", "notify"):
        print(__doc__, file=sys.stderr)
        return 2
    handler = faxrcvd if argv[0] == "faxrcvd" else notify
    print(handler(Path(argv[1]), argv[2:]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
