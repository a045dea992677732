"""The policy server: one asyncio websocket service, many robots, micro-batched inference off the event loop.

    server = PolicyServer(policy, ServerConfig(port=8000))      # policy: any PolicyLike
    await server.start()        # warm-up inference, then listen; /readyz turns 200
    await server.shutdown()     # graceful: refuse new work, finish in-flight requests, close

    with ServerThread(policy, ServerConfig(port=0)) as st:     # tests / benchmarks / notebooks
        st.url                                                  # "ws://127.0.0.1:<port>"

Per connection: the server first sends one metadata frame (msgpack), then answers each binary msgpack request
(see ``rt2.serve.protocol``) with ``{actions, action_text, server_timing, timestamp}`` (plus ``plan``: text
and grid points, for a point-then-act policy) or
``{error: {code, message}}``. A bad request never closes the connection; a message above ``max_message_bytes``
does (websockets closes with 1009 "message too big"), because the transport refuses to buffer it.

Bounded against hostile or broken clients (issue 17): every limit the model has is checked when a request is
parsed (``bad_request`` naming it); a batch that still fails is retried request by request (``MicroBatcher``);
per-robot frames live in a :class:`~rt2.serve.history.FrameHistory` (model-size frames, byte budget, idle and
on-close expiry); at most ``max_connections`` connections (more get HTTP 503); a connection whose reply cannot be
written within ``send_timeout_ms`` (it stopped reading) is aborted.

HTTP on the same port: ``GET /healthz`` (alive), ``GET /readyz`` (model loaded and warm, not draining),
``GET /metrics`` (Prometheus text; needs the token when one is set).

Security: binds 127.0.0.1 by default and refuses a non-loopback address without a token. The token is checked
on the handshake (``Authorization: Bearer <token>``, or openpi's ``Authorization: Api-Key <token>``) with a
constant-time compare; anything else gets HTTP 401 before a websocket exists. No pickle anywhere.
"""

from __future__ import annotations

import asyncio
import hmac
import http
import ipaddress
import itertools
import logging
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from rt2 import __version__
from rt2.serve import wire
from rt2.serve.batcher import MicroBatcher, Result
from rt2.serve.errors import BAD_REQUEST, DEADLINE_EXCEEDED, INTERNAL, OVERLOADED, RequestError, error_body
from rt2.serve.history import FrameHistory
from rt2.serve.metadata import build_metadata
from rt2.serve.metrics import Metrics
from rt2.serve.protocol import MIN_IMAGE_SIDE, parse_request

log = logging.getLogger(__name__)

MAX_ROBOTS_REMEMBERED = 4096  # per-robot frame history ids (and bytes, see FrameHistory): random ids cannot grow it


@runtime_checkable
class PolicyLike(Protocol):
    """What the server needs from a policy (``rt2.policy.Policy`` implements it)."""

    def predict_action_batch(self, images: Any, instructions: Any) -> tuple[np.ndarray, list[str]]: ...

    def metadata(self) -> dict: ...


@dataclass
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None
    max_batch: int = 16
    max_wait_ms: float = 5.0
    max_queue: int = 64
    deadline_ms: float = 1000.0
    max_message_bytes: int = 8 * 2**20
    max_image_side: int = 2048
    max_connections: int = 64
    # A reply that cannot be written within this long (the client stopped reading and every buffer on the way is
    # full) closes the connection: otherwise its handler, its queued frames and its history stay forever.
    send_timeout_ms: float = 5000.0
    history_mb: float = 128.0  # per-robot previous frames, stored at the model's input size
    history_idle_s: float = 60.0  # a robot's history expires after this long without a request

    def validate(self) -> None:
        if not is_loopback(self.host) and not self.token:
            raise ValueError(
                f"refusing to serve on non-loopback address {self.host!r} without a token: anyone on the network "
                "could drive your robots. Pass --token (clients send 'Authorization: Bearer <token>') or bind "
                "127.0.0.1"
            )
        if self.deadline_ms <= 0 or self.max_message_bytes < 1024:
            raise ValueError("deadline_ms must be > 0 and max_message_bytes >= 1024")
        if self.max_connections < 1 or self.send_timeout_ms <= 0 or self.history_mb < 0 or self.history_idle_s <= 0:
            raise ValueError("max_connections must be >= 1, send_timeout_ms > 0, history_mb >= 0, history_idle_s > 0")


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and 'localhost'; False for 0.0.0.0, '' (all interfaces) and anything else."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a hostname: it may resolve to a public interface, so treat it as exposed


