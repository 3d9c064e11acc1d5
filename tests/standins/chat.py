"""A chat stand-in on 127.0.0.1 for oidc-notifier's tests: Slack and Microsoft Teams. Python
standard library only. The e2e tier imports it (`ChatStandIn`); the Rust tests run it as a
child process (`python3 tests/standins/chat.py`) and steer it over HTTP.

What it serves (every request recorded when it arrives; then the status it answered, the
body it answered with, and whether that answer means "posted"):

  POST /api/chat.postMessage   Slack's Web API. With `Authorization: Bearer <token>` answers
                               {"ok": true, "channel", "ts", "message"} with a ts that
                               increases per post; with another token
                               {"ok": false, "error": "invalid_auth"} (status 200, as Slack).
  POST <webhook path>          A Slack incoming webhook (default `/services/T0E2E/B0E2E/<hex>`):
                               answers `200 ok`.
  POST /workflows/...          A Teams Workflows incoming webhook (any path starting
                               `/workflows/`, query string allowed). The body is an Adaptive
                               Card message, {"type": "message", "attachments":
                               [{"contentType": "application/vnd.microsoft.card.adaptive",
                               "content": {...}}]}; it is recorded, and the answer is
                               `202 Accepted` with an empty body.
  anything else                404 `no_service`, not posted.

Scripted answers apply to every path above, before the default answer: `answer_once` queues
one-shot answers used in order (e.g. 429 with `Retry-After: 1`, a 500, a Slack
`{"ok": false, "error": ...}`); `fail_always` answers every request with a status until
`heal`; `delay` holds every answer that many seconds; `hold` holds answers until `release`
(a chat service that accepts the request and does not answer). `heal` also clears the queue,
the delay and a hold.

Run as a program it prints one JSON line, {"port", "url", "token", "webhook_path",
"teams_path"}, and serves until killed (or, with --exit-on-stdin-eof, until its stdin
closes: the parent test process is gone). It is controlled on the same port; these paths
are neither recorded nor scripted:

  POST /_control/answer-once   {"status": 429, "headers": {"Retry-After": "1"}, "body": "..."}
  POST /_control/fail-always   {"status": 500}
  POST /_control/delay         {"seconds": 1.0}
  POST /_control/hold          (no body)
  POST /_control/release       (no body)
  POST /_control/heal          (no body)
  GET  /_recorded              every recorded request, in arrival order: [{"method", "path",
                               "headers" (names lower-cased), "body" (JSON, or the text when
                               it is not JSON), "raw" (the text), "t" (monotonic seconds),
                               "status", "reply" (the answer's body), "posted"}]

Usage: python3 tests/standins/chat.py [--token T] [--webhook-path P] [--exit-on-stdin-eof]
"""
from __future__ import annotations

import argparse
import http.server
import json
import sys
import threading
import time
import uuid

CONTROL = "/_control/"
RECORDED = "/_recorded"
SLACK_POST = "/api/chat.postMessage"
TEAMS_PREFIX = "/workflows/"


