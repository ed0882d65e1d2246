"""Synthetic basketball clips with exact ground truth, for tests, demos and benchmarks.

:func:`make_game` draws a broadcast-like view of a court with two teams, referees, a
ball and a rim, encodes it to H.264 and writes, per clip, a label table (schema
:data:`hoopray.types.LABELS`) that holds every object's *visible* mask after occlusion,
its box and, for players, the jersey number and the number's box where it can be read.

What happens in a clip, all decided by the seed:

- players walk smoothly (a sum of slow sinusoids, clamped to the court) and cross each
  other; the nearer one (larger foot y) hides the farther one;
- every player keeps turning: the number shows only while the player faces the camera
  (side-on and back views carry no number), so numbers turn away and come back;
- a player may walk in from the side mid-clip (``enter_frames``) or walk out for good
  (``leave_frames``);
- the ball is dribbled by one player and passed to another every one to two seconds.

Noise of the world, each a named knob of :func:`make_game` (``difficulty`` presets them
all, :data:`WORLD_PRESETS`; ``easy``, the default, is the world above):

- ``similar_colours``: the chance that the two teams wear similar colours (white against
  light grey, navy against black, :data:`SIMILAR_COLOURS`) instead of blue against red;
- ``hidden_players`` / ``hidden_share``: players per clip who stand right behind an
  opponent for that share of the clip (their torso, number and most of their jersey
  covered, so a crop of their box is mostly the opponent's jersey);
- ``number_overlap``: a number stays detectable while up to this share of its box is
  covered by a nearer player, so number boxes reach into an overlapping player's mask.

The models' noise (misreads, missed and false detections, id switches) belongs to the
replay doubles (:mod:`hoopray.testing.replay`).

Every frame carries a stamp in its top-left corner: black and white blocks that encode
``(clip_key, frame_index)`` and survive H.264 (:func:`read_stamp`). The replay doubles in
:mod:`hoopray.testing.replay` use it to find the labels of the frame they are shown.
"""

from __future__ import annotations

import hashlib
import math
import os
import uuid
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from pycocotools import mask as coco_mask

from hoopray.types import LABELS
from hoopray.video import H264Writer

Rgb = tuple[int, int, int]

# --------------------------------------------------------------------------- palette

_CROWD: Rgb = (44, 42, 46)
_WOOD: Rgb = (200, 152, 100)
_WOOD_DARK: Rgb = (186, 138, 88)
_PAINT: Rgb = (160, 108, 64)
_LINE: Rgb = (242, 240, 232)
_BACKBOARD: Rgb = (236, 236, 236)
_RIM: Rgb = (235, 84, 24)
_BALL: Rgb = (226, 112, 32)
_SEAM: Rgb = (40, 24, 16)
_REF_SHIRT: Rgb = (172, 172, 172)
_REF_STRIPE: Rgb = (24, 24, 24)
_TROUSERS: Rgb = (28, 28, 30)
_SHOES: Rgb = (34, 34, 34)
_HAIR: Rgb = (44, 32, 26)
_SKIN_TONES: tuple[Rgb, ...] = (
    (241, 194, 150),
    (224, 172, 105),
    (198, 134, 66),
    (160, 104, 56),
    (141, 85, 36),
    (100, 62, 34),
)

_PREFIXES = ("Harbor", "Ridge", "Valley", "Lake", "Summit", "River", "Prairie", "Coast")
_MASCOTS = ("Herons", "Foxes", "Otters", "Hawks", "Wolves", "Bears", "Owls", "Comets")
_FIRST = ("Alex", "Sam", "Jordan", "Chris", "Jamal", "Luka", "Nikola", "Tyrese", "Darius")
_FIRST += ("Marcus", "Andre", "Kevin", "Isaiah", "Malik", "Devin", "Jalen", "Miles", "Omar")
_LAST = ("Reed", "Okafor", "Silva", "Novak", "Brooks", "Hale", "Mensah", "Ortiz", "Vance")
_LAST += ("Keller", "Duarte", "Ibarra", "Lindqvist", "Moreau", "Petrov", "Quinn", "Sato")

# --------------------------------------------------------------------------- stamp

_STAMP_COLS = 24
_STAMP_ROWS = 3
_GUARD = (1, 0, 1, 1)
_KEY_BITS = 32
_INDEX_BITS = 20
_CHECK_BITS = 16
MAX_FRAME_INDEX = (1 << _INDEX_BITS) - 1


def clip_key(game_id: str, clip_id: str) -> int:
    """A 32-bit key naming a clip in frame stamps (blake2b of ``game_id/clip_id``)."""
    digest = hashlib.blake2b(f"{game_id}/{clip_id}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big")


