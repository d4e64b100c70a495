"""A tiny OpenAI-compatible server for tests and demos: real HTTP on 127.0.0.1.

    POST /v1/chat/completions → a chat.completion object shaped like OpenAI's.

By default it answers like a careful model: it cites the first knowledge-base passage the
request's JSON schema allows, or escalates when none is allowed. `mode` switches to a
failure: "timeout" (sleeps `delay` seconds), "error_500", "invalid_json" (content that is
not JSON), "bad_value" (a decision outside the allowed set). `answer` forces the content.

    with FakeOpenAI() as fake:
        engine = OpenAIEngine(model="gpt-fake", api_key="test", base_url=fake.base_url)
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODES = ("ok", "timeout", "error_500", "invalid_json", "bad_value")


class FakeOpenAI:
    def __init__(self, *, mode: str = "ok", delay: float = 3.0, answer: dict | None = None):
        self.mode = mode
        self.delay = delay
        self.answer = answer
        self.requests: list[dict] = []  # JSON bodies received, for assertions
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> FakeOpenAI:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if self.path.rstrip("/") != "/v1/chat/completions":
                    return self._send(404, {"error": {"message": "not found", "type": "invalid_request_error"}})
                fake.requests.append(body)
                status, payload = fake.respond(body)
                if status is None:
                    return  # the client gave up (timeout mode)
                self._send(status, payload)

            def _send(self, status: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):  # keep test output quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        # A short poll keeps stop() fast (the default waits up to half a second).
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="fake-openai", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- behaviour ------------------------------------------------------------------------

    def respond(self, body: dict) -> tuple[int | None, dict]:
        if self.mode == "timeout":
            time.sleep(self.delay)
            return None, {}
        if self.mode == "error_500":
            return 500, {"error": {"message": "The server had an error", "type": "server_error", "code": None}}
        if self.mode == "invalid_json":
            content = "Sure! I think you should escalate this one."
        elif self.mode == "bad_value":
            content = json.dumps({**self._careful_answer(body), "decision": "refund_customer"})
        else:
            content = json.dumps(self.answer if self.answer is not None else self._careful_answer(body))
        return 200, completion(body.get("model", "gpt-fake"), content, prompt_tokens=_count_tokens(body))

    @staticmethod
    def _careful_answer(body: dict) -> dict:
        schema = (body.get("response_format") or {}).get("json_schema", {}).get("schema", {})
        article = schema.get("properties", {}).get("article_id", {})
        ids = next((option["enum"] for option in article.get("anyOf", []) if "enum" in option), [])
        if ids:
            return {"decision": "auto_reply", "intent": None, "article_id": ids[0], "category": "general",
                    "priority": "low", "confidence": 0.9, "reply": f"Voici la réponse ({ids[0]}).",
                    "reason": "answered from the knowledge base"}
        return {"decision": "escalate", "intent": None, "article_id": None, "category": "general",
                "priority": "medium", "confidence": 0.6, "reply": None, "reason": "no passage answers it"}


def completion(model: str, content: str, *, prompt_tokens: int = 0) -> dict:
    """A chat.completion object as OpenAI returns it."""
    completion_tokens = max(1, len(content) // 4)
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": "fp_fake",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content, "refusal": None, "annotations": []},
            "logprobs": None,
            "finish_reason": "stop",
        }],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
        },
        "service_tier": "default",
    }


def _count_tokens(body: dict) -> int:
    # About four characters a token, as OpenAI's rule of thumb says.
    return max(1, sum(len(str(m.get("content", ""))) for m in body.get("messages", [])) // 4)
