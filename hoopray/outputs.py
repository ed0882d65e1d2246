"""The output layout of one run: reading, writing and deleting a clip's or a game's outputs.

Under an output root ``<out>`` (any :mod:`hoopray.store` location):

- ``tables/observations/{detections,tracks,reads,team_votes,clip}``: what observe
  recorded; ``clip`` is the completion marker, written last;
- ``tables/identities/{frames,tracks}``: what resolve decided; ``tracks`` is the marker;
- ``tables/status/clips``: one row per clip, written by the worker that finished it;
- ``<game>/teams/``: the team model, its crop sample, naming and plots;
- ``<game>/videos/<clip>.mp4``, ``<game>/roster.yaml``, ``<game>/report.html``;
- ``_manifest/``: per-game manifest and fingerprint caches; ``_runs/``: run summaries;
  ``_lock``: the lease of the run that owns the root.

Used by the stages, the report, the sweep, the benchmarks and the tests alike.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from hoopray import store
from hoopray.types import ClipStatus, Identities, Observations

OBSERVATION_TABLES = ("detections", "tracks", "reads", "team_votes", "clip")  # clip: marker
OPTIONAL_OBSERVATIONS = ("detections",)  # absent from outputs written before it existed
IDENTITY_TABLES = ("frames", "tracks")  # tracks last: it marks completion
VIDEOS_DIR = "videos"
ROSTER_FILE = "roster.yaml"
RUNS_DIR = "_runs"
_REASON_CHARS = 2000


def video_path(out_root: str, game_id: str, clip_id: str) -> str:
    return store.join(
        store.game_dir(out_root, game_id), VIDEOS_DIR, f"{store.check_id(clip_id)}.mp4"
    )


def roster_location(game_dir: str) -> str:
    return store.join(game_dir, ROSTER_FILE)


def read_roster(game_dir: str) -> Any:
    """The roster of an input game folder, or None when it has none.

    Raises:
        hoopray.roster.RosterError: a roster that is present but malformed.
    """
    from hoopray.roster import load_roster

    location = roster_location(game_dir)
    return load_roster(location) if store.is_file(location) else None


def roster_fingerprint(roster_path: str | None) -> str:
    if not roster_path or not store.is_file(roster_path):
        return ""
    return hashlib.sha256(store.read_bytes(roster_path)).hexdigest()[:16]


def keep_roster_copy(out_root: str, game_id: str, game_dir: str) -> None:
    """Copy the roster the identities were resolved with into ``<out>/<game>/roster.yaml``,
    so the report and later sweeps see the same roster even if the archive moves."""
    data = store.read_bytes(roster_location(game_dir))
    store.write_bytes(store.join(store.game_dir(out_root, game_id), ROSTER_FILE), data)


def delete_observations(out_root: str, game_id: str, clip_id: str) -> None:
    """Remove a clip's observations and everything derived from them (marker first)."""
    store.delete_partitions(
        out_root, [f"observations/{name}" for name in OBSERVATION_TABLES], game_id, clip_id
    )
    delete_identities(out_root, game_id, clip_id)


def delete_identities(out_root: str, game_id: str, clip_id: str) -> None:
    store.delete_partitions(
        out_root, [f"identities/{name}" for name in IDENTITY_TABLES], game_id, clip_id
    )


def delete_clip(out_root: str, game_id: str, clip_id: str) -> None:
    """Everything of a clip that left the archive: tables, status and video."""
    delete_observations(out_root, game_id, clip_id)
    store.delete_partition(out_root, "status/clips", game_id, clip_id)
    store.delete(video_path(out_root, game_id, clip_id))


def write_observations(out_root: str, game_id: str, clip_id: str, obs: Observations) -> None:
    """Write the observation tables; ``clip`` last, so its presence marks completion."""
    for name in OBSERVATION_TABLES:
        store.write_table(out_root, f"observations/{name}", game_id, clip_id, getattr(obs, name))


def read_observations(out_root: str, game_id: str, clip_id: str) -> Observations:
    """A clip's stored observations (partition columns dropped), each read by its path,
    named by ``game_id`` and ``clip_id``. A clip observed before ``detections`` existed
    gets an empty one.

    Raises:
        FileNotFoundError: the clip has no complete observations.
    """
    from hoopray.types import empty_table

    tables = {}
    for name in OBSERVATION_TABLES:
        table = store.read_partition(out_root, f"observations/{name}", game_id, clip_id)
        if table is None and name in OPTIONAL_OBSERVATIONS:
            table = empty_table(f"observations/{name}")  # no marker: "clip" raises below
        if table is None:
            raise FileNotFoundError(f"{game_id}/{clip_id} has no complete observations")
        tables[name] = table
    return Observations(**tables, game_id=game_id, clip_id=clip_id)