def _stamp_block(height: int) -> int:
    return max(6, height // 72)


def stamp_size(height: int) -> tuple[int, int]:
    """(width, height) in pixels of the stamp, black border included, at frame ``height``."""
    block = _stamp_block(height)
    return (_STAMP_COLS + 2) * block, (_STAMP_ROWS + 2) * block


def _to_bits(value: int, count: int) -> list[int]:
    return [(value >> (count - 1 - i)) & 1 for i in range(count)]


def _from_bits(bits: np.ndarray) -> int:
    value = 0
    for bit in bits:
        value = (value << 1) | int(bit)
    return value


def _check(key: int, index: int) -> int:
    payload = key.to_bytes(4, "big") + index.to_bytes(4, "big")
    return zlib.crc32(payload) & ((1 << _CHECK_BITS) - 1)


def stamp_bits(key: int, index: int) -> np.ndarray:
    """The 72 cell values (row-major) of the stamp for ``(key, index)``."""
    if not 0 <= key < 1 << _KEY_BITS:
        raise ValueError(f"clip key {key} does not fit in {_KEY_BITS} bits")
    if not 0 <= index <= MAX_FRAME_INDEX:
        raise ValueError(f"frame index {index} is outside 0..{MAX_FRAME_INDEX}")
    bits = [
        *_GUARD,
        *_to_bits(key, _KEY_BITS),
        *_to_bits(index, _INDEX_BITS),
        *_to_bits(_check(key, index), _CHECK_BITS),
    ]
    return np.asarray(bits, dtype=np.uint8)


def draw_stamp(frame: np.ndarray, key: int, index: int) -> None:
    """Draw the stamp of ``(key, index)`` into the top-left corner of ``frame`` in place."""
    block = _stamp_block(frame.shape[0])
    width, height = stamp_size(frame.shape[0])
    if frame.shape[1] < width:
        raise ValueError(f"frame width {frame.shape[1]} is too small for a {width} px stamp")
    frame[:height, :width] = 0
    cells = stamp_bits(key, index).reshape(_STAMP_ROWS, _STAMP_COLS) * 255
    big = np.kron(cells, np.ones((block, block), dtype=np.uint8))
    frame[block : block * (_STAMP_ROWS + 1), block : block * (_STAMP_COLS + 1)] = big[..., None]


def read_stamp(frame: np.ndarray) -> tuple[int, int] | None:
    """Decode a frame's stamp to ``(clip_key, frame_index)``; None when there is none.

    Works on RGB frames at the resolution they were drawn at, after lossy coding: each
    cell is read from the mean of its central pixels. The guard bits, the black border and
    a 16-bit check make a false read on a frame without a stamp very unlikely.
    """
    if frame.ndim != 3 or frame.shape[2] != 3:
        return None
    block = _stamp_block(frame.shape[0])
    width, height = stamp_size(frame.shape[0])
    if frame.shape[0] < height or frame.shape[1] < width:
        return None
    grey = frame[:height, :width].astype(np.float32).mean(axis=2)
    cells = grey.reshape(_STAMP_ROWS + 2, block, _STAMP_COLS + 2, block)
    lo, hi = block // 4, block - block // 4
    means = cells[:, lo:hi, :, lo:hi].mean(axis=(1, 3))
    border = np.concatenate([means[0], means[-1], means[1:-1, 0], means[1:-1, -1]])
    if border.max() > 96:
        return None
    bits = (means[1:-1, 1:-1] > 128).astype(np.uint8).ravel()
    if tuple(bits[:4]) != _GUARD:
        return None
    key = _from_bits(bits[4 : 4 + _KEY_BITS])
    index = _from_bits(bits[4 + _KEY_BITS : 4 + _KEY_BITS + _INDEX_BITS])
    check = _from_bits(bits[4 + _KEY_BITS + _INDEX_BITS :])
    if check != _check(key, index):
        return None
    return key, index


# --------------------------------------------------------------------------- specs


def hex_to_rgb(colour: str) -> Rgb:
    """``"#1d428a"`` -> ``(29, 66, 138)``."""
    text = colour.lstrip("#")
    if len(text) != 6:
        raise ValueError(f"colour must be #rrggbb, got {colour!r}")
    return int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16)


DIFFICULTIES = ("easy", "realistic", "hard")

DEFAULT_COLOURS = ("#1d428a", "#ce1141")
SIMILAR_COLOURS: tuple[tuple[str, str], ...] = (
    ("#f2f2f2", "#cdd0d4"),  # white against light grey
    ("#1f2a48", "#161616"),  # navy against black
)


