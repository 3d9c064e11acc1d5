"""A GitHub REST API stand-in on 127.0.0.1 for `oidc-watch audit`'s tests. Python standard
library only. The Rust tests run it as a child process (`python3 tests/standins/github.py
--data FILE --exit-on-stdin-eof`), read the one JSON line it prints, {"port", "url"}, and
steer it over HTTP.

The data file (JSON) says what GitHub holds:

  {"users": {"acme": {"id": 7, "type": "Organization"}, ...},
   "repos": {"acme/web": {"id": 42, "created_at": "2025-01-01T00:00:00Z", "private": false}, ...},
   "renamed": {"acme/old-name": "acme/new-name", ...}}

A repository's owner must be in "users" (its id and type come from there). Logins and
repository names compare without regard to case, as on GitHub.

What it serves (every request recorded; GET only):

  GET /users/{login}          the user or organization {"login", "id", "type"}, else 404
  GET /repos/{owner}/{repo}   the repository {"id", "name", "full_name", "owner", "private",
                              "created_at"}; a renamed one answers 301 with Location
                              /repositories/{id}, as GitHub does; else 404. A private
                              repository is 404 unless the request carries the token.
  GET /repositories/{id}      the repository by id
  GET /search/users?q=PREFIX+in:login
                              {"total_count", "incomplete_results", "items": [{"login",
                              "id", "type"}]}: the logins that start with PREFIX
  anything else               404

With --token T, a request with `Authorization: Bearer <other>` answers 401 "Bad
credentials"; one without Authorization is anonymous. Every answer carries
X-RateLimit-Limit / X-RateLimit-Remaining.

Control (neither recorded nor rate-limited):

  POST /_control/rate-limit   {"after": N, "status": 403 | 429}: after N more answered
                              requests, every request answers that status with
                              X-RateLimit-Remaining: 0 and "API rate limit exceeded"
  POST /_control/heal         no rate limit
  GET  /_recorded             [{"method", "path", "authorization" (or null), "status"}]

Usage: python3 tests/standins/github.py --data FILE [--token T] [--rate-limit-after N]
       [--exit-on-stdin-eof]
"""
from __future__ import annotations

import argparse
import http.server
import json
import sys
import threading
import urllib.parse

CONTROL = "/_control/"
RECORDED = "/_recorded"
RATE_LIMIT = 5000