def read_detections(out_root: str, game_id: str, clip_id: str) -> pa.Table:
    """A clip's ``observations/detections`` (empty when it has none, or none complete)."""
    from hoopray.types import empty_table

    table = store.read_partition(out_root, "observations/detections", game_id, clip_id)
    return table if table is not None else empty_table("observations/detections")


def observation_marker(out_root: str, game_id: str, clip_id: str) -> tuple[str, str] | None:
    """(fingerprint, observe hash) a clip's complete observations were made from, or None."""
    table = store.read_partition(out_root, "observations/clip", game_id, clip_id)
    if table is None or not table.num_rows:
        return None
    row = table.slice(0, 1).to_pylist()[0]
    return str(row["fingerprint"]), str(row.get("observe_hash") or "")


def observed_clips(out_root: str, game_id: str) -> list[str]:
    """Clip ids of a game with complete observations (one listing of the game)."""
    return store.list_clips(out_root, "observations/clip", game_id)


def write_identities(out_root: str, game_id: str, clip_id: str, ids: Identities) -> None:
    for name in IDENTITY_TABLES:
        store.write_table(out_root, f"identities/{name}", game_id, clip_id, getattr(ids, name))


def read_identities(out_root: str, game_id: str, clip_id: str) -> Identities:
    from hoopray.types import empty_table

    tables = {}
    for name in IDENTITY_TABLES:
        table = store.read_partition(out_root, f"identities/{name}", game_id, clip_id)
        tables[name] = table if table is not None else empty_table(f"identities/{name}")
    return Identities(**tables)


def identities_hash(identities: Identities) -> str:
    digest = hashlib.sha256()
    for table in (identities.tracks, identities.frames):
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        digest.update(sink.getvalue().to_pybytes())
    return digest.hexdigest()[:16]


# --------------------------------------------------------------------------- status rows

CLIP_KEYS = ("game_id", "clip_id", "path", "fingerprint")
STATUS_KEYS = (
    *CLIP_KEYS,
    "status",
    "stage",
    "reason",
    "frames",
    "confirmed",
    "seconds_observe",
    "seconds_resolve",
    "seconds_render",
)


def reason(err: BaseException) -> str:
    """One line for a status row or a log: the error's type and message, secrets redacted."""
    from hoopray.config import redact

    return redact(f"{type(err).__name__}: {err}")[:_REASON_CHARS]


def status_row(clip: Mapping[str, Any], **values: Any) -> dict[str, Any]:
    """A status row for a clip (defaults: ok, nothing measured yet)."""
    row: dict[str, Any] = {k: str(clip.get(k, "")) for k in CLIP_KEYS}
    row.update(
        status=ClipStatus.OK.value,
        stage="",
        reason="",
        frames=0,
        confirmed=0,
        seconds_observe=0.0,
        seconds_resolve=0.0,
        seconds_render=0.0,
    )
    row.update({k: v for k, v in values.items() if k in row})
    return row


def write_status(out_root: str, row: Mapping[str, Any]) -> None:
    """Write a clip's ``status/clips`` row (stage/reason empty -> null)."""
    table = pa.table(
        {
            "path": [str(row["path"])],
            "fingerprint": [str(row["fingerprint"])],
            "status": [str(row["status"])],
            "stage": [str(row["stage"] or "") or None],
            "reason": [str(row["reason"] or "") or None],
            "frames": [int(row["frames"] or 0)],
            "confirmed": [int(row["confirmed"] or 0)],
            "seconds_observe": [float(row["seconds_observe"] or 0.0)],
            "seconds_resolve": [float(row["seconds_resolve"] or 0.0)],
            "seconds_render": [float(row["seconds_render"] or 0.0)],
        }
    )
    store.write_table(out_root, "status/clips", str(row["game_id"]), str(row["clip_id"]), table)


def read_status(out_root: str, game_id: str, clip_id: str) -> dict[str, Any] | None:
    table = store.read_partition(out_root, "status/clips", game_id, clip_id)
    if table is None or not table.num_rows:
        return None
    return {"game_id": game_id, "clip_id": clip_id, **table.to_pylist()[0]}