@dataclass(frozen=True)
class WorldNoise:
    """The world's noise knobs (see the module docstring); :data:`WORLD_PRESETS` by
    difficulty. Deterministic under the game's seed."""

    similar_colours: float = 0.0
    hidden_players: int = 0
    hidden_share: float = 0.0
    number_overlap: float = 0.0

    def __post_init__(self) -> None:
        for name in ("similar_colours", "hidden_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if not 0.0 <= self.number_overlap < 1.0:
            raise ValueError(f"number_overlap must be in [0, 1), got {self.number_overlap}")
        if self.hidden_players < 0:
            raise ValueError(f"hidden_players must be >= 0, got {self.hidden_players}")


WORLD_PRESETS: dict[str, WorldNoise] = {
    "easy": WorldNoise(),
    "realistic": WorldNoise(
        similar_colours=0.5, hidden_players=1, hidden_share=0.4, number_overlap=0.3
    ),
    "hard": WorldNoise(
        similar_colours=1.0, hidden_players=2, hidden_share=0.5, number_overlap=0.45
    ),
}


def world_noise(difficulty: str = "easy", **overrides: float | int | None) -> WorldNoise:
    """The preset of ``difficulty`` with the knobs given (not None) replaced.

    Raises:
        ValueError: an unknown difficulty or knob, or a knob out of range.
    """
    if difficulty not in WORLD_PRESETS:
        raise ValueError(f"difficulty must be one of {DIFFICULTIES}, got {difficulty!r}")
    known = {f.name for f in fields(WorldNoise)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"unknown world knobs {unknown}; known: {sorted(known)}")
    given = {k: v for k, v in overrides.items() if v is not None}
    return replace(WORLD_PRESETS[difficulty], **given)


@dataclass(frozen=True)
class TeamSpec:
    """A team on court: its roster name, jersey colour ``#rrggbb`` and on-court numbers."""

    name: str
    colour: str
    numbers: tuple[str, ...]

    def object_id(self, number: str) -> str:
        return f"{self.name}#{number}"


@dataclass(frozen=True)
class ClipSpec:
    """Everything that decides a synthetic clip; equal specs give identical frames.

    Attributes:
        game_id, clip_id: name the clip (and its stamp key).
        seed: seeds motion, turning, skin tones and passes.
        frames, fps, width, height: the video.
        teams: the two teams (players on court only).
        referees: how many referees.
        enter_frames: object id -> frame at which the player starts walking in from the
            side; absent before it.
        leave_frames: object id -> frame at which the player starts walking out; absent
            for good once off screen.
        empty_frames: the first frames show no player, referee or ball.
        ball: whether a ball is in play (it needs at least one player).
        hidden: object id -> (opponent's object id, first frame, end frame): the player
            stands right behind that opponent over ``[first, end)`` (stepping in and out
            over 0.4 s at either end).
        number_overlap: a number is labelled visible while at most this share of its box
            is covered by someone nearer (0: only wholly uncovered numbers).
    """

    game_id: str
    clip_id: str
    seed: int
    frames: int
    fps: float
    width: int
    height: int
    teams: tuple[TeamSpec, TeamSpec]
    referees: int = 2
    enter_frames: Mapping[str, int] = field(default_factory=dict)
    leave_frames: Mapping[str, int] = field(default_factory=dict)
    empty_frames: int = 0
    ball: bool = True
    hidden: Mapping[str, tuple[str, int, int]] = field(default_factory=dict)
    number_overlap: float = 0.0

    @property
    def key(self) -> int:
        return clip_key(self.game_id, self.clip_id)


@dataclass
class SyntheticGame:
    """What :func:`make_game` wrote.

    Attributes:
        on_court: object ids (``"<team>#<number>"``) of the players in every clip.
    """

    game_id: str
    directory: Path
    clip_ids: list[str]
    clips: list[Path]
    labels: list[Path]
    roster_path: Path
    roster: dict[str, Any]
    on_court: list[str]
    specs: list[ClipSpec]


# --------------------------------------------------------------------------- scene


@dataclass
class _Actor:
    """A person on court; positions and facing are functions of time."""

    object_id: str
    role: str  # player | referee
    team: str | None
    number: str | None
    shirt: Rgb
    skin: Rgb
    centre: tuple[float, float]
    amplitude: np.ndarray  # (2, 3) px
    frequency: np.ndarray  # (2, 3) Hz
    phase: np.ndarray  # (2, 3) rad
    turn_phase: float
    turn_period: float  # seconds per full turn, signed
    enter: int | None = None
    leave: int | None = None
    hide: tuple[int, int, int, float, float] | None = None  # target, start, end, dx, dy


@dataclass(frozen=True)
class _Court:
    """Pre-rendered background and the fixed geometry of the view."""

    background: np.ndarray  # (H, W, 3) uint8, read-only
    base_labels: np.ndarray  # (H, W) uint8: the rim as label 1
    rim_box: tuple[int, int, int, int]
    x_range: tuple[float, float]
    y_range: tuple[float, float]
    unit: float


_RIM_LABEL = 1
_WALK_SECONDS = 1.0


@lru_cache(maxsize=4)
def _court(width: int, height: int) -> _Court:
    unit = height / 720.0
    image = np.empty((height, width, 3), dtype=np.uint8)
    image[:] = _CROWD
    rng = np.random.default_rng(12345)
    far_y = int(0.30 * height)
    noise = rng.integers(-14, 15, size=(far_y // 4 + 1, width // 4 + 1), dtype=np.int16)
    noise = np.kron(noise, np.ones((4, 4), dtype=np.int16))[:far_y, :width]
    image[:far_y] = np.clip(image[:far_y].astype(np.int16) + noise[..., None], 0, 255)
    court = np.array(
        [
            [0.10 * width, far_y],
            [0.90 * width, far_y],
            [1.15 * width, height],
            [-0.15 * width, height],
        ],
        dtype=np.int32,
    )
    wood = np.empty_like(image)
    wood[:] = _WOOD
    for i in range(1, 24):
        y = far_y + int((height - far_y) * (i / 24) ** 1.3)
        cv2.line(wood, (0, y), (width, y), _WOOD_DARK, max(1, round(unit)))
    floor = np.zeros((height, width), dtype=np.uint8)
    cv2.fillPoly(floor, [court], 1)
    image[floor > 0] = wood[floor > 0]
    thick = max(2, round(4 * unit))
    cv2.polylines(image, [court], True, _LINE, thick, cv2.LINE_AA)
    key = np.array(
        [
            [0.40 * width, far_y],
            [0.60 * width, far_y],
            [0.63 * width, 0.52 * height],
            [0.37 * width, 0.52 * height],
        ],
        dtype=np.int32,
    )
    cv2.fillPoly(image, [key], _PAINT)
    cv2.polylines(image, [key], True, _LINE, thick, cv2.LINE_AA)
    centre = (width // 2, int(0.52 * height))
    axes = (int(0.13 * width), int(0.06 * height))
    cv2.ellipse(image, centre, axes, 0, 0, 180, _LINE, thick, cv2.LINE_AA)
    arc_axes = (int(0.36 * width), int(0.42 * height))
    cv2.ellipse(image, (width // 2, far_y), arc_axes, 0, 0, 180, _LINE, thick, cv2.LINE_AA)

    labels = np.zeros((height, width), dtype=np.uint8)
    board = (
        int(0.43 * width),
        int(0.07 * height),
        int(0.57 * width),
        int(0.20 * height),
    )
    cv2.rectangle(image, board[:2], board[2:], _BACKBOARD, -1)
    cv2.rectangle(image, board[:2], board[2:], _REF_STRIPE, max(1, round(3 * unit)))
    inner = (
        int(0.475 * width),
        int(0.12 * height),
        int(0.525 * width),
        int(0.19 * height),
    )
    cv2.rectangle(image, inner[:2], inner[2:], _RIM, max(1, round(2 * unit)))
    rim_centre = (width // 2, int(0.215 * height))
    rim_axes = (max(4, int(0.028 * width)), max(2, int(0.012 * height)))
    rim_thick = max(2, round(5 * unit))
    for t in range(6):
        x = rim_centre[0] - rim_axes[0] + t * (2 * rim_axes[0]) // 5
        bottom = (rim_centre[0] + (x - rim_centre[0]) // 2, rim_centre[1] + int(0.06 * height))
        cv2.line(image, (x, rim_centre[1]), bottom, _LINE, max(1, round(unit)))
    cv2.ellipse(image, rim_centre, rim_axes, 0, 0, 360, _RIM, rim_thick)
    cv2.ellipse(labels, rim_centre, rim_axes, 0, 0, 360, _RIM_LABEL, rim_thick)
    ys, xs = np.nonzero(labels)
    rim_box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    image.flags.writeable = False
    labels.flags.writeable = False
    return _Court(
        background=image,
        base_labels=labels,
        rim_box=rim_box,
        x_range=(0.06 * width, 0.94 * width),
        y_range=(0.45 * height, 0.97 * height),
        unit=unit,
    )


def _player_scale(court: _Court, foot_y: float) -> float:
    """Pixels per body unit at a foot position: nearer (lower) players are bigger."""
    y0, y1 = court.y_range
    depth = min(max((foot_y - y0) / (y1 - y0), 0.0), 1.0)
    return court.unit * (0.88 + 0.37 * depth)


def _make_actors(spec: ClipSpec, court: _Court, rng: np.random.Generator) -> list[_Actor]:
    people: list[tuple[str, str, str | None, str | None, Rgb]] = []
    for team in spec.teams:
        shirt = hex_to_rgb(team.colour)
        for number in team.numbers:
            people.append((team.object_id(number), "player", team.name, number, shirt))
    for i in range(spec.referees):
        people.append((f"ref-{i + 1}", "referee", None, None, _REF_SHIRT))
    known = {p[0] for p in people}
    for option, frames in (
        ("enter_frames", spec.enter_frames),
        ("leave_frames", spec.leave_frames),
    ):
        unknown = sorted(set(frames) - known)
        if unknown:
            raise ValueError(f"{option}: unknown object ids {unknown}; known: {sorted(known)}")
    for hider, (target, _, _) in spec.hidden.items():
        if hider not in known or target not in known or hider == target:
            raise ValueError(f"hidden: {hider!r} behind {target!r}; known: {sorted(known)}")
        if target in spec.hidden:
            raise ValueError(f"hidden: {target!r} hides itself, so nobody can hide behind it")
    (x0, x1), (y0, y1) = court.x_range, court.y_range
    actors = []
    # Each person roams around a home slot on a staggered grid of a far and a near row,
    # so people cross their neighbours now and then rather than piling up.
    rows = 2 if len(people) > 4 else 1
    columns = max(1, math.ceil(len(people) / rows))
    slot_width = (x1 - x0) / columns
    row_y = [y0 + 0.2 * (y1 - y0), y1 - 0.15 * (y1 - y0)] if rows == 2 else [(y0 + y1) / 2]
    slots = rng.permutation(rows * columns)[: len(people)]
    for slot, (object_id, role, team, number, shirt) in zip(slots, people, strict=True):
        row, column = divmod(int(slot), columns)
        stagger = 0.25 if row == 0 else 0.75
        centre = (
            float(x0 + (column + stagger) * slot_width),
            float(row_y[row] + rng.uniform(-0.05, 0.05) * (y1 - y0)),
        )
        reach = np.array([0.8 * slot_width, 0.18 * (y1 - y0)])
        amplitude = rng.dirichlet(np.ones(3), size=2) * reach[:, None]
        period = rng.uniform(1.2, 2.8) * rng.choice([-1.0, 1.0])
        actors.append(
            _Actor(
                object_id=object_id,
                role=role,
                team=team,
                number=number,
                shirt=shirt,
                skin=_SKIN_TONES[int(rng.integers(len(_SKIN_TONES)))],
                centre=centre,
                amplitude=amplitude,
                frequency=rng.uniform(0.04, 0.16, size=(2, 3)),
                phase=rng.uniform(0, 2 * math.pi, size=(2, 3)),
                turn_phase=float(rng.uniform(0, 2 * math.pi)),
                turn_period=float(period),
                enter=spec.enter_frames.get(object_id),
                leave=spec.leave_frames.get(object_id),
            )
        )
    if spec.hidden:  # a separate stream: the rest of the scene is the same without it
        order = {a.object_id: i for i, a in enumerate(actors)}
        hide_rng = np.random.default_rng([spec.seed, 0x41DE])
        for hider in sorted(spec.hidden):
            target, start, end = spec.hidden[hider]
            dx = float(hide_rng.uniform(20.0, 30.0) * hide_rng.choice([-1.0, 1.0]))
            dy = float(hide_rng.uniform(12.0, 20.0))
            actors[order[hider]].hide = (order[target], int(start), int(end), dx, dy)
    return actors


def _walk(actor: _Actor, court: _Court, seconds: float) -> tuple[float, float]:
    waves = actor.amplitude * np.sin(2 * math.pi * actor.frequency * seconds + actor.phase)
    x = min(max(actor.centre[0] + float(waves[0].sum()), court.x_range[0]), court.x_range[1])
    y = min(max(actor.centre[1] + float(waves[1].sum()), court.y_range[0]), court.y_range[1])
    return x, y


def _position(
    actor: _Actor, court: _Court, frame: int, fps: float, width: int
) -> tuple[float, float] | None:
    """Foot position at ``frame``, or None when the actor is not in the scene."""
    walk = max(1, round(_WALK_SECONDS * fps))
    if actor.enter is not None and frame < actor.enter:
        return None
    if actor.leave is not None and frame >= actor.leave + walk:
        return None
    off_left, off_right = -0.12 * width, 1.12 * width
    if actor.enter is not None and frame < actor.enter + walk:
        tx, ty = _walk(actor, court, (actor.enter + walk) / fps)
        side = off_left if tx < width / 2 else off_right
        share = (frame - actor.enter) / walk
        return side + (tx - side) * share, ty
    if actor.leave is not None and frame >= actor.leave:
        sx, sy = _walk(actor, court, actor.leave / fps)
        side = off_left if sx < width / 2 else off_right
        share = (frame - actor.leave) / walk
        return sx + (side - sx) * share, sy
    return _walk(actor, court, frame / fps)


def _scene_position(
    actors: list[_Actor], index: int, court: _Court, frame: int, fps: float, width: int
) -> tuple[float, float] | None:
    """:func:`_position`, moved right behind the opponent an actor hides behind."""
    actor = actors[index]
    pos = _position(actor, court, frame, fps, width)
    if actor.hide is None or pos is None:
        return pos
    target, start, end, dx, dy = actor.hide
    ramp = max(1, round(0.4 * fps))
    share = min(max((frame - start) / ramp, 0.0), 1.0) * min(max((end - frame) / ramp, 0.0), 1.0)
    goal = _position(actors[target], court, frame, fps, width)
    if share <= 0.0 or goal is None:
        return pos
    k = _player_scale(court, goal[1])
    behind = (goal[0] + dx * k, goal[1] - dy * k)
    return pos[0] + (behind[0] - pos[0]) * share, pos[1] + (behind[1] - pos[1]) * share


def _settled(actor: _Actor, frame: int, fps: float) -> bool:
    """In the scene and not walking in or out at ``frame``."""
    walk = max(1, round(_WALK_SECONDS * fps))
    if actor.enter is not None and frame < actor.enter + walk:
        return False
    return actor.leave is None or frame < actor.leave


def _facing(actor: _Actor, frame: int, fps: float) -> float:
    """cos of the angle between the player's chest and the camera: 1 front, -1 back."""
    return math.cos(actor.turn_phase + 2 * math.pi * frame / (fps * actor.turn_period))


@dataclass(frozen=True)
class _Hold:
    start: int
    end: int  # exclusive; the ball flies to the next holder in the last frames
    holder: int
    receiver: int | None


def _ball_schedule(spec: ClipSpec, actors: list[_Actor], rng: np.random.Generator) -> list[_Hold]:
    players = [i for i, a in enumerate(actors) if a.role == "player"]
    if not spec.ball or not players:
        return []
    schedule: list[_Hold] = []
    start = spec.empty_frames
    holder: int | None = None
    while start < spec.frames:
        end = start + round(rng.uniform(1.0, 2.0) * spec.fps)
        ready = [i for i in players if _settled(actors[i], start, spec.fps)]
        ready = [i for i in ready if _settled(actors[i], min(end, spec.frames - 1), spec.fps)]
        if holder is None or holder not in ready:
            holder = int(rng.choice(ready)) if ready else None
        if holder is None:
            start = end
            continue
        others = [i for i in ready if i != holder]
        receiver = int(rng.choice(others)) if others else None
        schedule.append(_Hold(start, end, holder, receiver))
        holder = receiver if receiver is not None else holder
        start = end
    return schedule


# --------------------------------------------------------------------------- drawing


class _Painter:
    """Draws a shape into the frame and, with the object's label, into the label map."""

    def __init__(self, image: np.ndarray, labels: np.ndarray) -> None:
        self.image = image
        self.labels = labels
        self.height, self.width = labels.shape

    def rect(
        self, box: tuple[float, float, float, float], colour: Rgb, label: int | None
    ) -> tuple[int, int, int, int] | None:
        x1 = min(max(round(box[0]), 0), self.width)
        y1 = min(max(round(box[1]), 0), self.height)
        x2 = min(max(round(box[2]), 0), self.width)
        y2 = min(max(round(box[3]), 0), self.height)
        if x2 <= x1 or y2 <= y1:
            return None
        self.image[y1:y2, x1:x2] = colour
        if label is not None:
            self.labels[y1:y2, x1:x2] = label
        return x1, y1, x2, y2

    def circle(self, centre: tuple[float, float], radius: float, colour: Rgb, label: int) -> None:
        c = (round(centre[0]), round(centre[1]))
        r = max(1, round(radius))
        cv2.circle(self.image, c, r, colour, -1, cv2.LINE_8)
        cv2.circle(self.labels, c, r, label, -1, cv2.LINE_8)


@lru_cache(maxsize=64)
def _reference_glyph(text: str) -> np.ndarray:
    """Ink of ``text`` drawn large (about 120 px tall), cropped to its tight box."""
    font = cv2.FONT_HERSHEY_SIMPLEX
    scale, thickness = 4.0, 14
    (w, h), base = cv2.getTextSize(text, font, scale, thickness)
    pad = thickness + 4
    canvas = np.zeros((h + base + 2 * pad, w + 2 * pad), dtype=np.uint8)
    cv2.putText(canvas, text, (pad, pad + h), font, scale, 255, thickness, cv2.LINE_8)
    ys, xs = np.nonzero(canvas)
    return canvas[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]


@lru_cache(maxsize=4096)
def _glyph(text: str, height: int, max_width: int) -> np.ndarray:
    """Boolean ink of ``text`` exactly ``height`` px tall and at most ``max_width`` wide."""
    ink = _reference_glyph(text)
    width = min(max_width, max(1, round(ink.shape[1] * height / ink.shape[0])))
    small = cv2.resize(ink, (width, height), interpolation=cv2.INTER_AREA) >= 128
    small.flags.writeable = False
    return small


def _number_colour(shirt: Rgb) -> Rgb:
    luminance = 0.299 * shirt[0] + 0.587 * shirt[1] + 0.114 * shirt[2]
    return (24, 24, 40) if luminance > 150 else (250, 250, 250)


def _union(boxes: list[tuple[int, int, int, int] | None]) -> tuple[int, int, int, int] | None:
    real = [b for b in boxes if b is not None]
    if not real:
        return None
    return (
        min(b[0] for b in real),
        min(b[1] for b in real),
        max(b[2] for b in real),
        max(b[3] for b in real),
    )


def _draw_person(
    painter: _Painter,
    actor: _Actor,
    foot: tuple[float, float],
    k: float,
    facing: float,
    label: int,
) -> tuple[tuple[int, int, int, int] | None, tuple[int, int, int, int] | None]:
    """Draw one person; return (drawn extent, number box or None)."""
    fx, fy = foot
    w = 0.55 + 0.45 * abs(facing)
    referee = actor.role == "referee"
    drawn: list[tuple[int, int, int, int] | None] = []
    leg_in, leg_out = 4 * k * w, 24 * k * w
    leg_colour = _TROUSERS if referee else actor.skin
    top_leg = fy - (130 if referee else 85) * k
    for sign in (-1, 1):
        xa, xb = sorted((fx + sign * leg_in, fx + sign * leg_out))
        drawn.append(painter.rect((xa, top_leg, xb, fy), leg_colour, label))
        drawn.append(painter.rect((xa - 3 * k, fy - 10 * k, xb + 3 * k, fy), _SHOES, label))
    shorts = _TROUSERS if referee else actor.shirt
    drawn.append(
        painter.rect((fx - 44 * k * w, fy - 130 * k, fx + 44 * k * w, fy - 80 * k), shorts, label)
    )
    torso = (fx - 46 * k * w, fy - 232 * k, fx + 46 * k * w, fy - 128 * k)
    for sign in (-1, 1):
        edge = torso[2] if sign > 0 else torso[0]
        xa, xb = sorted((edge, edge + sign * 17 * k))
        drawn.append(painter.rect((xa, fy - 228 * k, xb, fy - 140 * k), actor.skin, label))
    torso_px = painter.rect(torso, actor.shirt, label)
    drawn.append(torso_px)
    if referee and torso_px is not None:
        x1, y1, x2, y2 = torso_px
        step = max(2, round(12 * k))
        for x in range(x1 + step // 2, x2, step):
            painter.image[y1:y2, x : min(x + step // 2, x2)] = _REF_STRIPE
    drawn.append(
        painter.rect((fx - 8 * k, fy - 248 * k, fx + 8 * k, fy - 230 * k), actor.skin, label)
    )
    head = (fx, fy - 264 * k)
    radius = 19 * k
    painter.circle(head, radius, _HAIR if facing < -0.5 else actor.skin, label)
    if facing >= -0.5:
        cv2.ellipse(
            painter.image,
            (round(head[0]), round(head[1])),
            (max(1, round(radius)), max(1, round(radius * 0.55))),
            0,
            180,
            360,
            _HAIR,
            -1,
            cv2.LINE_8,
        )
    drawn.append(
        (
            max(0, round(head[0] - radius)),
            max(0, round(head[1] - radius)),
            min(painter.width, round(head[0] + radius) + 1),
            min(painter.height, round(head[1] + radius) + 1),
        )
    )
    number_box = None
    if actor.number is not None and facing >= 0.5 and torso_px is not None:
        ink = _glyph(actor.number, max(6, round(46 * k)), max(4, round(0.8 * 92 * k * w)))
        gh, gw = ink.shape
        x1 = round(fx - gw / 2)
        y1 = round(fy - 180 * k - gh / 2)
        x2, y2 = x1 + gw, y1 + gh
        if x1 >= 0 and y1 >= 0 and x2 <= painter.width and y2 <= painter.height:
            painter.image[y1:y2, x1:x2][ink] = _number_colour(actor.shirt)
            number_box = (x1, y1, x2, y2)
    extent = _union(drawn)
    if extent is not None and (extent[2] <= extent[0] or extent[3] <= extent[1]):
        extent = None
    return extent, number_box


def _crop_rle(sub: np.ndarray, top: int, left: int, height: int, width: int) -> str:
    """COCO compressed RLE of a full-frame mask that is zero outside ``sub``'s window.

    Equals :func:`hoopray.masks.rle_encode` of the full mask but only scans the window:
    each window column, padded with a zero above and below, is laid out in the frame's
    column-major order, so a change at padded position ``(c, q)`` is a change at frame
    index ``(left + c) * height + top + q - 1``.
    """
    rows, cols = sub.shape
    padded = np.zeros((cols, rows + 2), dtype=bool)
    padded[:, 1:-1] = sub.T
    flat = padded.ravel()
    at = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    column, row = np.divmod(at, rows + 2)
    changes = (left + column) * height + top + row - 1
    if rows == height:  # a run that crosses a column boundary is split in two: join it
        tied = np.flatnonzero(np.diff(changes) == 0)
        changes = np.delete(changes, np.concatenate([tied, tied + 1]))
    counts = np.diff(np.concatenate([[0], changes, [height * width]])).tolist()
    if len(counts) > 1 and counts[-1] == 0:
        counts.pop()
    rle = coco_mask.frPyObjects({"counts": counts, "size": [height, width]}, height, width)
    return rle["counts"].decode("ascii")


def _visible(
    labels: np.ndarray, label: int, extent: tuple[int, int, int, int]
) -> tuple[tuple[int, int, int, int], str] | None:
    """Box (exclusive ends) and RLE of the pixels of ``label`` within ``extent``."""
    x1, y1, x2, y2 = extent
    sub = labels[y1:y2, x1:x2] == label
    rows = np.flatnonzero(sub.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(sub.any(axis=0))
    r0, r1, c0, c1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    box = (x1 + c0, y1 + r0, x1 + c1, y1 + r1)
    height, width = labels.shape
    return box, _crop_rle(sub[r0:r1, c0:c1], y1 + r0, x1 + c0, height, width)


def _row(
    frame: int,
    object_id: str,
    role: str,
    box: tuple[int, int, int, int],
    rle: str,
    team: str | None = None,
    number: str | None = None,
    number_box: tuple[int, int, int, int] | None = None,
) -> dict[str, Any]:
    player = role == "player"
    return {
        "frame": frame,
        "object_id": object_id,
        "role": role,
        "team": team,
        "number": number,
        "x1": float(box[0]),
        "y1": float(box[1]),
        "x2": float(box[2]),
        "y2": float(box[3]),
        "number_visible": (number_box is not None) if player else None,
        "nx1": None if number_box is None else float(number_box[0]),
        "ny1": None if number_box is None else float(number_box[1]),
        "nx2": None if number_box is None else float(number_box[2]),
        "ny2": None if number_box is None else float(number_box[3]),
        "mask_rle": rle,
    }


def _ball_position(
    schedule: list[_Hold],
    actors: list[_Actor],
    court: _Court,
    spec: ClipSpec,
    frame: int,
) -> tuple[tuple[float, float], float, float] | None:
    """(centre, radius, depth) of the ball at ``frame``, or None when out of play."""
    hold = next((h for h in schedule if h.start <= frame < h.end), None)
    if hold is None:
        return None

    def hand(index: int, at: int) -> tuple[float, float, float, float]:
        pos = _scene_position(actors, index, court, at, spec.fps, spec.width)
        assert pos is not None
        k = _player_scale(court, pos[1])
        return pos[0] + 62 * k, pos[1] - 120 * k, pos[1], k

    flight = max(1, round(0.4 * spec.fps))
    fly_from = hold.end - flight
    if hold.receiver is not None and frame >= fly_from:
        ax, ay, adepth, ak = hand(hold.holder, fly_from)
        bx, by, bdepth, bk = hand(hold.receiver, hold.end)
        share = (frame - fly_from) / flight
        lift = 80 * court.unit * math.sin(math.pi * share)
        centre = (ax + (bx - ax) * share, ay + (by - ay) * share - lift)
        k = ak + (bk - ak) * share
        depth = adepth + (bdepth - adepth) * share + 0.5
        return centre, 13 * k, depth
    hx, hy, depth, k = hand(hold.holder, frame)
    bounce = abs(math.cos(math.pi * frame / (0.5 * spec.fps)))
    floor = depth - 14 * k
    return (hx, floor - (floor - hy) * bounce), 13 * k, depth + 0.5


def iter_clip(spec: ClipSpec) -> Iterator[tuple[int, np.ndarray, list[dict[str, Any]]]]:
    """Render a clip frame by frame with its ground truth, without encoding.

    Yields ``(frame_index, rgb, rows)``: the stamped RGB uint8 frame (a fresh array each
    time) and its label rows, dicts with the columns of :data:`hoopray.types.LABELS`.
    Only objects with visible pixels get a row. A player's ``number_visible`` is True
    when the player faces the camera and the whole number box is unoccluded and inside
    the frame (or, with ``spec.number_overlap``, when at most that share of the box is
    covered). Memory stays flat whatever the clip's length.
    """
    width, height = spec.width, spec.height
    stamp_w, stamp_h = stamp_size(height)
    if width < max(160, stamp_w + 8) or height < 120:
        raise ValueError(f"frame size {width}x{height} is too small (at least 160x120)")
    court = _court(width, height)
    rng = np.random.default_rng(spec.seed)
    actors = _make_actors(spec, court, rng)
    schedule = _ball_schedule(spec, actors, rng)
    key = spec.key
    ball_label = 2 + len(actors)
    if ball_label > 255:
        raise ValueError(f"too many people in a clip ({len(actors)})")
    for frame in range(spec.frames):
        image = court.background.copy()
        labels = court.base_labels.copy()
        painter = _Painter(image, labels)
        items: list[tuple[float, int]] = []
        feet: dict[int, tuple[float, float]] = {}
        if frame >= spec.empty_frames:
            for i in range(len(actors)):
                pos = _scene_position(actors, i, court, frame, spec.fps, width)
                if pos is not None:
                    feet[i] = pos
                    items.append((pos[1], i))
        ball = _ball_position(schedule, actors, court, spec, frame)
        if ball is not None:
            items.append((ball[2], -1))
        extents: dict[int, tuple[int, int, int, int] | None] = {}
        number_boxes: dict[int, tuple[int, int, int, int] | None] = {}
        for _, i in sorted(items):
            if i < 0:
                assert ball is not None
                (bx, by), radius, _ = ball
                painter.circle((bx, by), radius, _BALL, ball_label)
                cv2.line(
                    image,
                    (round(bx - radius), round(by)),
                    (round(bx + radius), round(by)),
                    _SEAM,
                    1,
                )
                r = round(radius) + 1
                extents[-1] = (
                    max(0, round(bx) - r),
                    max(0, round(by) - r),
                    min(width, round(bx) + r + 1),
                    min(height, round(by) + r + 1),
                )
                continue
            actor = actors[i]
            foot = feet[i]
            k = _player_scale(court, foot[1])
            extents[i], number_boxes[i] = _draw_person(
                painter, actor, foot, k, _facing(actor, frame, spec.fps), 2 + i
            )
        draw_stamp(image, key, frame)
        labels[:stamp_h, :stamp_w] = 0

        rows: list[dict[str, Any]] = []
        rim = _visible(labels, _RIM_LABEL, court.rim_box)
        if rim is not None:
            rows.append(_row(frame, "rim", "rim", *rim))
        for i, actor in enumerate(actors):
            extent = extents.get(i)
            if extent is None:
                continue
            seen = _visible(labels, 2 + i, extent)
            if seen is None:
                continue
            number_box = number_boxes.get(i)
            if number_box is not None:
                x1, y1, x2, y2 = number_box
                own = labels[y1:y2, x1:x2] == 2 + i
                partly = spec.number_overlap > 0 and own.mean() >= 1.0 - spec.number_overlap
                if not (own.all() or partly):
                    number_box = None
            rows.append(
                _row(
                    frame, actor.object_id, actor.role, *seen, actor.team, actor.number, number_box
                )
            )
        if -1 in extents and extents[-1] is not None:
            seen = _visible(labels, ball_label, extents[-1])
            if seen is not None:
                rows.append(_row(frame, "ball", "ball", *seen))
        yield frame, image, rows


def write_clip(spec: ClipSpec, video_path: Path, labels_path: Path, crf: int = 23) -> int:
    """Render ``spec`` straight into an H.264 file and a label Parquet file.

    Frames stream from :func:`iter_clip` into the writer and labels go out in batches,
    so memory stays flat for long clips. Both files appear atomically. Returns the
    number of label rows.
    """
    video_path.parent.mkdir(parents=True, exist_ok=True)
    labels_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = labels_path.with_name(f".{labels_path.stem}.{uuid.uuid4().hex[:8]}.part.parquet")
    writer = pq.ParquetWriter(tmp, LABELS)
    total = 0
    try:
        batch: list[dict[str, Any]] = []
        with writer, H264Writer(video_path, spec.width, spec.height, spec.fps, crf=crf) as video:
            for frame, image, rows in iter_clip(spec):
                video.write(image)
                batch.extend(rows)
                if frame % 256 == 255:
                    writer.write_table(pa.Table.from_pylist(batch, schema=LABELS))
                    total += len(batch)
                    batch = []
            writer.write_table(pa.Table.from_pylist(batch, schema=LABELS))
            total += len(batch)
        os.replace(tmp, labels_path)
    finally:
        tmp.unlink(missing_ok=True)
    return total


# --------------------------------------------------------------------------- games


def make_roster(
    seed: int, colours: tuple[str, str], players_per_team: int
) -> tuple[dict[str, Any], tuple[TeamSpec, TeamSpec]]:
    """A roster (``roster.yaml`` data) and the two teams on court.

    Each team lists 8-12 numbers (more if ``players_per_team`` asks), unique within the
    team; the first ``players_per_team`` are on court. The first number on court is the
    same for both teams, as real rosters allow.
    """
    rng = np.random.default_rng([seed, 0x5EED])
    prefixes = rng.choice(len(_PREFIXES), size=2, replace=False)
    mascots = rng.choice(len(_MASCOTS), size=2, replace=False)
    names = tuple(f"{_PREFIXES[p]} {_MASCOTS[m]}" for p, m in zip(prefixes, mascots, strict=True))
    pool = ["0", "00", *(str(n) for n in range(1, 100))]
    people = [f"{f} {last}" for f in _FIRST for last in _LAST]
    chosen_people = iter(rng.permutation(people).tolist())
    shared: str | None = None
    teams_data = []
    teams = []
    for name, colour in zip(names, colours, strict=True):
        size = max(int(rng.integers(8, 13)), players_per_team)
        numbers = [str(n) for n in rng.choice(pool, size=size, replace=False)]
        if shared is None:
            shared = numbers[0]
        elif players_per_team > 0:
            if shared in numbers:
                numbers.remove(shared)
            numbers.insert(0, shared)
            numbers = numbers[:size]
        teams_data.append(
            {
                "name": name,
                "colour": colour.lower(),
                "players": {n: next(chosen_people) for n in numbers},
            }
        )
        teams.append(TeamSpec(name, colour.lower(), tuple(numbers[:players_per_team])))
    return {"teams": teams_data}, (teams[0], teams[1])


def _resolve_ids(
    frames: Mapping[str, int] | None, teams: tuple[TeamSpec, TeamSpec]
) -> dict[str, int]:
    """Accept object ids or the short form ``"A-23"`` / ``"B-7"`` (team A or B, number)."""
    out: dict[str, int] = {}
    for name, frame in (frames or {}).items():
        if len(name) > 2 and name[0] in "AB" and name[1] == "-":
            team = teams[0] if name[0] == "A" else teams[1]
            name = team.object_id(name[2:])
        out[name] = int(frame)
    return out


def _pick_colours(seed: int, similar: float) -> tuple[str, str]:
    if similar <= 0.0:
        return DEFAULT_COLOURS
    rng = np.random.default_rng([seed, 0xC0102])
    if rng.random() >= similar:
        return DEFAULT_COLOURS
    pair = SIMILAR_COLOURS[int(rng.integers(len(SIMILAR_COLOURS)))]
    return pair if rng.random() < 0.5 else (pair[1], pair[0])


def _pick_hidden(
    seed: int,
    clip_index: int,
    teams: tuple[TeamSpec, TeamSpec],
    enter: Mapping[str, int],
    leave: Mapping[str, int],
    frames: int,
    noise: WorldNoise,
) -> dict[str, tuple[str, int, int]]:
    """Who hides behind which opponent, and when, in one clip (seeded per clip)."""
    if noise.hidden_players == 0 or noise.hidden_share <= 0.0:
        return {}
    rng = np.random.default_rng([seed, clip_index + 1, 0x41DE])
    moving = set(enter) | set(leave)
    players = [
        (side, t.object_id(n))
        for side, t in enumerate(teams)
        for n in t.numbers
        if t.object_id(n) not in moving
    ]
    chosen: dict[str, tuple[str, int, int]] = {}
    length = max(1, round(noise.hidden_share * frames))
    for pick in rng.permutation(len(players)).tolist():
        if len(chosen) >= noise.hidden_players:
            break
        side, hider = players[pick]
        if hider in {t for t, _, _ in chosen.values()}:
            continue
        taken = set(chosen) | {t for t, _, _ in chosen.values()}
        opponents = [o for s, o in players if s != side and o not in taken]
        if not opponents:
            continue
        target = opponents[int(rng.integers(len(opponents)))]
        start = int(rng.integers(0, max(1, frames - length) + 1))
        chosen[hider] = (target, start, min(frames, start + length))
    return chosen


def make_game(
    games_root: Path,
    labels_root: Path,
    game_id: str = "game-001",
    *,
    seed: int = 0,
    clips: int = 2,
    seconds: float = 4.0,
    fps: float = 30,
    size: tuple[int, int] = (1280, 720),
    colours: tuple[str, str] | None = None,
    players_per_team: int = 5,
    referees: int = 2,
    enter_frames: Mapping[str, int] | None = None,
    leave_frames: Mapping[str, int] | None = None,
    empty_seconds: float = 0.0,
    only_referees: bool = False,
    ball: bool = True,
    crf: int = 23,
    difficulty: str = "easy",
    similar_colours: float | None = None,
    hidden_players: int | None = None,
    hidden_share: float | None = None,
    number_overlap: float | None = None,
) -> SyntheticGame:
    """Write a synthetic game: clips, ``roster.yaml`` and one label table per clip.

    Files: ``games_root/game_id/clip-NN.mp4``, ``games_root/game_id/roster.yaml`` and
    ``labels_root/game_id/clip-NN.parquet``. The same seed gives the same roster, labels
    and (before encoding) frames. Every clip has the same players on court; each clip
    has its own motion.

    Args:
        enter_frames: object id (or ``"A-23"``/``"B-7"``) -> frame at which that player
            walks in from the side, in every clip. None picks one: the last player of the
            second team enters at 30% of each clip (when a team has 2+ players); pass
            ``{}`` for nobody.
        leave_frames: likewise, frames at which players walk out for good.
        empty_seconds: the first seconds of each clip show no player, referee or ball.
        only_referees: clips show referees only (the roster still lists players).
        players_per_team: 0 gives clips without players (and so without a ball).
        colours: the teams' jersey colours; None picks them (blue and red, or with
            ``similar_colours`` maybe a similar pair of :data:`SIMILAR_COLOURS`).
        difficulty: ``easy`` (default), ``realistic`` or ``hard``: presets every knob of
            the world's noise (:data:`WORLD_PRESETS`); the knobs below, when given,
            override the preset's.
        similar_colours: chance that the teams wear a similar pair of colours.
        hidden_players: players per clip standing behind an opponent (never the
            entering or leaving ones, at most one per opponent).
        hidden_share: the share of each clip they stay hidden.
        number_overlap: the share of a number box that a nearer player may cover while
            the number is still labelled visible.

    Raises:
        ValueError: bad options (see above), an unknown difficulty or a knob out of range.
    """
    if clips < 1:
        raise ValueError(f"clips must be >= 1, got {clips}")
    if not 0 <= players_per_team <= 15:
        raise ValueError(f"players_per_team must be in 0..15, got {players_per_team}")
    frames = round(seconds * fps)
    if frames < 1:
        raise ValueError(f"a clip needs at least one frame (seconds={seconds}, fps={fps})")
    noise = world_noise(
        difficulty,
        similar_colours=similar_colours,
        hidden_players=hidden_players,
        hidden_share=hidden_share,
        number_overlap=number_overlap,
    )
    if colours is None:
        colours = _pick_colours(seed, noise.similar_colours)
    roster, teams = make_roster(seed, colours, players_per_team)
    if only_referees:
        teams = (
            TeamSpec(teams[0].name, teams[0].colour, ()),
            TeamSpec(teams[1].name, teams[1].colour, ()),
        )
    if enter_frames is None:
        enter = {}
        if len(teams[1].numbers) >= 2:
            enter = {teams[1].object_id(teams[1].numbers[-1]): round(0.3 * frames)}
    else:
        enter = _resolve_ids(enter_frames, teams)
    leave = _resolve_ids(leave_frames, teams)

    game_dir = Path(games_root) / game_id
    label_dir = Path(labels_root) / game_id
    game_dir.mkdir(parents=True, exist_ok=True)
    label_dir.mkdir(parents=True, exist_ok=True)
    roster_path = game_dir / "roster.yaml"
    tmp = roster_path.with_name(f".roster.{uuid.uuid4().hex[:8]}.part")
    tmp.write_text(yaml.safe_dump(roster, sort_keys=False, allow_unicode=True), encoding="utf-8")
    os.replace(tmp, roster_path)

    game = SyntheticGame(
        game_id=game_id,
        directory=game_dir,
        clip_ids=[],
        clips=[],
        labels=[],
        roster_path=roster_path,
        roster=roster,
        on_court=[t.object_id(n) for t in teams for n in t.numbers],
        specs=[],
    )
    for index in range(clips):
        clip_id = f"clip-{index + 1:02d}"
        spec = ClipSpec(
            game_id=game_id,
            clip_id=clip_id,
            seed=int(np.random.SeedSequence([seed, index + 1]).generate_state(1)[0]),
            frames=frames,
            fps=fps,
            width=size[0],
            height=size[1],
            teams=teams,
            referees=referees,
            enter_frames=enter,
            leave_frames=leave,
            empty_frames=round(empty_seconds * fps),
            ball=ball,
            hidden=_pick_hidden(seed, index, teams, enter, leave, frames, noise),
            number_overlap=noise.number_overlap,
        )
        video_path = game_dir / f"{clip_id}.mp4"
        labels_path = label_dir / f"{clip_id}.parquet"
        write_clip(spec, video_path, labels_path, crf=crf)
        game.clip_ids.append(clip_id)
        game.clips.append(video_path)
        game.labels.append(labels_path)
        game.specs.append(spec)
    return game