class PolicyServer:
    """Serve ``policy`` over websockets. Construct on any thread; ``start``/``shutdown`` on the serving loop."""

    def __init__(self, policy: PolicyLike, config: ServerConfig | None = None) -> None:
        self.config = config or ServerConfig()
        self.config.validate()
        self.policy = policy
        policy_meta = policy.metadata()
        limits = dict(policy_meta.get("input_limits") or {})
        self.min_side = int(limits.get("min_image_side") or MIN_IMAGE_SIDE)
        self.meta = build_metadata(policy_meta, asdict(self.config), rt2_version=__version__)
        self.meta["limits"].update({"min_image_side": self.min_side, "max_prompt_len": limits.get("max_prompt_tokens")})
        self.n_frames = int(self.meta["n_frames"])
        # Only a size the policy states: resizing to build_metadata's 224x224 fallback would change what it sees.
        size = policy_meta.get("image_size")
        self.history = FrameHistory(
            self.n_frames,
            None if size is None else tuple(self.meta["image_size"]),
            max_bytes=int(self.config.history_mb * 2**20),
            max_robots=MAX_ROBOTS_REMEMBERED,
            idle_s=self.config.history_idle_s,
        )
        self._check_instruction = getattr(policy, "check_instruction", None)
        self.metrics = Metrics()
        self.batcher = MicroBatcher(
            self._infer,
            max_batch=self.config.max_batch,
            max_wait_ms=self.config.max_wait_ms,
            max_queue=self.config.max_queue,
            metrics=self.metrics,
            expect_more=lambda: self.connections - self.inflight,
        )
        # openpi's clients name the instruction "prompt" and treat "actions" as a chunk [H, D] (ActionChunkBroker
        # slices row by row) and a text frame as the server's error; rt2's own client sends "instruction".
        self.meta["openpi"] = {
            "actions": "float32[1, D] (an action chunk of horizon 1) when a request names its instruction 'prompt'",
            "errors": "a text frame '<code>: <message>' for such requests (openpi's client raises it)",
        }
        self._meta_frame = wire.packb(self.meta)
        self._conn_ids = itertools.count()
        self._ws: Server | None = None
        self.connections = 0
        self.inflight = 0
        self.ready = False
        self.draining = False
        self.port: int | None = None
        self.metrics.gauge("rt2_queue_depth", "Requests waiting for a batch.", lambda: self.batcher.depth)
        self.metrics.gauge("rt2_connections", "Open websocket connections.", lambda: self.connections)
        self.metrics.gauge("rt2_ready", "1 when the model is loaded and warm.", lambda: float(self._is_ready()))
        self.metrics.gauge("rt2_history_robots", "Robots with a remembered previous frame.", lambda: len(self.history))
        self.metrics.gauge("rt2_history_bytes", "Bytes of remembered previous frames.", lambda: self.history.nbytes)
        self.metrics.gauge("rt2_history_evicted", "Histories dropped for space (LRU).", lambda: self.history.evicted)

    # ---- lifecycle ----------------------------------------------------------------------------------------
    async def start(self) -> None:
        await self.batcher.start()
        await self.batcher.run_in_worker(self._warm_up)
        self._ws = await serve(
            self._handle,
            self.config.host,
            self.config.port,
            process_request=self._process_request,
            max_size=self.config.max_message_bytes,
            compression=None,  # images do not deflate; compression only costs CPU (openpi's client disables it)
            max_queue=4,  # frames buffered per connection while its handler is busy
            write_limit=64 * 1024,  # replies buffered per connection before send() waits (see send_timeout_ms)
            ping_interval=20,
            ping_timeout=20,
        )
        self.port = self._ws.sockets[0].getsockname()[1]
        self.ready = True
        log.info("rt2 serving %s on ws://%s:%d", self.meta.get("model_name"), self.config.host, self.port)

    def _warm_up(self) -> None:
        h, w = self.meta["image_size"]
        frames = [np.zeros((h, w, 3), np.uint8)] * self.n_frames
        self._infer([frames], ["warm up"])

    async def wait_closed(self) -> None:
        assert self._ws is not None
        await self._ws.wait_closed()

    async def shutdown(self, grace_s: float | None = None) -> None:
        """Graceful stop: stop listening, refuse new requests, let in-flight ones finish, then close."""
        if self.draining or self._ws is None:
            return
        self.draining = True
        self._ws.server.close()  # stop accepting TCP connections; open ones keep going for now
        grace = self.config.deadline_ms / 1000.0 + 1.0 if grace_s is None else grace_s
        end = time.monotonic() + grace
        await self.batcher.drain(grace)
        while self.inflight and time.monotonic() < end:
            await asyncio.sleep(0.005)
        self._ws.close()  # close frames (1001 going away) to every client, wait for handlers
        await self._ws.wait_closed()
        await self.batcher.close()
        self.ready = False

    def _is_ready(self) -> bool:
        return self.ready and not self.draining

    # ---- HTTP ---------------------------------------------------------------------------------------------
    def _authorized(self, request: Request) -> bool:
        if not self.config.token:
            return True
        values = request.headers.get_all("Authorization")
        if len(values) != 1:  # none, or ambiguous duplicates (Headers.get would raise on those)
            return False
        header = values[0]
        scheme, _, value = header.partition(" ")
        if scheme.lower() not in ("bearer", "api-key"):  # openpi's client sends "Api-Key <key>"
            value = ""
        # compare_digest on bytes: constant time in the length of the secret, no early exit on a prefix match.
        return hmac.compare_digest(value.strip().encode(), self.config.token.encode())

    def _process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        path = request.path.split("?", 1)[0]
        if path == "/healthz":
            return conn.respond(http.HTTPStatus.OK, "ok\n")
        if path == "/readyz":
            if self._is_ready():
                return conn.respond(http.HTTPStatus.OK, "ready\n")
            return conn.respond(http.HTTPStatus.SERVICE_UNAVAILABLE, "draining\n" if self.draining else "warming up\n")
        if not self._authorized(request):
            resp = conn.respond(http.HTTPStatus.UNAUTHORIZED, "unauthorized: send 'Authorization: Bearer <token>'\n")
            resp.headers["WWW-Authenticate"] = 'Bearer realm="rt2"'
            self.metrics.count("unauthorized")
            return resp
        if path == "/metrics":
            resp = conn.respond(http.HTTPStatus.OK, self.metrics.render())
            del resp.headers["Content-Type"]
            resp.headers["Content-Type"] = "text/plain; version=0.0.4; charset=utf-8"
            return resp
        if self.draining:
            return conn.respond(http.HTTPStatus.SERVICE_UNAVAILABLE, "server is shutting down\n")
        if self.connections >= self.config.max_connections:
            self.metrics.count("refused_connection")
            return conn.respond(
                http.HTTPStatus.SERVICE_UNAVAILABLE,
                f"too many connections ({self.config.max_connections}, --max-connections); retry later\n",
            )
        return None  # proceed with the websocket handshake (any other path)

    # ---- websocket ----------------------------------------------------------------------------------------
    async def _handle(self, ws: ServerConnection) -> None:
        conn_key = f"conn-{next(self._conn_ids)}"
        self.connections += 1
        try:
            if self.connections > self.config.max_connections:  # handshakes that raced past _process_request
                self.metrics.count("refused_connection")
                await ws.close(1013, f"too many connections ({self.config.max_connections}); retry later")
                return
            await self._send(ws, self._meta_frame)
            async for message in ws:
                reply = await self._serve_one(message, conn_key)
                if reply.pop(_OPENPI_STYLE, False) and "error" in reply:  # openpi's client reads errors as text
                    err = reply["error"]
                    await self._send(ws, f"{err['code']}: {err['message']}")
                else:
                    await self._send(ws, self._encode(reply))
        except ConnectionClosed:
            pass  # client went away (possibly mid-request): nothing to answer
        except TimeoutError:
            pass  # _send closed a connection that stopped reading
        finally:
            self.connections -= 1
            self.history.forget_owner(conn_key)

    async def _send(self, ws: ServerConnection, data: bytes | str) -> None:
        """Send, or abort a connection whose buffers stay full for ``send_timeout_ms`` (it stopped reading)."""
        try:
            await asyncio.wait_for(ws.send(data), self.config.send_timeout_ms / 1000.0)
        except asyncio.TimeoutError:
            log.warning(
                "closing a connection from %s: it read no reply for %g ms",
                ws.remote_address,
                self.config.send_timeout_ms,
            )
            self.metrics.count("slow_client_closed")
            ws.transport.abort()  # a close frame could not get through the full buffer either
            raise TimeoutError from None

    async def _serve_one(self, message: str | bytes, conn_key: str) -> dict:
        t0 = time.monotonic()
        timestamp = None
        openpi = False
        try:
            if isinstance(message, str):
                raise RequestError(BAD_REQUEST, "text frames are not accepted; send a binary msgpack map")
            try:
                obj = wire.unpackb(message)
            except wire.WireError as e:
                raise RequestError(BAD_REQUEST, str(e)) from None
            timestamp = _echo_timestamp(obj)
            openpi = _openpi_style(obj)
            req = parse_request(
                obj, n_frames=self.n_frames, max_side=self.config.max_image_side, min_side=self.min_side
            )
            if self._check_instruction is not None:
                try:
                    self._check_instruction(req.instruction)  # e.g. the prompt's tokens must fit the model
                except ValueError as e:
                    raise RequestError(BAD_REQUEST, str(e)) from None
            if self.draining:
                raise RequestError(OVERLOADED, "server is shutting down")
            frames = self.history.complete(req.robot_id or conn_key, req.frames, req.reset, owner=conn_key)
            deadline = t0 + self.config.deadline_ms / 1000.0
            self.inflight += 1
            try:
                fut = self.batcher.submit(frames, req.instruction, deadline)
                try:
                    result: Result = await asyncio.wait_for(asyncio.shield(fut), max(deadline - time.monotonic(), 0))
                except asyncio.TimeoutError:
                    fut.cancel()  # still queued: the batcher skips it; already running: the result is dropped
                    raise RequestError(DEADLINE_EXCEEDED, f"no action within {self.config.deadline_ms:g} ms") from None
            finally:
                self.inflight -= 1
            reply = {
                # openpi-style requests get a chunk of horizon 1, so ActionChunkBroker hands out the whole vector
                "actions": result.action[None] if openpi else result.action,
                "action_text": result.text,
                "server_timing": {
                    "queue_ms": result.queue_ms,
                    "infer_ms": result.infer_ms,
                    "total_ms": (time.monotonic() - t0) * 1e3,
                    "batch_size": result.batch_size,
                },
                "timestamp": timestamp,
            }
            if result.plan is not None:  # point-then-act policies: the plan and its grid points, parsed
                reply["plan"] = plan_reply(result.plan)
            code = "ok"
        except RequestError as e:
            reply, code = error_body(e.code, e.message), e.code
            reply["timestamp"] = timestamp
        except Exception:
            log.exception("unexpected error serving a request")
            reply, code = error_body(INTERNAL, "internal server error (see server log)"), INTERNAL
            reply["timestamp"] = timestamp
        self.metrics.count(code)
        self.metrics.observe_request(time.monotonic() - t0)
        if openpi:
            reply[_OPENPI_STYLE] = True
        return reply

    def _encode(self, reply: dict) -> bytes:
        try:
            return wire.packb(reply)
        except (TypeError, ValueError):  # e.g. a policy returning an unencodable action text
            log.exception("cannot encode a reply")
            self.metrics.count(INTERNAL)
            return wire.packb(
                {
                    **error_body(INTERNAL, "reply could not be encoded (see server log)"),
                    "timestamp": reply.get("timestamp"),
                }
            )

    def _infer(self, frames: list, instructions: list[str]) -> tuple[np.ndarray, list[str], list | None]:
        actions, texts = self.policy.predict_action_batch(frames, instructions)
        # read in the same worker call: the batcher runs one batch at a time, so last_plans is this batch's
        plans = getattr(self.policy, "last_plans", None)
        return actions, texts, (list(plans) if plans is not None and len(plans) == len(texts) else None)


