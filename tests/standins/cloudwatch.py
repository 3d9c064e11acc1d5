"""A CloudWatch PutMetricData stand-in on 127.0.0.1, for the tests of `oidc-watch diagnose
--emit-metrics`. moto 5.2.5 serves CloudWatch only in the query protocol; the current Rust
SDK speaks Smithy RPC v2 CBOR, so metrics sent to moto are lost. This server speaks that
protocol for the one operation the CLI calls, and records what it gets.

  POST /service/GraniteServiceVersion20100801/operation/PutMetricData
      The body (CBOR, gzipped when the SDK compressed it: PutMetricData bodies over 10 KiB
      are) is decoded with cbor2 and recorded; the answer is 200 with an empty
      CBOR map, or, while `refusing` is set, 500 InternalServiceFault.
  anything else: 404, recorded as such.

Point the CLI at it with AWS_ENDPOINT_URL_CLOUDWATCH=<url> (aws-config honours the
service-specific endpoint variables).
"""
from __future__ import annotations

import gzip
import http.server
import threading

import cbor2

PUT_METRIC_DATA = "/service/GraniteServiceVersion20100801/operation/PutMetricData"


class CloudWatchStandIn:
    def __init__(self) -> None:
        self.calls: list[dict] = []
        self.refused: list[dict] = []
        self.refusing = False
        self.unknown: list[str] = []
        standin = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path != PUT_METRIC_DATA:
                    standin.unknown.append(self.path)
                    self.answer(404, {"__type": "UnknownOperationException"})
                    return
                request = cbor2.loads(body) if body else {}
                if standin.refusing:
                    standin.refused.append(request)
                    self.answer(500, {"__type": "com.amazonaws.cloudwatch#InternalServiceFault",
                                      "message": "refused by the stand-in"})
                    return
                standin.calls.append(request)
                self.answer(200, {})

            def answer(self, status: int, body: dict) -> None:
                payload = cbor2.dumps(body)
                self.send_response(status)
                self.send_header("smithy-protocol", "rpc-v2-cbor")
                self.send_header("Content-Type", "application/cbor")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def data(self) -> list[dict]:
        """Every datum accepted, with its call's namespace."""
        return [dict(d, Namespace=c["Namespace"]) for c in self.calls for d in c.get("MetricData", [])]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
