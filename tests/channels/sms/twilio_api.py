"""A local HTTP server speaking the Twilio REST shape for SMS, for tests only.

``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` (form To/From/Body/StatusCallback,
HTTP basic auth) answers 201 with a message resource, or 400 with Twilio's error JSON
(code 21211 for an invalid To); ``GET /media/{name}`` serves MMS media.
"""

from __future__ import annotations

import base64
import itertools
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

INVALID_TO = "+15005550001"  # Twilio's magic test number for "invalid To"


class QuietServer(ThreadingHTTPServer):
    """A client that hangs up mid-request (a cancelled long poll) is normal here."""

    def handle_error(self, request: object, client_address: object) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


class LocalTwilio:
    def __init__(self, account_sid: str, auth_token: str) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.sent: list[dict[str, str]] = []
        self.media: dict[str, tuple[str, bytes]] = {}
        self._sids = itertools.count(1)
        self.server = QuietServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> LocalTwilio:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _authorized(self, header: str | None) -> bool:
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        return header == f"Basic {expected}"

    def _create(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if form.get("To") == INVALID_TO:
            return 400, {
                "code": 21211,
                "message": f"The 'To' number {INVALID_TO} is not a valid phone number.",
                "more_info": "https://www.twilio.com/docs/errors/21211",
                "status": 400,
            }
        sid = f"SM{next(self._sids):032x}"
        self.sent.append(form)
        return 201, {
            "sid": sid,
            "account_sid": self.account_sid,
            "to": form["To"],
            "from": form["From"],
            "body": form["Body"],
            "status": "queued",
            "num_segments": "1",
            "direction": "outbound-api",
            "api_version": "2010-04-01",
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _reply(self, status: int, body: bytes, ctype: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                if not api._authorized(self.headers.get("Authorization")):
                    self._reply(401, b'{"code": 20003, "message": "Authenticate"}')
                    return
                if self.path == f"/2010-04-01/Accounts/{api.account_sid}.json":  # fetch account
                    account = {"sid": api.account_sid, "status": "active", "type": "Full"}
                    self._reply(200, json.dumps(account).encode())
                    return
                name = self.path.rsplit("/", 1)[-1]
                if name not in api.media:
                    self._reply(404, b'{"code": 20404, "message": "Not found"}')
                    return
                ctype, data = api.media[name]
                self._reply(200, data, ctype)

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                path = f"/2010-04-01/Accounts/{api.account_sid}/Messages.json"
                if self.path != path:
                    self._reply(404, b'{"code": 20404, "message": "Not found"}')
                    return
                if not api._authorized(self.headers.get("Authorization")):
                    self._reply(401, b'{"code": 20003, "message": "Authenticate"}')
                    return
                status, body = api._create(dict(parse_qsl(raw.decode())))
                self._reply(status, json.dumps(body).encode())

        return Handler