_OPENPI_STYLE = "__openpi_style__"  # internal marker on a reply dict; never sent


def _openpi_style(obj: Any) -> bool:
    """A request in openpi's shape: its instruction under "prompt" (openpi's key), none under "instruction"."""
    if not isinstance(obj, dict):
        return False
    return any(k in obj for k in ("prompt", b"prompt")) and not any(k in obj for k in ("instruction", b"instruction"))


def plan_reply(plan: str) -> dict:
    """``{"text": plan, "points": [{"label": "robot", "point": [gx, gy]}, ...]}``; ``points`` is None when the
    plan does not parse (reported as the model wrote it, never repaired)."""
    from rt2.data.plan import parse_plan

    parsed = parse_plan(plan)
    return {"text": plan, "points": None if parsed is None else [p.to_dict() for p in parsed]}


def _echo_timestamp(obj: Any) -> Any:
    ts = wire.key(obj, "timestamp") if isinstance(obj, dict) else None
    if isinstance(ts, np.generic):
        ts = ts.item()
    return ts if isinstance(ts, (int, float)) and not isinstance(ts, bool) else None


class ServerThread:
    """Run a :class:`PolicyServer` on its own event loop in a background thread (tests, benchmarks, notebooks)."""

    def __init__(self, policy: PolicyLike, config: ServerConfig | None = None) -> None:
        self.server = PolicyServer(policy, config)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="rt2-server", daemon=True)

    @property
    def url(self) -> str:
        host = self.server.config.host
        host = f"[{host}]" if ":" in host else host
        return f"ws://{host}:{self.server.port}"

    def _main(self) -> None:
        asyncio.run(self._amain())

    async def _amain(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            await self.server.start()
        except BaseException as e:
            self._error = e
            self._started.set()
            return
        self._started.set()
        await self._stop.wait()
        await self.server.shutdown()

    def start(self, timeout: float = 120.0) -> ServerThread:
        self._thread.start()
        if not self._started.wait(timeout):
            raise TimeoutError(f"server did not start within {timeout} s")
        if self._error is not None:
            raise self._error
        return self

    def stop(self, timeout: float = 30.0) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
