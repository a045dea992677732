"""Planar pushing physics with pymunk: blocks sliding on a table, pushed by a round kinematic effector.

Top-down, no gravity. Table friction is modelled per block with the standard pymunk top-down trick: a pivot
joint and a gear joint to the static body with ``max_bias = 0`` and a capped ``max_force`` / ``max_torque``,
which acts as Coulomb friction (decelerates a sliding block at mu*g regardless of speed, and holds a block still
under forces below the cap). So blocks stop ~1 cm after the pusher leaves them, as on the real board.

Internally the space is in **centimetres** (pymunk's collision slop and iteration tolerances are tuned for
numbers of order 1-100; metres would make 4 cm blocks "tiny"); the API is in metres.

The effector is a kinematic disc (12.7 mm radius) that moves toward its setpoint at the speed needed to arrive
by the end of the control step (0.1 s over ``substeps`` physics steps), so the measured effector reaches the
commanded target unless the move exceeds the speed cap (1 m/s = the 0.1 m action bound at 10 Hz).
"""

from __future__ import annotations

import math

import numpy as np
import pymunk

from rt2.sim import board
from rt2.sim.scene import Scene

CM = 100.0  # metres -> centimetres
GRAVITY_CM = 981.0
TABLE_FRICTION = 0.5  # block-table, Language-Table's lateral friction
BLOCK_MASS = 0.01  # kg (10 g)
MAX_SPEED_CM = 100.0  # effector speed cap, cm/s


class PhysicsWorld:
    """The dynamic part of a scene. Build from a ``Scene``; read poses back with ``block_poses()``."""

    def __init__(self, scene: Scene, substeps: int = 10, control_hz: int = board.CONTROL_HZ, walls: bool = True):
        if substeps < 1:
            raise ValueError(f"substeps must be >= 1, got {substeps}")
        self.substeps = substeps
        self.dt = 1.0 / control_hz / substeps
        self.space = pymunk.Space()
        self.space.iterations = 10
        self.space.gravity = (0.0, 0.0)
        static = self.space.static_body
        if walls:
            # A rim at the board edge (inner face exactly on the edge). Language-Table has none by default, but
            # there a block pushed off the board is out of the effector's reach and the episode is unsolvable;
            # the real board's frame keeps blocks on it.
            r = 1.0
            x0, x1, y0, y1 = board.X_MIN * CM - r, board.X_MAX * CM + r, board.Y_MIN * CM - r, board.Y_MAX * CM + r
            for a, b in (((x0, y0), (x1, y0)), ((x1, y0), (x1, y1)), ((x1, y1), (x0, y1)), ((x0, y1), (x0, y0))):
                seg = pymunk.Segment(static, a, b, r)
                seg.friction = 0.3
                self.space.add(seg)
        self.bodies: list[pymunk.Body] = []
        for b in scene.blocks:
            parts = board.convex_parts(b.shape, b.scale)
            verts = [[tuple(p * CM) for p in part] for part in parts]
            area = sum(abs(_area(v)) for v in verts)
            moment = sum(pymunk.moment_for_poly(BLOCK_MASS * abs(_area(v)) / area, v) for v in verts)
            body = pymunk.Body(BLOCK_MASS, moment)
            body.position = (b.x * CM, b.y * CM)
            body.angle = b.yaw
            shapes = [pymunk.Poly(body, v) for v in verts]
            for s in shapes:
                s.friction = 0.5  # block-block and block-effector (pymunk multiplies: effector 1.0 x 0.5)
                s.elasticity = 0.0
            normal = BLOCK_MASS * GRAVITY_CM * TABLE_FRICTION
            pivot = pymunk.PivotJoint(static, body, (0, 0), (0, 0))
            pivot.max_bias = 0.0
            pivot.max_force = normal
            gear = pymunk.GearJoint(static, body, 0.0, 1.0)
            gear.max_bias = 0.0
            # Friction torque of a uniform pressure distribution ~ mu*m*g times ~2/3 of the block radius.
            gear.max_force = normal * (2 / 3) * board.nominal_radius(b.shape, b.scale) * CM
            self.space.add(body, *shapes, pivot, gear)
            self.bodies.append(body)
        self.effector = pymunk.Body(body_type=pymunk.Body.KINEMATIC)
        eff = scene.effector if scene.effector is not None else board.BOARD_CENTER
        self.effector.position = (eff[0] * CM, eff[1] * CM)
        disc = pymunk.Circle(self.effector, board.EFFECTOR_RADIUS * CM)
        disc.friction = 1.0
        disc.elasticity = 0.0
        self.space.add(self.effector, disc)

    def settle(self, steps: int = 20) -> None:
        """Let overlapping blocks separate (reset places them by nominal radius, not exact geometry)."""
        self.effector.velocity = (0.0, 0.0)
        for _ in range(steps):
            self.space.step(self.dt)
        for body in self.bodies:
            body.velocity = (0.0, 0.0)
            body.angular_velocity = 0.0

    def step(self, target_xy: np.ndarray) -> None:
        """Advance one control step (``substeps`` physics steps), driving the effector toward ``target_xy`` (m)."""
        tx, ty = float(target_xy[0]) * CM, float(target_xy[1]) * CM
        eff = self.effector
        for i in range(self.substeps):
            px, py = eff.position
            dx, dy = tx - px, ty - py
            remaining = (self.substeps - i) * self.dt
            vx, vy = dx / remaining, dy / remaining
            speed = math.hypot(vx, vy)
            if speed > MAX_SPEED_CM:
                vx, vy = vx * MAX_SPEED_CM / speed, vy * MAX_SPEED_CM / speed
            eff.velocity = (vx, vy)
            self.space.step(self.dt)
        eff.velocity = (0.0, 0.0)

    def effector_xy(self) -> np.ndarray:
        """float64[2] measured effector position, metres."""
        p = self.effector.position
        return np.array([p[0] / CM, p[1] / CM])

    def block_poses(self) -> tuple[np.ndarray, np.ndarray]:
        """(float64[N, 2] positions in metres, float64[N] yaw in radians) in scene order."""
        xy = np.array([[b.position[0] / CM, b.position[1] / CM] for b in self.bodies]).reshape(-1, 2)
        yaw = np.array([b.angle for b in self.bodies])
        return xy, yaw


def _area(v: list[tuple[float, float]]) -> float:
    x = np.array([p[0] for p in v])
    y = np.array([p[1] for p in v])
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))
