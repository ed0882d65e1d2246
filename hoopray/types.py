"""Records passed between stages and the Arrow schema of every table, defined once.

Tables are hive-partitioned by ``game_id`` and ``clip_id`` on disk
(``<out>/tables/<name>/game_id=<g>/clip_id=<c>/part-0.parquet``); the partition columns
are therefore *not* stored inside the files and are absent from the schemas below.
Readers (DuckDB ``hive_partitioning=true``, Polars ``hive_partitioning=True``,
:func:`hoopray.store.read_table`) add them back from the path.

Schema evolution: a column added to a table later is nullable, and :func:`check_schema`
accepts a table (a file written before the column existed) that lacks it, as nulls.

``player_key`` (``identities/tracks`` and ``identities/frames``) names one player of a
game across tracks and clips:

- ``"<game_id>/<team>/<number>"`` for a track whose status is ``confirmed`` or
  ``off_roster`` and whose team is known (``<team>`` is the team's name, or
  ``cluster-<k>`` for the game's team cluster ``k`` when the clusters have no names):
  every track of that team and number in the game, one after another (a player lost by
  the tracker and prompted again under a new track id), shares it;
- ``"<game_id>/<clip_id>/track-<track_id>"`` otherwise (``unread``, ``ambiguous``, or a
  number whose team is unknown): the track alone.

The game and clip prefixes are left out when the observations do not name their game
and clip (:class:`Observations` built by hand).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import pyarrow as pa


class TrackSource(StrEnum):
    """How a track row came to be."""

    PROMPT = "prompt"  # prompted from a detection on the clip's first detection frame
    PROPAGATED = "propagated"  # carried forward by the tracker
    ADDED = "added"  # a new player prompted mid-clip


class IdentityStatus(StrEnum):
    CONFIRMED = "confirmed"
    AMBIGUOUS = "ambiguous"  # its identity is claimed by a stronger track at the same frame
    OFF_ROSTER = "off_roster"  # a number confirmed for a roster team that lacks it
    UNREAD = "unread"


class Role(StrEnum):
    """What a detection is, from its class name (config ``roles``)."""

    PLAYER = "player"
    NUMBER = "number"
    REFEREE = "referee"
    BALL = "ball"
    RIM = "rim"


class ClipStatus(StrEnum):
    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class ClipRef:
    """One input clip found by discovery; ``path`` is a local path or a URI (``s3://...``),
    ``size`` its length in bytes (0: unknown)."""

    game_id: str
    clip_id: str
    path: str
    fingerprint: str
    size: int = 0


@dataclass(frozen=True)
class NumberRead:
    """One jersey-number read.

    Attributes:
        text: the number normalised to "0".."99" or "00", or None when unreadable.
        confidence: in [0, 1].
        raw: the reader's raw answer, for diagnostics.
    """

    text: str | None
    confidence: float
    raw: str = ""


@dataclass
class Observations:
    """Everything the GPU computed for one clip: the input of :func:`hoopray.resolve.resolve`.

    Each table attribute is an Arrow table with the schema named after it in
    :data:`SCHEMAS` (``detections`` is empty when not given). ``game_id`` and ``clip_id``
    name the clip ("" when unknown); they go into the ``player_key`` of its identities.
    """

    tracks: pa.Table
    reads: pa.Table
    team_votes: pa.Table
    clip: pa.Table
    extra: dict[str, object] = field(default_factory=dict)
    detections: pa.Table = field(default_factory=lambda: empty_table("observations/detections"))
    game_id: str = ""
    clip_id: str = ""


@dataclass
class Identities:
    tracks: pa.Table
    frames: pa.Table


_BOX = [
    pa.field("x1", pa.float32(), nullable=False),
    pa.field("y1", pa.float32(), nullable=False),
    pa.field("x2", pa.float32(), nullable=False),
    pa.field("y2", pa.float32(), nullable=False),
]

OBS_DETECTIONS = pa.schema(
    [
        pa.field("frame", pa.int32(), nullable=False),
        pa.field("class_name", pa.string(), nullable=False),  # the detector's class
        pa.field("role", pa.string()),  # Role of the class (config roles); null: none
        *_BOX,
        pa.field("confidence", pa.float32()),
        # players: the track whose box best matches it (IoU >= 0.5) on this frame
        pa.field("track_id", pa.int32()),
    ]
)

CANDIDATE = pa.struct([pa.field("track_id", pa.int32()), pa.field("ios", pa.float32())])

OBS_TRACKS = pa.schema(
    [
        pa.field("frame", pa.int32(), nullable=False),
        pa.field("track_id", pa.int32(), nullable=False),
        *_BOX,
        pa.field("mask_area", pa.int64(), nullable=False),
        pa.field("mask_rle", pa.string(), nullable=False),  # COCO RLE counts (compressed)
        pa.field("height", pa.int32(), nullable=False),
        pa.field("width", pa.int32(), nullable=False),
        pa.field("class_name", pa.string()),
        pa.field("det_confidence", pa.float32()),
        pa.field("source", pa.string(), nullable=False),  # TrackSource
    ]
)

OBS_READS = pa.schema(
    [
        pa.field("frame", pa.int32(), nullable=False),
        pa.field("read_id", pa.int32(), nullable=False),
        *_BOX,
        pa.field("text", pa.string()),  # normalised number or null
        pa.field("raw", pa.string()),
        pa.field("confidence", pa.float32(), nullable=False),
        pa.field("candidates", pa.list_(CANDIDATE), nullable=False),  # IoS > 0 only
    ]
)

OBS_TEAM_VOTES = pa.schema(
    [
        pa.field("frame", pa.int32(), nullable=False),
        pa.field("track_id", pa.int32(), nullable=False),
        # The crop's embedding as little-endian float16 bytes (``dim`` values); resolve
        # assigns its cluster with the game's team model, so observing needs no model.
        pa.field("embedding", pa.binary(), nullable=False),
        pa.field("dim", pa.int32(), nullable=False),
        # share of the crop that is the track's own mask
        pa.field("own_fraction", pa.float32(), nullable=False),
    ]
)

OBS_CLIP = pa.schema(
    [
        pa.field("path", pa.string(), nullable=False),
        pa.field("fingerprint", pa.string(), nullable=False),
        pa.field("frames", pa.int32(), nullable=False),
        pa.field("fps", pa.float32(), nullable=False),
        pa.field("width", pa.int32(), nullable=False),
        pa.field("height", pa.int32(), nullable=False),
        pa.field("read_stride", pa.int32(), nullable=False),
        pa.field("reader_calls", pa.int32(), nullable=False),
        pa.field("crops_read", pa.int32(), nullable=False),
        pa.field("seconds", pa.float32(), nullable=False),
        pa.field("observe_hash", pa.string()),  # config of the observe stage that wrote it
    ]
)

ID_TRACKS = pa.schema(
    [
        pa.field("track_id", pa.int32(), nullable=False),
        pa.field("player_key", pa.string()),  # see the module docstring
        pa.field("first_frame", pa.int32(), nullable=False),
        pa.field("last_frame", pa.int32(), nullable=False),
        pa.field("team_cluster", pa.int8()),
        pa.field("team_name", pa.string()),
        pa.field("team_confidence", pa.float32()),
        pa.field("number", pa.string()),
        pa.field("player_name", pa.string()),
        pa.field("status", pa.string(), nullable=False),  # IdentityStatus
        pa.field("confirmed_at_frame", pa.int32()),
        pa.field("reads_seen", pa.int32(), nullable=False),
        pa.field("reads_agreeing", pa.int32(), nullable=False),
        pa.field("posterior", pa.float32()),  # of the best (team, number) pair
        pa.field("margin", pa.float32()),  # its lead over the runner-up pair
        pa.field("runner_up", pa.string()),  # the runner-up pair, "<team>#<number>"
    ]
)

ID_FRAMES = pa.schema(
    [
        pa.field("frame", pa.int32(), nullable=False),
        pa.field("track_id", pa.int32(), nullable=False),
        pa.field("player_key", pa.string()),  # see the module docstring
        *_BOX,
        pa.field("team_name", pa.string()),
        pa.field("number", pa.string()),
        pa.field("player_name", pa.string()),
        pa.field("status", pa.string(), nullable=False),
        # the class of the player detection matched to the track on this frame
        # (observations/detections), e.g. player-in-possession; null on other frames
        pa.field("class_name", pa.string()),
    ]
)

TEAM_CROPS = pa.schema(
    [
        pa.field("clip_id", pa.string(), nullable=False),
        pa.field("frame", pa.int32(), nullable=False),
        *_BOX,
        pa.field("cluster", pa.int8(), nullable=False),
        pa.field("u0", pa.float32(), nullable=False),
        pa.field("u1", pa.float32(), nullable=False),
        pa.field("u2", pa.float32(), nullable=False),
    ]
)

CLIP_STATUS = pa.schema(
    [
        pa.field("path", pa.string(), nullable=False),
        pa.field("fingerprint", pa.string(), nullable=False),
        pa.field("status", pa.string(), nullable=False),  # ClipStatus
        pa.field("stage", pa.string()),  # where it failed
        pa.field("reason", pa.string()),
        pa.field("frames", pa.int32()),
        pa.field("confirmed", pa.int32()),
        pa.field("seconds_observe", pa.float32()),
        pa.field("seconds_resolve", pa.float32()),
        pa.field("seconds_render", pa.float32()),
    ]
)

LABELS = pa.schema(
    [
        pa.field("frame", pa.int32(), nullable=False),
        pa.field("object_id", pa.string(), nullable=False),  # stable per labelled object
        pa.field("role", pa.string(), nullable=False),  # player | referee | ball | rim
        pa.field("team", pa.string()),  # roster team name (players only)
        pa.field("number", pa.string()),  # "0".."99", "00" (players only)
        *_BOX,
        pa.field("number_visible", pa.bool_()),
        pa.field("nx1", pa.float32()),  # number box, where visible
        pa.field("ny1", pa.float32()),
        pa.field("nx2", pa.float32()),
        pa.field("ny2", pa.float32()),
        pa.field("mask_rle", pa.string()),  # optional (synthetic clips have it)
    ]
)

SCHEMAS: dict[str, pa.Schema] = {
    "labels": LABELS,
    "observations/detections": OBS_DETECTIONS,
    "observations/tracks": OBS_TRACKS,
    "observations/reads": OBS_READS,
    "observations/team_votes": OBS_TEAM_VOTES,
    "observations/clip": OBS_CLIP,
    "identities/tracks": ID_TRACKS,
    "identities/frames": ID_FRAMES,
    "teams/crops": TEAM_CROPS,
    "status/clips": CLIP_STATUS,
}


def empty_table(name: str) -> pa.Table:
    """An empty table with the schema registered under ``name``."""
    return SCHEMAS[name].empty_table()


def check_schema(name: str, table: pa.Table) -> pa.Table:
    """Return ``table`` cast to the schema of ``name``; raise ValueError if it does not fit.

    Column order and names must match, except that nullable columns the table lacks are
    added as nulls (a file written before they existed); types may be cast losslessly
    (for example int64 -> int32 is accepted only where values fit).
    """
    schema = SCHEMAS[name]
    names = table.schema.names
    present = [f.name for f in schema if f.name in names]
    missing = [f for f in schema if f.name not in names]
    if names != present or any(not f.nullable for f in missing):
        raise ValueError(f"table {name!r}: columns {names} != expected {schema.names}")
    for f in missing:
        table = table.add_column(
            schema.get_field_index(f.name), f.name, pa.nulls(table.num_rows, f.type)
        )
    try:
        cast = table.cast(schema, safe=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as err:
        raise ValueError(f"table {name!r} does not fit its schema: {err}") from err
    for fld in schema:
        if not fld.nullable and cast.column(fld.name).null_count:
            raise ValueError(f"table {name!r}: column {fld.name!r} has nulls")
    return cast
