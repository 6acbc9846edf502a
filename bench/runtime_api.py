"""A small Lambda Runtime API emulator (stdlib only) for the process
benchmarks: it hands queued events to a function process through
`GET /2018-06-01/runtime/invocation/next` and timestamps each answer posted
to `.../{id}/response` (or `.../error`, `/runtime/init/error`).

The clock is `time.perf_counter()` in this process: a run starts just before
the function's process is spawned and a response counts when its request
reaches the handler here, before its body is read.
"""

import json
import queue
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PREFIX = "/2018-06-01/runtime"


class Answer:
    def __init__(self, request_id, kind, at, body):
        self.request_id = request_id
        self.kind = kind  # "response", "error" or "init-error"
        self.at = at
        self.body = body

    def status(self):
        """The HTTP status an API Gateway payload 2.0 answer carries, if any."""
        try:
            return json.loads(self.body).get("statusCode")
        except (ValueError, AttributeError):
            return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A function stopped mid-request resets its connection: expected.
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class RuntimeApi:
    """One emulator on a free port of 127.0.0.1. Put events with `invoke`,
    read answers with `answer`."""

    def __init__(self):
        self._events = queue.Queue()
        self._answers = queue.Queue()
        self.handed_out = {}  # request id -> when `next` returned it
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in separate writes: without this, Nagle
            # holds the body back until the client's delayed ACK (40 ms).
            disable_nagle_algorithm = True

            def log_message(self, *args):
                pass

            def do_GET(self):
                if self.path != f"{PREFIX}/invocation/next":
                    return self._reply(404, b"{}")
                request_id, payload = api._events.get()
                if request_id is None:  # shutting down: answer nothing more
                    return self._reply(503, b"{}")
                api.handed_out[request_id] = time.perf_counter()
                deadline = int((time.time() + 900) * 1000)
                self._reply(
                    200,
                    payload,
                    {
                        "Lambda-Runtime-Aws-Request-Id": request_id,
                        "Lambda-Runtime-Deadline-Ms": str(deadline),
                        "Lambda-Runtime-Invoked-Function-Arn": "arn:aws:lambda:us-east-1:123456789012:function:bench",
                        "Lambda-Runtime-Trace-Id": f"Root=1-{uuid.uuid4().hex[:8]}-{uuid.uuid4().hex[:24]};Sampled=0",
                    },
                )

            def do_POST(self):
                at = time.perf_counter()
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
                parts = self.path[len(PREFIX) :].strip("/").split("/")
                if parts == ["init", "error"]:
                    api._answers.put(Answer(None, "init-error", at, body))
                elif len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
                    api._answers.put(Answer(parts[1], parts[2], at, body))
                else:
                    return self._reply(404, b"{}")
                self._reply(202, b'{"status":"OK"}')

            def _reply(self, status, payload, headers=None):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                try:
                    self.wfile.write(payload)
                except OSError:  # the function was stopped while it waited
                    pass

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    @property
    def address(self):
        host, port = self._server.server_address[:2]
        return f"{host}:{port}"

    def invoke(self, event):
        """Queues an event (a JSON-serialisable value); returns its request id."""
        request_id = str(uuid.uuid4())
        self._events.put((request_id, json.dumps(event).encode()))
        return request_id

    def answer(self, timeout):
        """The next answer posted, or `None` after `timeout` seconds."""
        try:
            return self._answers.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self):
        # Release any `next` still waiting, then stop serving.
        for _ in range(8):
            self._events.put((None, None))
        self._server.shutdown()
        self._server.server_close()
