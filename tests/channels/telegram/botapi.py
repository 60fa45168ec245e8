"""A local server speaking the Telegram Bot API wire format, for tests only.

Telegram's servers cannot be reached from here, so this stands in for them the way the
docs describe the API (https://core.telegram.org/bots/api#making-requests): methods at
``/bot<token>/<method>`` taking form-encoded, multipart or JSON parameters and answering
``{"ok": true, "result": …}`` or ``{"ok": false, "error_code": …, "description": …}``;
files at ``/file/bot<token>/<file_path>`` after ``getFile``. ``getUpdates`` honours
``offset`` (confirming earlier updates) and long-polls up to ``timeout`` seconds.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote

BOT = {"id": 7000000001, "is_bot": True, "first_name": "Hub", "username": "hub_test_bot"}


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)


class QuietServer(ThreadingHTTPServer):
    """A client that hangs up mid-request (a cancelled long poll) is normal here."""

    def handle_error(self, request: object, client_address: object) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


class LocalBotApi:
    def __init__(self, token: str, port: int = 0) -> None:
        self.token = token
        self.calls: list[Call] = []
        self.files: dict[str, tuple[str, bytes]] = {}  # file_id -> (file_path, data)
        self.file_downloads: list[str] = []
        self._updates: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self._message_ids = itertools.count(500)
        self.fail_next: dict[str, tuple[int, str]] = {}  # method -> (error_code, description)
        self.server = QuietServer(("127.0.0.1", port), self._handler())
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> LocalBotApi:
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._cond:
            self._cond.notify_all()
        self.server.shutdown()
        self.server.server_close()

    def add_file(self, file_id: str, file_path: str, data: bytes) -> None:
        self.files[file_id] = (file_path, data)

    def push_update(self, update: dict[str, Any]) -> None:
        with self._cond:
            self._updates.append(update)
            self._cond.notify_all()

    def pending_updates(self) -> list[int]:
        with self._cond:
            return [u["update_id"] for u in self._updates]

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    # the API -------------------------------------------------------------------------------
    def _call(self, method: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if method in self.fail_next:
            code, description = self.fail_next.pop(method)
            return code, {"ok": False, "error_code": code, "description": description}
        if method == "getMe":
            return 200, {"ok": True, "result": BOT}
        if method in ("setWebhook", "deleteWebhook"):
            return 200, {"ok": True, "result": True, "description": "Webhook was set"}
        if method == "getUpdates":
            return 200, {"ok": True, "result": self._get_updates(params)}
        if method == "getFile":
            file_id = params["file_id"]
            if file_id not in self.files:
                return 400, {
                    "ok": False,
                    "error_code": 400,
                    "description": "Bad Request: invalid file_id",
                }
            path, data = self.files[file_id]
            return 200, {
                "ok": True,
                "result": {
                    "file_id": file_id,
                    "file_unique_id": f"u{file_id}",
                    "file_size": len(data),
                    "file_path": path,
                },
            }
        if method in ("sendMessage", "sendPhoto", "sendDocument"):
            message: dict[str, Any] = {
                "message_id": next(self._message_ids),
                "from": BOT,
                "chat": {"id": int(params["chat_id"]), "type": "private"},
                "date": int(time.time()),
            }
            if method == "sendMessage":
                message["text"] = params["text"]
            elif method == "sendPhoto":
                message["photo"] = [
                    {"file_id": "sent-photo", "file_unique_id": "sp", "width": 10, "height": 10}
                ]
            else:
                message["document"] = {"file_id": "sent-doc", "file_unique_id": "sd"}
            return 200, {"ok": True, "result": message}
        return 404, {"ok": False, "error_code": 404, "description": "Not Found"}

    def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(params.get("offset") or 0)
        timeout = min(float(params.get("timeout") or 0), 5.0)  # bounded for tests
        deadline = time.monotonic() + timeout
        with self._cond:
            if offset:  # confirms every update below the offset (Bot API semantics)
                self._updates = [u for u in self._updates if u["update_id"] >= offset]
            while not self._updates and time.monotonic() < deadline:
                self._cond.wait(deadline - time.monotonic())
            return list(self._updates[: int(params.get("limit") or 100)])

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _reply(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                prefix = f"/file/bot{api.token}/"
                requested = unquote(self.path)  # httpx escapes the token's ":" here
                if requested.startswith(prefix):
                    wanted = requested[len(prefix) :]
                    for path, data in api.files.values():
                        if path == wanted:
                            api.file_downloads.append(wanted)
                            self._reply(200, data, "application/octet-stream")
                            return
                    self._reply(404, b"Not Found", "text/plain")
                    return
                print("GET", self.path)
                self._method({})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                ctype = self.headers.get("Content-Type", "")
                params: dict[str, Any] = {}
                files: dict[str, tuple[str, bytes]] = {}
                if ctype.startswith("application/json"):
                    params = json.loads(raw or b"{}")
                elif ctype.startswith("multipart/form-data"):
                    msg = BytesParser(policy=HTTP).parsebytes(
                        f"Content-Type: {ctype}\r\n\r\n".encode() + raw
                    )
                    for part in msg.iter_parts():
                        name = part.get_param("name", header="content-disposition")
                        payload = part.get_payload(decode=True) or b""
                        if part.get_filename():
                            files[name] = (part.get_filename(), payload)
                        else:
                            params[name] = payload.decode()
                else:
                    params = dict(parse_qsl(raw.decode()))
                self._method(params, files)

            def _method(
                self, params: dict[str, Any], files: dict[str, tuple[str, bytes]] | None = None
            ) -> None:
                prefix = f"/bot{api.token}/"
                if not self.path.startswith(prefix):
                    body = {"ok": False, "error_code": 401, "description": "Unauthorized"}
                    self._reply(401, json.dumps(body).encode(), "application/json")
                    return
                method = self.path[len(prefix) :].split("?")[0]
                api.calls.append(Call(method, params, files or {}))
                status, body = api._call(method, params)
                self._reply(status, json.dumps(body).encode(), "application/json")

        return Handler


# Real update JSON, in the shapes of https://core.telegram.org/bots/api#update.
CHAT = {
    "id": 111222333,
    "first_name": "Ana",
    "last_name": "Silva",
    "username": "anasilva",
    "type": "private",
}
FROM = {
    "id": 111222333,
    "is_bot": False,
    "first_name": "Ana",
    "last_name": "Silva",
    "username": "anasilva",
    "language_code": "pt-br",
}


def text_update(update_id: int, message_id: int, text: str) -> dict[str, Any]:
    return {
        "update_id": update_id,
        "message": {
            "message_id": message_id,
            "from": FROM,
            "chat": CHAT,
            "date": 1763798400,
            "text": text,
        },
    }


def photo_update(update_id: int, message_id: int, caption: str) -> dict[str, Any]:
    sizes = [
        {
            "file_id": "AgACAgQAAxkBAAIBsmall",
            "file_unique_id": "AQADsmall",
            "file_size": 1250,
            "width": 90,
            "height": 67,
        },
        {
            "file_id": "AgACAgQAAxkBAAIBlarge",
            "file_unique_id": "AQADlarge",
            "file_size": 60211,
            "width": 1280,
            "height": 960,
        },
        {
            "file_id": "AgACAgQAAxkBAAIBmedium",
            "file_unique_id": "AQADmedium",
            "file_size": 15102,
            "width": 320,
            "height": 240,
        },
    ]
    return {
        "update_id": update_id,
        "message": {
            "message_id": message_id,
            "from": FROM,
            "chat": CHAT,
            "date": 1763798460,
            "photo": sizes,
            "caption": caption,
        },
    }


def document_update(update_id: int, message_id: int) -> dict[str, Any]:
    return {
        "update_id": update_id,
        "message": {
            "message_id": message_id,
            "from": FROM,
            "chat": CHAT,
            "date": 1763798520,
            "document": {
                "file_name": "invoice-4512.pdf",
                "mime_type": "application/pdf",
                "file_id": "BQACAgQAAxkBAAIBdoc",
                "file_unique_id": "AgADdoc",
                "file_size": 2048,
            },
        },
    }


def voice_update(update_id: int, message_id: int) -> dict[str, Any]:
    return {
        "update_id": update_id,
        "message": {
            "message_id": message_id,
            "from": FROM,
            "chat": CHAT,
            "date": 1763798580,
            "voice": {
                "duration": 3,
                "mime_type": "audio/ogg",
                "file_id": "AwACAgQAAxkBAAIBvoice",
                "file_unique_id": "AgADvoice",
                "file_size": 4096,
            },
        },
    }
