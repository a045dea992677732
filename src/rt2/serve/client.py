"""The robot-side client: blocking, numpy + msgpack + websockets only (no torch; safe on a robot computer).

    with PolicyClient("ws://127.0.0.1:8000", action_dim=2, image_size=(64, 64), deadline_s=0.3) as client:
        action = client.act(frame, "push the red star to the top left")      # float32[D], checked
        client.last_timing                                                   # server_timing of that reply

Every call has a deadline. Nothing unchecked reaches the robot:

- before the first request the server's handshake metadata is checked against what the robot expects
  (action dimension, image size) -> :class:`MetadataMismatch`;
- a reply must echo the request's timestamp (a late answer to an earlier request must never drive the
  arm now) -> :class:`StaleReply`;
- the action must be finite, have D values, and lie within the advertised bounds -> :class:`InvalidAction`;
- no reply within the deadline -> :class:`DeadlineExceeded`; the connection is then dropped, so a late reply
  can never be read as the answer to the next request;
- a lost server -> :class:`ServerUnavailable`; reconnects use exponential backoff with jitter (a robot fleet
  must not hammer a restarting server), bounded by each call's deadline.
"""

from __future__ import annotations

import contextlib
import inspect
import random
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.sync.client import connect

from rt2.serve import wire
from rt2.serve.errors import (
    DeadlineExceeded,
    InvalidAction,
    MetadataMismatch,
    ServerUnavailable,
    StaleReply,
    Unauthorized,
    server_error,
)

_CONNECT_PARAMS = set(inspect.signature(connect).parameters)