class GitHubStandIn:
    def __init__(self, data: dict, token: str | None = None):
        self.token = token
        self.users = {k.lower(): dict(v, login=k) for k, v in (data.get("users") or {}).items()}
        self.repos = {k.lower(): dict(v, full_name=k) for k, v in (data.get("repos") or {}).items()}
        self.renamed = {k.lower(): v.lower() for k, v in (data.get("renamed") or {}).items()}
        self.lock = threading.Lock()
        self.requests: list[dict] = []
        self.limit_after: int | None = None
        self.limit_status = 403
        stand_in = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                if self.path == RECORDED:
                    with stand_in.lock:
                        payload = json.dumps(stand_in.requests).encode()
                    self.reply(200, {"content-type": "application/json"}, payload)
                    return
                record = {"method": "GET", "path": self.path,
                          "authorization": self.headers.get("authorization"), "status": None}
                with stand_in.lock:
                    stand_in.requests.append(record)
                status, headers, body = stand_in.answer(self.path, record["authorization"])
                with stand_in.lock:
                    record["status"] = status
                self.reply(status, headers, body)

            def do_POST(self):  # noqa: N802 (http.server's name)
                raw = self.rfile.read(int(self.headers.get("content-length", 0) or 0))
                if not self.path.startswith(CONTROL):
                    self.reply(404, {"content-type": "application/json"}, b'{"message":"Not Found"}')
                    return
                try:
                    args = json.loads(raw or b"{}")
                    action = self.path[len(CONTROL):]
                    with stand_in.lock:
                        if action == "rate-limit":
                            stand_in.limit_after = int(args.get("after", 0))
                            stand_in.limit_status = int(args.get("status", 403))
                        elif action == "heal":
                            stand_in.limit_after = None
                        else:
                            raise ValueError(f"unknown control {action!r}")
                    self.reply(200, {"content-type": "application/json"}, b'{"ok":true}')
                except (ValueError, TypeError, KeyError) as error:
                    self.reply(400, {"content-type": "application/json"},
                               json.dumps({"error": str(error)}).encode())

            def reply(self, status: int, headers: dict, payload: bytes) -> None:
                try:
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("content-length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    # -- what it answers ---------------------------------------------------------------------
    def user_json(self, login: str) -> dict | None:
        user = self.users.get(login.lower())
        if user is None:
            return None
        return {"login": user["login"], "id": user["id"], "type": user.get("type", "User")}

    def repo_json(self, key: str) -> dict | None:
        repo = self.repos.get(key)
        if repo is None:
            return None
        owner_login, name = repo["full_name"].split("/", 1)
        owner = self.user_json(owner_login) or {"login": owner_login, "id": 0, "type": "User"}
        return {"id": repo["id"], "name": name, "full_name": repo["full_name"], "owner": owner,
                "private": bool(repo.get("private", False)),
                "created_at": repo.get("created_at", "2020-01-01T00:00:00Z")}

    def answer(self, path: str, authorization: str | None) -> tuple[int, dict, bytes]:
        with self.lock:
            if self.limit_after is not None:
                if self.limit_after <= 0:
                    return (self.limit_status,
                            {"content-type": "application/json", "x-ratelimit-limit": "60",
                             "x-ratelimit-remaining": "0", "retry-after": "60"},
                            b'{"message":"API rate limit exceeded"}')
                self.limit_after -= 1
        headers = {"content-type": "application/json", "x-ratelimit-limit": str(RATE_LIMIT),
                   "x-ratelimit-remaining": str(RATE_LIMIT - 1)}
        authorised = False
        if authorization is not None:
            if self.token is not None and authorization != f"Bearer {self.token}":
                return 401, headers, b'{"message":"Bad credentials"}'
            authorised = True
        parsed = urllib.parse.urlsplit(path)
        parts = [urllib.parse.unquote(p) for p in parsed.path.split("/") if p]
        not_found = (404, headers, b'{"message":"Not Found"}')

        def repository(key: str) -> tuple[int, dict, bytes]:
            repo = self.repo_json(key)
            if repo is None or (repo["private"] and not authorised):
                return not_found
            return 200, headers, json.dumps(repo).encode()

        if len(parts) == 2 and parts[0] == "users":
            user = self.user_json(parts[1])
            return (200, headers, json.dumps(user).encode()) if user else not_found
        if len(parts) == 3 and parts[0] == "repos":
            key = f"{parts[1]}/{parts[2]}".lower()
            if key in self.renamed:
                target = self.repos.get(self.renamed[key])
                if target is None:
                    return not_found
                location = f"{self.url}/repositories/{target['id']}"
                moved = dict(headers, location=location)
                return 301, moved, json.dumps({"message": "Moved Permanently", "url": location}).encode()
            return repository(key)
        if len(parts) == 2 and parts[0] == "repositories":
            for key, repo in self.repos.items():
                if str(repo["id"]) == parts[1]:
                    return repository(key)
            return not_found
        if parts == ["search", "users"]:
            query = urllib.parse.parse_qs(parsed.query).get("q", [""])[0]
            prefix = query.split(" ")[0].split("+")[0].lower()
            items = [self.user_json(u["login"]) for k, u in sorted(self.users.items()) if k.startswith(prefix)]
            body = {"total_count": len(items), "incomplete_results": False, "items": items[:100]}
            return 200, headers, json.dumps(body).encode()
        return not_found

    def seen(self) -> list[dict]:
        with self.lock:
            return [dict(r) for r in self.requests]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="the JSON file of users, repos and renames")
    parser.add_argument("--token", default=None)
    parser.add_argument("--rate-limit-after", type=int, default=None)
    parser.add_argument("--exit-on-stdin-eof", action="store_true")
    args = parser.parse_args()
    with open(args.data, encoding="utf-8") as f:
        data = json.load(f)
    stand_in = GitHubStandIn(data, token=args.token)
    if args.rate_limit_after is not None:
        stand_in.limit_after = args.rate_limit_after
    print(json.dumps({"port": stand_in.port, "url": stand_in.url}), flush=True)
    try:
        if args.exit_on_stdin_eof:
            while sys.stdin.read(4096):
                pass
        else:
            threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        stand_in.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