class ChatStandIn:
    """Slack and Teams on 127.0.0.1 (ephemeral port); see the module docstring."""

    def __init__(self, token: str | None = None, webhook_path: str | None = None):
        self.token = token or f"xoxb-e2e-{uuid.uuid4().hex[:16]}"
        self.webhook_path = webhook_path or f"/services/T0E2E/B0E2E/{uuid.uuid4().hex}"
        self.teams_path = f"{TEAMS_PREFIX}{uuid.uuid4().hex}/triggers/manual/paths/invoke?api-version=1&sig=e2e"
        self.lock = threading.Lock()
        self.requests: list[dict] = []
        self.once: list[tuple[int, dict, bytes]] = []
        self.failing: tuple[int, dict, bytes] | None = None
        self.delay = 0.0
        self.released = threading.Event()
        self.released.set()
        self.base_ts = int(time.time())
        self.posted = 0
        stand_in = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                if self.path == RECORDED:
                    self.reply(200, {"content-type": "application/json"}, json.dumps(stand_in.seen()).encode())
                else:
                    self.reply(404, {"content-type": "text/html"}, b"no_service")

            def do_POST(self):  # noqa: N802 (http.server's name)
                raw = self.rfile.read(int(self.headers.get("content-length", 0) or 0))
                if self.path.startswith(CONTROL):
                    status, payload = stand_in.control(self.path[len(CONTROL):], raw)
                    self.reply(status, {"content-type": "application/json"}, payload)
                    return
                text = raw.decode("utf-8", "replace")
                try:
                    body = json.loads(raw or b"null")
                except ValueError:
                    body = text
                record = {"method": "POST", "path": self.path,
                          "headers": {k.lower(): v for k, v in self.headers.items()},
                          "body": body, "raw": text, "t": time.monotonic(),
                          "status": None, "reply": None, "posted": False}
                with stand_in.lock:
                    stand_in.requests.append(record)
                stand_in.released.wait(timeout=60)
                if stand_in.delay:
                    time.sleep(stand_in.delay)
                status, headers, payload, posted = stand_in.answer(self.path, record)
                # Recorded before answering: the caller may go on as soon as it reads it.
                with stand_in.lock:
                    record["status"], record["posted"] = status, posted
                    record["reply"] = payload.decode("utf-8", "replace")
                if not self.reply(status, headers, payload):
                    with stand_in.lock:  # the client is gone (a killed instance): not delivered
                        record["status"], record["posted"] = None, False

            def reply(self, status: int, headers: dict, payload: bytes) -> bool:
                try:
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("content-length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return True
                except OSError:
                    return False

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.api_url = f"{self.url}/api"
        self.webhook_url = f"{self.url}{self.webhook_path}"
        self.teams_url = f"{self.url}{self.teams_path}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()

    # -- what it answers -----------------------------------------------------------------------
    def answer(self, path: str, record: dict) -> tuple[int, dict, bytes, bool]:
        """(status, headers, body, whether this answer means "posted")."""
        with self.lock:
            if self.once:
                return (*self.once.pop(0), False)
            if self.failing:
                return (*self.failing, False)
            if path == SLACK_POST:
                if record["headers"].get("authorization") != f"Bearer {self.token}":
                    return 200, {"content-type": "application/json"}, b'{"ok":false,"error":"invalid_auth"}', False
                self.posted += 1
                ts = f"{self.base_ts + self.posted}.{self.posted:06d}"
                body = record["body"] if isinstance(record["body"], dict) else {}
                answer = {"ok": True, "channel": body.get("channel"), "ts": ts,
                          "message": {"type": "message", "text": body.get("text"), "ts": ts}}
                return 200, {"content-type": "application/json"}, json.dumps(answer).encode(), True
            if path == self.webhook_path:
                self.posted += 1
                return 200, {"content-type": "text/html"}, b"ok", True
            if path.startswith(TEAMS_PREFIX):
                self.posted += 1
                return 202, {}, b"", True
            return 404, {"content-type": "text/html"}, b"no_service", False

    def answer_once(self, status: int, headers: dict | None = None, body: bytes = b""):
        with self.lock:
            self.once.append((status, headers or {}, body))

    def fail_always(self, status: int):
        with self.lock:
            self.failing = (status, {"content-type": "text/html"}, f"<html>{status}</html>".encode())

    def hold(self):
        self.released.clear()

    def release(self):
        self.released.set()

    def heal(self):
        with self.lock:
            self.failing = None
            self.once.clear()
            self.delay = 0.0
        self.release()

    def control(self, action: str, raw: bytes) -> tuple[int, bytes]:
        """One `/_control/<action>` request: (status, JSON body)."""
        try:
            args = json.loads(raw or b"{}")
            if action == "answer-once":
                body = args.get("body", "")
                self.answer_once(int(args["status"]), dict(args.get("headers") or {}),
                                 body.encode() if isinstance(body, str) else json.dumps(body).encode())
            elif action == "fail-always":
                self.fail_always(int(args["status"]))
            elif action == "delay":
                with self.lock:
                    self.delay = float(args["seconds"])
            elif action == "hold":
                self.hold()
            elif action == "release":
                self.release()
            elif action == "heal":
                self.heal()
            else:
                return 404, json.dumps({"error": f"no control {action!r}"}).encode()
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            return 400, json.dumps({"error": f"{action}: {e!r}"}).encode()
        return 200, b'{"ok":true}'

    # -- what it saw ---------------------------------------------------------------------------
    def seen(self) -> list[dict]:
        with self.lock:
            return [dict(r) for r in self.requests]

    def delivered(self) -> list[dict]:
        """The requests answered as posted (`ok` on the webhook, ok: true on chat.postMessage,
        202 on a Teams workflow)."""
        return [r for r in self.seen() if r["posted"]]

    def wait_for(self, count: int, timeout: float = 10) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.seen()) >= count:
                break
            time.sleep(0.02)
        return self.seen()

    def close(self):
        self.release()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def main() -> int:
    parser = argparse.ArgumentParser(description="Slack and Teams stand-in on 127.0.0.1 (see the module docstring).")
    parser.add_argument("--token", help="the bot token chat.postMessage accepts (default: a random xoxb-e2e-…)")
    parser.add_argument("--webhook-path", help="the Slack incoming webhook's path (default: a random /services/…)")
    parser.add_argument("--exit-on-stdin-eof", action="store_true", help="stop when stdin closes (the parent is gone)")
    args = parser.parse_args()
    stand_in = ChatStandIn(token=args.token, webhook_path=args.webhook_path)
    print(json.dumps({"port": stand_in.port, "url": stand_in.url, "token": stand_in.token,
                      "webhook_path": stand_in.webhook_path, "teams_path": stand_in.teams_path}), flush=True)
    try:
        if args.exit_on_stdin_eof:
            while sys.stdin.buffer.read(4096):
                pass
        else:
            threading.Event().wait()
    except KeyboardInterrupt:
        pass
    stand_in.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