class PolicyClient:
    """Blocking client for ``rt2 serve`` (also talks to anything speaking the same msgpack protocol).

    Args:
        url: ``ws://host:port``.
        token: sent as ``Authorization: Bearer <token>``.
        deadline_s: default per-call deadline, covering reconnect + send + inference + reply.
        robot_id: sent with every request; keys the server's per-robot frame history (default: connection).
        action_dim / image_size: what the robot expects; checked against the handshake (None: not checked).
        check_bounds: reject actions outside the metadata's ``[low, high]``.
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        deadline_s: float = 1.0,
        robot_id: str | None = None,
        action_dim: int | None = None,
        image_size: tuple[int, int] | None = None,
        check_bounds: bool = True,
        max_message_bytes: int = 8 * 2**20,
        backoff_initial_s: float = 0.05,
        backoff_max_s: float = 2.0,
    ) -> None:
        if not url.startswith(("ws://", "wss://")):
            raise ValueError(f"server url must start with ws:// or wss://, got {url!r}")
        self.url = url
        self.token = token
        self.deadline_s = float(deadline_s)
        self.robot_id = robot_id
        self.action_dim = action_dim
        self.image_size = tuple(image_size) if image_size is not None else None
        self.check_bounds = check_bounds
        self.max_message_bytes = max_message_bytes
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.metadata: dict | None = None
        self.last_reply: dict | None = None
        self._ws = None
        self._backoff = 0.0
        self._next_attempt = 0.0
        self._last_ts = 0.0
        self._low: np.ndarray | None = None
        self._high: np.ndarray | None = None
        self._dim = 0

    # ---- connection ---------------------------------------------------------------------------------------
    def connect(self, deadline_s: float | None = None) -> dict:
        """Connect now (otherwise the first call does) and return the server's checked metadata."""
        self._ensure_connected(time.monotonic() + (self.deadline_s if deadline_s is None else deadline_s))
        assert self.metadata is not None
        return self.metadata

    def _open(self, timeout: float):
        kwargs: dict[str, Any] = {"open_timeout": timeout, "max_size": self.max_message_bytes, "compression": None}
        if self.token:
            kwargs["additional_headers"] = {"Authorization": f"Bearer {self.token}"}
        if "proxy" in _CONNECT_PARAMS:
            kwargs["proxy"] = None  # a robot's HTTP(S)_PROXY env must not reroute its control channel
        ws = connect(self.url, **kwargs)
        # websockets >= 17.1 warns unless used as a context manager; entering returns the connection itself.
        return ws.__enter__()

    def _ensure_connected(self, end: float):
        if self._ws is not None:
            return self._ws
        now = time.monotonic()
        if self._next_attempt > now:
            if self._next_attempt >= end:
                raise ServerUnavailable(
                    f"{self.url} unreachable; next reconnect attempt in {(self._next_attempt - now) * 1e3:.0f} ms"
                )
            time.sleep(self._next_attempt - now)
        try:
            ws = self._open(max(end - time.monotonic(), 0.001))
            try:
                raw = ws.recv(timeout=max(end - time.monotonic(), 0.001))
            except BaseException:
                ws.close()
                raise
        except InvalidStatus as e:
            status = e.response.status_code
            self._schedule_backoff()
            if status == 401:
                raise Unauthorized("unauthorized", "server rejected the token (HTTP 401)") from None
            raise ServerUnavailable(f"{self.url} refused the connection (HTTP {status})") from None
        except TimeoutError:
            self._schedule_backoff()
            raise DeadlineExceeded(f"no handshake from {self.url} within the deadline") from None
        except (OSError, ConnectionClosed, InvalidHandshake) as e:
            self._schedule_backoff()
            raise ServerUnavailable(f"cannot reach {self.url}: {e}") from None
        try:
            meta = wire.unpackb(raw)
            self._check_metadata(meta)
        except BaseException:
            ws.close()
            raise
        self._ws, self.metadata = ws, meta
        self._backoff = 0.0
        return ws

    def _schedule_backoff(self) -> None:
        self._backoff = min(self.backoff_max_s, max(self.backoff_initial_s, self._backoff * 2))
        self._next_attempt = time.monotonic() + self._backoff * (0.5 + random.random() / 2)  # jitter

    def _drop(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None:
            with contextlib.suppress(Exception):  # already broken; we only want it gone
                ws.close()

    def _check_metadata(self, meta: Any) -> None:
        if not isinstance(meta, dict) or not isinstance(meta.get("action_space"), dict):
            raise MetadataMismatch(f"{self.url} is not an rt2 policy server (handshake has no action_space)")
        space = meta["action_space"]
        dim = int(space.get("dim", len(space.get("names", []))))
        if self.action_dim is not None and dim != self.action_dim:
            raise MetadataMismatch(
                f"server policy outputs {dim}-D actions ({' '.join(space.get('names', []))}); this robot expects "
                f"{self.action_dim}-D"
            )
        size = tuple(int(v) for v in meta.get("image_size", ()))
        if self.image_size is not None and size != self.image_size:
            raise MetadataMismatch(f"server model expects images {size}, this robot sends {self.image_size}")
        self._low = np.asarray(space.get("low"), dtype=np.float64) if "low" in space else None
        self._high = np.asarray(space.get("high"), dtype=np.float64) if "high" in space else None
        self._dim = dim

    # ---- calls --------------------------------------------------------------------------------------------
    def act(
        self,
        image: np.ndarray | Sequence[np.ndarray],
        instruction: str,
        *,
        reset: bool = False,
        deadline_s: float | None = None,
    ) -> np.ndarray:
        """One action for ``image`` (uint8[H, W, 3], or frames oldest first) -> float32[D] (or [H, D])."""
        frames = image if isinstance(image, (list, tuple)) else [image]
        for f in frames:
            if not isinstance(f, np.ndarray) or f.dtype != np.uint8 or f.ndim != 3 or f.shape[-1] != 3:
                raise ValueError("image must be a uint8 array [H, W, 3]")
        obs: dict[str, Any] = {"images": list(frames) if len(frames) > 1 else frames[0], "instruction": instruction}
        if reset:
            obs["reset"] = True
        return self.infer(obs, deadline_s=deadline_s)["actions"]

    def infer(self, obs: Mapping[str, Any], *, deadline_s: float | None = None) -> dict:
        """Send one request dict (see ``rt2.serve.protocol``); return the checked reply dict."""
        end = time.monotonic() + (self.deadline_s if deadline_s is None else deadline_s)
        ts = max(time.time(), self._last_ts + 1e-6)  # strictly increasing, so every reply is attributable
        self._last_ts = ts
        msg = dict(obs)
        msg["timestamp"] = ts
        if self.robot_id is not None:
            msg.setdefault("robot_id", self.robot_id)
        payload = wire.packb(msg)
        while True:
            ws = self._ensure_connected(end)
            try:
                ws.send(payload)
                raw = ws.recv(timeout=max(end - time.monotonic(), 0.0))
                break
            except TimeoutError:
                self._drop()  # a late reply must never be read as the answer to the next request
                raise DeadlineExceeded(f"no reply from {self.url} within the deadline") from None
            except (ConnectionClosed, OSError) as e:
                self._drop()
                self._schedule_backoff()
                if self._next_attempt >= end:
                    raise ServerUnavailable(f"connection to {self.url} lost: {e}") from None
        return self._check_reply(raw, ts)

    def _check_reply(self, raw: bytes | str, ts: float) -> dict:
        if isinstance(raw, str):
            raise InvalidAction(f"server sent a text frame: {raw[:200]!r}")
        try:
            reply = wire.unpackb(raw)
        except wire.WireError as e:
            raise InvalidAction(f"undecodable reply: {e}") from None
        if not isinstance(reply, dict):
            raise InvalidAction("reply is not a map")
        if "error" in reply and reply.get("timestamp") in (ts, None):  # None: the server could not read ours
            err = reply["error"] if isinstance(reply["error"], dict) else {}
            raise server_error(str(err.get("code", "internal")), str(err.get("message", "")))
        if reply.get("timestamp") != ts:
            self._drop()  # out of sync: start clean
            raise StaleReply(f"reply timestamp {reply.get('timestamp')!r} does not match request {ts!r}")
        a = reply.get("actions")
        if not isinstance(a, np.ndarray) or a.dtype.kind not in "iuf" or a.ndim not in (1, 2):
            raise InvalidAction("reply 'actions' is not a numeric array [D] or [H, D]")
        if a.shape[-1] != self._dim:
            raise InvalidAction(f"reply has {a.shape[-1]} action values, metadata says {self._dim}")
        a = a.astype(np.float32)
        if not np.isfinite(a).all():
            raise InvalidAction(f"reply action is not finite: {a.tolist()}")
        if self.check_bounds and self._low is not None and self._high is not None:
            tol = 1e-5 * (self._high - self._low) + 1e-6
            if (a < self._low - tol).any() or (a > self._high + tol).any():
                raise InvalidAction(
                    f"reply action {a.tolist()} outside bounds [{self._low.tolist()}, {self._high.tolist()}]"
                )
        reply["actions"] = a
        self.last_reply = reply
        return reply

    @property
    def last_timing(self) -> dict:
        return dict((self.last_reply or {}).get("server_timing", {}))

    def close(self) -> None:
        self._drop()

    def __enter__(self) -> PolicyClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
