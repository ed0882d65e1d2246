"""The Ray Data graph: team crops and models, observe, resolve, render, report.

Stages (INPUT -> OUTPUT, fan-out):

1. discovery (driver): games root -> clip rows ``game_id, clip_id, path, fingerprint``;
   the manifest decides which rows go on (:mod:`hoopray.manifest`).
2. pass 1, :class:`Pass1Sampler` (GPU actors, ``map_batches``): one clip row -> one row
   with the clip's sampled player crops and their embeddings (1 -> 1);
   ``groupby("game_id").map_groups(fit_team_model_group)`` (CPU): a game's rows -> one
   row, the fitted model saved under ``<out>/<game>/teams/`` (n -> 1).
3. pass 2, :class:`ObserveStage` (GPU actors, one clip per call): clip row -> the clip's
   observations written atomically, and a status row (1 -> 1). A failure is caught in the
   stage and becomes a status row ``failed`` with its reason; the run goes on.
4. :func:`resolve_game_group` (CPU, ``groupby("game_id").map_groups``): a game's observed
   clips -> identities of every clip, written; team naming refined with the confirmed
   numbers of the whole game, clips re-resolved when that changed it (n -> n).
5. :func:`render_batch` (CPU tasks, ``map_batches``): clip row -> ``<out>/<game>/videos/
   <clip>.mp4`` (1 -> 1).
6. driver: status table, manifest, per-game report, summary.

Ray is never started here: the entry points in ``jobs/`` call ``ray.init`` (see
:func:`ray_init_kwargs`). Stage classes live in this module so that workers import them
from the installed package.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import time
import traceback
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from hoopray import manifest as mf
from hoopray.config import config_hash, instantiate_models, redact, to_dataclass, to_plain
from hoopray.summary import RunSummary, summarise
from hoopray.types import ClipRef, ClipStatus, Observations

if TYPE_CHECKING:
    import ray.data

    from hoopray.video import GameInput

log = logging.getLogger(__name__)

OBSERVATION_TABLES = ("tracks", "reads", "team_votes", "clip")
IDENTITY_TABLES = ("tracks", "frames")
VIDEOS_DIR = "videos"
_REASON_CHARS = 2000


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class Settings:
    """Plain, picklable settings every stage gets (resolved from the Hydra config)."""

    out_root: str
    models: dict[str, Any]
    roles: dict[str, Any]
    observe: dict[str, Any]
    resolve: dict[str, Any]
    teams: dict[str, Any]
    output: dict[str, Any]
    ray: dict[str, Any]

    @classmethod
    def from_cfg(cls, cfg: Any) -> Settings:
        return cls(
            out_root=str(Path(cfg.output.root).absolute()),
            models=to_plain(cfg.models) or {},
            roles=to_plain(cfg.roles) or {},
            observe=to_plain(cfg.observe) or {},
            resolve=to_plain(cfg.resolve) or {},
            teams=to_plain(cfg.teams) or {},
            output=to_plain(cfg.output) or {},
            ray=to_plain(cfg.ray) or {},
        )

    def hashes(self) -> mf.StageHashes:
        """Hashes of the config of each stage: what makes its outputs stale."""
        team = config_hash(
            self.models.get("detector"), self.models.get("embedder"), self.teams, self.roles
        )
        observe = config_hash(self.models, self.observe, self.roles, team)
        render_keys = {k: v for k, v in self.output.items() if k in ("render", "crf")}
        return mf.StageHashes(
            team=team,
            observe=observe,
            resolve=config_hash(self.resolve),
            render=config_hash(render_keys),
        )


def ray_init_kwargs(cfg: Any) -> dict[str, Any]:
    """Arguments for ``ray.init`` from ``cfg.ray`` (used by the entry points only)."""
    ray_cfg = to_plain(cfg.ray) or {}
    kwargs: dict[str, Any] = {"ignore_reinit_error": True, "include_dashboard": False}
    address = ray_cfg.get("address")
    if address:
        kwargs["address"] = address
    else:
        for key in ("num_cpus", "num_gpus"):
            if ray_cfg.get(key) is not None:
                kwargs[key] = ray_cfg[key]
    return kwargs


def configure_ray_data(settings: Settings) -> None:
    """Progress bars per stage, and a quiet logger (call after ``ray.init``)."""
    import ray.data

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = bool(settings.ray.get("progress_bars", True))
    ctx.enable_operator_progress_bars = ctx.enable_progress_bars


def _actor_pool(spec: Any, in_flight: int | None = None) -> Any:
    """An actor pool of ``spec`` actors (an int, or ``[min, max]`` to autoscale).

    ``in_flight``: clips queued on one actor at once. One (the default of the GPU stages)
    means a clip that kills its actor takes no queued clip down with it.
    """
    from ray.data import ActorPoolStrategy

    extra = {"max_tasks_in_flight_per_actor": int(in_flight)} if in_flight else {}
    if isinstance(spec, Sequence) and not isinstance(spec, str):
        low, high = (int(v) for v in spec)
        return ActorPoolStrategy(min_size=low, max_size=high, **extra)
    return ActorPoolStrategy(size=int(spec or 1), **extra)


def _fault_args(stage_cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Ray remote args for a GPU actor stage: a dead actor is restarted and its clip tried
    again, at most ``max_task_retries`` times (a clip that kills its actor on every try
    fails alone instead of looping for ever)."""
    return {
        "max_restarts": int(stage_cfg.get("max_restarts", -1)),
        "max_task_retries": int(stage_cfg.get("max_task_retries", 2)),
    }


class _ToleratedErrors:
    """Let a dataset drop up to ``n`` blocks whose task died for good (each block is one
    clip: the driver turns the missing rows into failed status rows)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __enter__(self) -> None:
        from ray.data import DataContext

        self.ctx = DataContext.get_current()
        self.old = self.ctx.max_errored_blocks
        self.ctx.max_errored_blocks = self.n

    def __exit__(self, *exc: object) -> None:
        self.ctx.max_errored_blocks = self.old


def _task_pool(size: Any) -> Any:
    from ray.data import TaskPoolStrategy

    return TaskPoolStrategy(size=int(size)) if size else None


# --------------------------------------------------------------------------- rows


def _reason(err: BaseException) -> str:
    text = f"{type(err).__name__}: {err}"
    return redact(text)[:_REASON_CHARS]


def batch_rows(batch: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A Ray numpy batch (dict of columns) -> list of row dicts with Python values."""
    columns = {k: list(v) for k, v in batch.items()}
    n = len(next(iter(columns.values()))) if columns else 0
    rows = []
    for i in range(n):
        row = {}
        for key, values in columns.items():
            value = values[i]
            row[key] = value.item() if isinstance(value, np.generic) else value
        rows.append(row)
    return rows


def rows_batch(rows: Sequence[Mapping[str, Any]], keys: Sequence[str]) -> dict[str, np.ndarray]:
    """Row dicts -> a Ray numpy batch with the given columns (in that order)."""
    batch: dict[str, np.ndarray] = {}
    for key in keys:
        values = [row[key] for row in rows]
        if values and all(isinstance(v, bool) for v in values):
            batch[key] = np.asarray(values, dtype=bool)
        elif values and all(isinstance(v, int | np.integer) for v in values):
            batch[key] = np.asarray(values, dtype=np.int64)
        elif values and all(isinstance(v, float | int) for v in values):
            batch[key] = np.asarray(values, dtype=np.float64)
        else:
            batch[key] = np.asarray(values, dtype=object)
    return batch


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
    "render",
    "identities_hash",
)


def status_row(clip: Mapping[str, Any], **values: Any) -> dict[str, Any]:
    """A status row for a clip (defaults: ok, nothing measured yet)."""
    row: dict[str, Any] = {k: str(clip[k]) for k in CLIP_KEYS}
    row.update(
        status=ClipStatus.OK.value,
        stage="",
        reason="",
        frames=0,
        confirmed=0,
        seconds_observe=0.0,
        seconds_resolve=0.0,
        seconds_render=0.0,
        render=False,
        identities_hash="",
    )
    row.update({k: v for k, v in values.items() if k in row})
    return row


def clip_ref(row: Mapping[str, Any]) -> ClipRef:
    return ClipRef(
        game_id=str(row["game_id"]),
        clip_id=str(row["clip_id"]),
        path=Path(str(row["path"])),
        fingerprint=str(row["fingerprint"]),
    )


# --------------------------------------------------------------------------- paths


def teams_dir(out_root: str | Path, game_id: str) -> Path:
    from hoopray import teams

    return teams.teams_dir(out_root, game_id)


def video_path(out_root: str | Path, game_id: str, clip_id: str) -> Path:
    from hoopray.store import check_id, game_dir, safe_join

    return safe_join(game_dir(out_root, game_id), VIDEOS_DIR, f"{check_id(clip_id)}.mp4")


def _keep_roster_copy(out_root: Path, game_id: str, game_dir: Path) -> None:
    """Copy the roster the identities were resolved with into ``<out>/<game>/roster.yaml``,
    so the report and later sweeps see the same roster even if the archive moves."""
    from hoopray.store import atomic_write_bytes
    from hoopray.store import game_dir as output_game_dir

    atomic_write_bytes(
        output_game_dir(out_root, game_id) / "roster.yaml", (game_dir / "roster.yaml").read_bytes()
    )


def _roster_of(game_dir: str) -> Any:
    """The game's roster, or None when it has none (a bad roster raises RosterError)."""
    from hoopray.roster import load_roster

    path = Path(game_dir) / "roster.yaml"
    return load_roster(path) if path.is_file() else None


# --------------------------------------------------------------------------- pass 1


def _pack(arrays: Mapping[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, allow_pickle=False, **arrays)
    return buffer.getvalue()


def _unpack(data: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def teams_config(settings: Settings) -> Any:
    from hoopray.teams import TeamsConfig

    return to_dataclass(TeamsConfig, settings.teams)


PASS1_KEYS = ("game_id", "clip_id", "game_dir", "crops", "error")


class Pass1Sampler:
    """Pass 1 actor: sample a clip's frames, detect players, embed central crops.

    INPUT: clip rows (``game_id, clip_id, path, fingerprint, game_dir``), one per call.
    OUTPUT: one row per clip; ``crops`` packs (npz bytes, no pickle) the crops, their
    frames, boxes and embeddings; ``error`` is empty or why the clip gave nothing.
    The detector and embedder are loaded once per actor.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.cfg = teams_config(settings)
        self.models = instantiate_models(
            settings.models, settings.roles, only=("detector", "embedder")
        )

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = [self._one(row) for row in batch_rows(batch)]
        return rows_batch(out, PASS1_KEYS)

    def _one(self, row: dict[str, Any]) -> dict[str, Any]:
        from hoopray.teams import collect_game_crops, embed_crops

        result = {k: row[k] for k in ("game_id", "clip_id", "game_dir")}
        cfg = self.cfg
        try:
            sample = collect_game_crops(
                [clip_ref(row)],
                self.models.detector,
                self.models.roles,
                stride_seconds=cfg.stride_seconds,
                scale=cfg.scale,
                max_crops=cfg.max_crops,
                batch_size=cfg.detect_batch,
                seed=cfg.seed,
            )
            if sample.problems:
                raise RuntimeError("; ".join(reason for _, reason in sample.problems))
            embeddings = embed_crops(self.models.embedder, sample.crops, cfg.embed_batch)
            arrays = {
                "embeddings": np.asarray(embeddings, dtype=np.float32).reshape(len(sample), -1),
                "frames": np.asarray(sample.frames, dtype=np.int32),
                "boxes": np.asarray(sample.boxes, dtype=np.float32).reshape(-1, 4),
                "frames_sampled": np.asarray(sample.frames_sampled),
                "players_seen": np.asarray(sample.players_seen),
            }
            arrays.update({f"crop_{i}": img for i, img in enumerate(sample.crops)})
            result.update(crops=_pack(arrays), error="")
        except Exception as err:
            log.warning("pass 1 %s/%s failed: %s", row["game_id"], row["clip_id"], _reason(err))
            result.update(crops=b"", error=_reason(err))
        return result


def gather_crops(
    rows: Sequence[Mapping[str, Any]], max_crops: int, seed: int
) -> tuple[Any, np.ndarray]:
    """A game's pass-1 rows -> one :class:`~hoopray.teams.CropSample` and its embeddings.

    Clips are taken in id order; beyond ``max_crops`` a seeded uniform sample is kept (in
    order), so the result does not depend on which actor finished first.
    """
    from hoopray.teams import CropSample

    sample = CropSample()
    frames: list[np.ndarray] = []
    boxes: list[np.ndarray] = []
    embeddings: list[np.ndarray] = []
    for row in sorted(rows, key=lambda r: str(r["clip_id"])):
        if row["error"]:
            sample.problems.append((str(row["clip_id"]), str(row["error"])))
        if not row["crops"]:
            continue
        arrays = _unpack(row["crops"])
        n = len(arrays["frames"])
        sample.frames_sampled += int(arrays["frames_sampled"])
        sample.players_seen += int(arrays["players_seen"])
        if n == 0:
            continue
        sample.crops += [arrays[f"crop_{i}"] for i in range(n)]
        sample.clip_ids += [str(row["clip_id"])] * n
        frames.append(arrays["frames"])
        boxes.append(arrays["boxes"].reshape(-1, 4))
        embeddings.append(arrays["embeddings"].reshape(n, -1))
    stacked = np.zeros((0, 0), np.float32)
    if frames:
        sample.frames = np.concatenate(frames).astype(np.int32)
        sample.boxes = np.concatenate(boxes).astype(np.float32)
        stacked = np.concatenate(embeddings).astype(np.float32)
    if len(sample) > max_crops:
        keep = np.sort(np.random.default_rng(seed).choice(len(sample), max_crops, replace=False))
        sample.crops = [sample.crops[i] for i in keep]
        sample.clip_ids = [sample.clip_ids[i] for i in keep]
        sample.frames, sample.boxes = sample.frames[keep], sample.boxes[keep]
        stacked = stacked[keep]
    return sample, stacked


def load_naming(out_root: str | Path, game_id: str) -> Any:
    """The game's saved :class:`~hoopray.teams.TeamNaming`, or None."""
    from hoopray import teams

    return teams.load_naming(teams.teams_dir(out_root, game_id))


def team_model_present(out_root: str | Path, game_id: str) -> bool:
    from hoopray import teams

    return (teams.teams_dir(out_root, game_id) / teams.MODEL_FILE).is_file()


def load_team_model(out_root: str | Path, game_id: str) -> Any:
    """The game's fitted :class:`~hoopray.teams.TeamModel`, or None when it has none."""
    from hoopray import teams

    if not team_model_present(out_root, game_id):
        return None
    return teams.TeamModel.load(teams.teams_dir(out_root, game_id), trusted_root=out_root)


FIT_KEYS = ("game_id", "status", "reason", "crops")


def fit_team_model_group(batch: dict[str, np.ndarray], settings: Settings) -> dict[str, np.ndarray]:
    """One game's pass-1 rows -> its team model, colour naming and diagnostics, saved.

    OUTPUT: one row ``game_id, status, reason, crops`` (crops: how many were fitted).
    """
    from hoopray import teams

    rows = batch_rows(batch)
    game_id = str(rows[0]["game_id"])
    result = {"game_id": game_id, "status": ClipStatus.OK.value, "reason": "", "crops": 0}
    directory = teams.teams_dir(settings.out_root, game_id)
    try:
        cfg = teams_config(settings)
        _clear_team_outputs(directory)
        sample, embeddings = gather_crops(rows, cfg.max_crops, cfg.seed)
        result["crops"] = len(sample)
        clip_ids = sorted(str(r["clip_id"]) for r in rows)
        model = teams.fit_sample(sample, embeddings, cfg, game_id, clip_ids)
        naming = None
        try:
            roster = _roster_of(str(rows[0]["game_dir"]))
        except Exception as err:  # the clips fail at stage "roster" in resolve
            log.warning("%s: teams stay unnamed: %s", game_id, _reason(err))
            roster = None
        if roster is not None:
            naming = teams.name_clusters(model, roster, override=cfg.override)
            naming.evidence["source"] = "colours"
        teams.save_game(directory, model, sample, naming)
    except Exception as err:
        log.warning("team model of %s failed: %s", game_id, _reason(err))
        result.update(status=ClipStatus.FAILED.value, reason=_reason(err))
    return rows_batch([result], FIT_KEYS)


def _clear_team_outputs(directory: Path) -> None:
    from hoopray import teams

    for name in (teams.MODEL_FILE, teams.META_FILE, teams.NAMING_FILE, teams.CROPS_FILE):
        (directory / name).unlink(missing_ok=True)


# --------------------------------------------------------------------------- pass 2


class ObserveStage:
    """Pass 2 actor: observe one clip and write its observations.

    INPUT: clip rows (``game_id, clip_id, path, fingerprint``), ``batch_size=1``.
    OUTPUT: a status row per clip (:data:`STATUS_KEYS`); failures are rows, never raised.
    Models are loaded once per actor; team models once per game.
    """

    def __init__(self, settings: Settings) -> None:
        from hoopray.observe import ObserveConfig

        self.settings = settings
        self.models = instantiate_models(settings.models, settings.roles)
        self.cfg = to_dataclass(ObserveConfig, settings.observe)
        self._team_models: dict[str, Any] = {}

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return rows_batch([self._one(row) for row in batch_rows(batch)], STATUS_KEYS)

    def _team_model(self, game_id: str) -> Any:
        if game_id not in self._team_models:
            self._team_models[game_id] = load_team_model(self.settings.out_root, game_id)
        return self._team_models[game_id]

    def _one(self, row: dict[str, Any]) -> dict[str, Any]:
        started = time.perf_counter()
        clip = clip_ref(row)
        try:
            delete_observations(self.settings.out_root, clip.game_id, clip.clip_id)
            team_model = self._team_model(clip.game_id)
            obs = observe_to_store(self.settings.out_root, clip, self.models, team_model, self.cfg)
            frames = int(obs.clip.column("frames")[0].as_py())
        except Exception as err:
            log.warning("observe %s/%s failed: %s", clip.game_id, clip.clip_id, _reason(err))
            log.debug("%s", traceback.format_exc())
            _discard(delete_observations, self.settings.out_root, clip.game_id, clip.clip_id)
            return status_row(
                row,
                status=ClipStatus.FAILED.value,
                stage="observe",
                reason=_reason(err),
                seconds_observe=time.perf_counter() - started,
            )
        return status_row(row, frames=frames, seconds_observe=time.perf_counter() - started)


def _discard(delete: Any, out_root: str, game_id: str, clip_id: str) -> None:
    """Remove what a failed stage wrote for a clip, so no partial output stays visible."""
    try:
        delete(out_root, game_id, clip_id)
    except Exception as err:
        log.warning("cleaning up %s/%s failed: %s", game_id, clip_id, _reason(err))


def delete_observations(out_root: str, game_id: str, clip_id: str) -> None:
    """Remove a clip's observations and everything derived from them (before a redo)."""
    from hoopray.store import delete_partition

    for name in OBSERVATION_TABLES:
        delete_partition(out_root, f"observations/{name}", game_id, clip_id)
    delete_identities(out_root, game_id, clip_id)


def delete_identities(out_root: str, game_id: str, clip_id: str) -> None:
    from hoopray.store import delete_partition

    for name in IDENTITY_TABLES:
        delete_partition(out_root, f"identities/{name}", game_id, clip_id)


def observe_to_store(
    out_root: str | Path, clip: ClipRef, models: Any, team_model: Any, cfg: Any
) -> Observations:
    """Observe a clip straight into its observation partitions (the production path).

    Rows of ``tracks``, ``reads`` and ``team_votes`` stream into the store's writers as
    observe produces them (:func:`hoopray.store.open_table_writer`), so memory does not
    grow with the clip. The three files become visible only once observe finished and
    the clip passed :func:`hoopray.video.check_complete`; ``clip`` is written last, so its
    presence marks completion. On an error nothing new is left visible by the writers;
    a caller that must not keep half of the four tables removes them
    (:func:`delete_observations`), as :class:`ObserveStage` does.

    Returns:
        observe's result: the ``clip`` table and counters; the streamed tables are empty
        (read them back with :func:`read_observations`).
    """
    from contextlib import ExitStack

    from hoopray.observe import STREAMED_TABLES, observe
    from hoopray.store import open_table_writer, write_table
    from hoopray.video import check_complete

    with ExitStack() as stack:
        writers = {
            name: stack.enter_context(
                open_table_writer(out_root, f"observations/{name}", clip.game_id, clip.clip_id)
            )
            for name in STREAMED_TABLES
        }

        def sink(name: str, batch: pa.RecordBatch) -> None:
            writers[name].write(batch)

        obs = observe(clip, models, team_model, cfg, sink=sink)
        check_complete(clip.path, int(obs.clip.column("frames")[0].as_py()), stop=cfg.max_frames)
    write_table(out_root, "observations/clip", clip.game_id, clip.clip_id, obs.clip)
    return obs


def write_observations(out_root: str, game_id: str, clip_id: str, obs: Observations) -> None:
    """Write the four observation tables; ``clip`` last, so its presence marks completion."""
    from hoopray.store import write_table

    for name in ("tracks", "reads", "team_votes", "clip"):
        write_table(out_root, f"observations/{name}", game_id, clip_id, getattr(obs, name))


def read_observations(out_root: str | Path, game_id: str, clip_id: str) -> Observations:
    """A clip's stored observations (partition columns dropped)."""
    from hoopray.store import read_table

    tables = {}
    for name in OBSERVATION_TABLES:
        table = read_table(out_root, f"observations/{name}", game_id, clip_id)
        tables[name] = table.drop_columns(["game_id", "clip_id"])
    return Observations(**tables)


def observed_clips(out_root: str | Path) -> set[tuple[str, str]]:
    """(game_id, clip_id) whose observations are complete on disk."""
    from hoopray.store import list_partitions

    return set(list_partitions(out_root, "observations/clip"))


# --------------------------------------------------------------------------- resolve


def confirmed_numbers(identities: Iterable[Any]) -> list[tuple[int, str]]:
    """(team cluster, number) of every confirmed track of the given identities."""
    found = []
    for ids in identities:
        tracks = ids.tracks.to_pylist()
        for t in tracks:
            if t["status"] == "confirmed" and t["team_cluster"] is not None and t["number"]:
                found.append((int(t["team_cluster"]), str(t["number"])))
    return found


def identities_hash(identities: Any) -> str:
    digest = hashlib.sha256()
    for table in (identities.tracks, identities.frames):
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        digest.update(sink.getvalue().to_pybytes())
    return digest.hexdigest()[:16]


def _refine_naming(
    settings: Settings, game_id: str, roster: Any, naming: Any, identities: Iterable[Any]
) -> tuple[Any, bool]:
    """Team naming refined with the game's confirmed numbers; whether it changed.

    The model's cluster colours and the confirmed (cluster, number) pairs of the whole
    game are weighed together by :func:`hoopray.teams.name_clusters`.
    """
    from hoopray.teams import name_clusters

    confirmed = confirmed_numbers(identities)
    model = load_team_model(settings.out_root, game_id)
    if roster is None or model is None or not confirmed:
        return naming, False
    refined = name_clusters(
        model, roster, confirmed=confirmed, override=teams_config(settings).override
    )
    refined.evidence["source"] = "colours+numbers"
    changed = naming is None or refined.cluster_to_team != naming.cluster_to_team
    return refined, changed


RESOLVE_IN_KEYS = (*STATUS_KEYS, "game_dir", "prev_identities_hash")
NO_ROSTER = "warning: no roster.yaml, so teams and players are not named"


def resolve_game_group(batch: dict[str, np.ndarray], settings: Settings) -> dict[str, np.ndarray]:
    """One game's observed clips -> identities written, naming refined (pure CPU).

    INPUT: status rows of the game's clips to resolve (ok after observe or already
    observed) with ``game_dir``. OUTPUT: the same rows with ``confirmed``,
    ``seconds_resolve`` and ``identities_hash`` filled, or failed at stage ``resolve``.
    """
    from hoopray.resolve import ResolveConfig, resolve
    from hoopray.store import write_table
    from hoopray.teams import save_naming

    rows = sorted(batch_rows(batch), key=lambda r: str(r["clip_id"]))
    game_id = str(rows[0]["game_id"])
    cfg = ResolveConfig.from_mapping(settings.resolve)
    out: list[dict[str, Any]] = []
    try:
        roster = _roster_of(str(rows[0]["game_dir"]))
    except Exception as err:
        return rows_batch(
            [
                {**r, "status": ClipStatus.FAILED.value, "stage": "roster", "reason": _reason(err)}
                for r in rows
            ],
            RESOLVE_IN_KEYS,
        )
    if roster is None:
        log.warning("%s: %s", game_id, NO_ROSTER)
    else:
        _keep_roster_copy(settings.out_root, game_id, Path(str(rows[0]["game_dir"])))
    naming = load_naming(settings.out_root, game_id)
    observations: dict[str, Observations] = {}
    for row in rows:
        try:
            observations[row["clip_id"]] = read_observations(
                settings.out_root, game_id, row["clip_id"]
            )
        except Exception as err:
            out.append({**row, "status": "failed", "stage": "resolve", "reason": _reason(err)})

    def resolve_all(naming: Any) -> dict[str, tuple[Any, float]]:
        result = {}
        for clip_id, obs in observations.items():
            started = time.perf_counter()
            result[clip_id] = (resolve(obs, roster, naming, cfg), time.perf_counter() - started)
        return result

    resolved = resolve_all(naming)
    refined, changed = _refine_naming(
        settings, game_id, roster, naming, (ids for ids, _ in resolved.values())
    )
    if refined is not None and refined is not naming:
        refined.evidence["changed_by_numbers"] = changed
        save_naming(refined, teams_dir(settings.out_root, game_id))
    if changed:
        log.info("%s: team naming changed by confirmed numbers; resolving again", game_id)
        resolved = resolve_all(refined)
    for row in rows:
        if row["clip_id"] not in resolved:
            continue
        ids, seconds = resolved[row["clip_id"]]
        try:
            for name in IDENTITY_TABLES:
                write_table(
                    settings.out_root,
                    f"identities/{name}",
                    game_id,
                    row["clip_id"],
                    getattr(ids, name),
                )
            confirmed = sum(s == "confirmed" for s in ids.tracks.column("status").to_pylist())
            warning = {"stage": "roster", "reason": NO_ROSTER} if roster is None else {}
            out.append(
                {
                    **row,
                    **warning,
                    "confirmed": confirmed,
                    "seconds_resolve": seconds,
                    "identities_hash": identities_hash(ids),
                }
            )
        except Exception as err:
            _discard(delete_identities, settings.out_root, game_id, row["clip_id"])
            out.append({**row, "status": "failed", "stage": "resolve", "reason": _reason(err)})
    return rows_batch(out, RESOLVE_IN_KEYS)


# --------------------------------------------------------------------------- render


def render_batch(batch: dict[str, np.ndarray], settings: Settings) -> dict[str, np.ndarray]:
    """Render the clips of a batch whose ``render`` flag is set (CPU task).

    OUTPUT: the rows with ``seconds_render`` filled, or failed at stage ``render``.
    """
    from hoopray.render import render
    from hoopray.store import read_table

    out = []
    for row in batch_rows(batch):
        game_id, clip_id = str(row["game_id"]), str(row["clip_id"])
        unchanged = row["identities_hash"] == row["prev_identities_hash"] and (
            video_path(settings.out_root, game_id, clip_id).is_file()
        )
        if not row["render"] or row["status"] != ClipStatus.OK or unchanged:
            out.append(row)
            continue
        started = time.perf_counter()
        try:
            tracks = read_table(settings.out_root, "observations/tracks", game_id, clip_id)
            ids = _read_identities(settings.out_root, game_id, clip_id)
            roster = _roster_of(str(row["game_dir"]))
            naming = load_naming(settings.out_root, game_id)
            render(
                Path(str(row["path"])),
                tracks.drop_columns(["game_id", "clip_id"]),
                ids,
                roster,
                naming,
                video_path(settings.out_root, game_id, clip_id),
                crf=int(settings.output.get("crf", 23)),
            )
            out.append({**row, "seconds_render": time.perf_counter() - started})
        except Exception as err:
            log.warning("render %s/%s failed: %s", game_id, clip_id, _reason(err))
            out.append(
                {
                    **row,
                    "status": ClipStatus.FAILED.value,
                    "stage": "render",
                    "reason": _reason(err),
                    "seconds_render": time.perf_counter() - started,
                }
            )
    return rows_batch(out, RESOLVE_IN_KEYS)


def _read_identities(out_root: str, game_id: str, clip_id: str) -> Any:
    from hoopray.store import read_table
    from hoopray.types import Identities

    tables = {
        name: read_table(out_root, f"identities/{name}", game_id, clip_id).drop_columns(
            ["game_id", "clip_id"]
        )
        for name in IDENTITY_TABLES
    }
    return Identities(**tables)


# --------------------------------------------------------------------------- driver


@dataclass
class RunInputs:
    """What discovery and the manifest say this run must do."""

    games: list[GameInput]
    plans: list[mf.GamePlan]
    manifest: mf.Manifest
    hashes: mf.StageHashes

    @property
    def idle(self) -> bool:
        return all(p.idle for p in self.plans)


def _roster_fingerprint(game: GameInput) -> str:
    if game.roster_path is None or not Path(game.roster_path).is_file():
        return ""
    return hashlib.sha256(Path(game.roster_path).read_bytes()).hexdigest()[:16]


def plan_run(
    settings: Settings,
    data_root: Path,
    *,
    games_filter: Sequence[str] | None = None,
    force: bool = False,
    retry_failed: bool = False,
) -> RunInputs:
    """Discover the games and plan which stages run for each clip (no Ray, no models)."""
    from hoopray.video import discover_games

    games = discover_games(data_root)
    if games_filter:
        wanted = set(games_filter)
        games = [g for g in games if g.game_id in wanted]
    manifest = mf.load(Path(settings.out_root))
    hashes = settings.hashes()
    observed = observed_clips(settings.out_root)
    inputs = []
    for game in games:
        team_present = team_model_present(settings.out_root, game.game_id)
        inputs.append(
            mf.GameInputs(
                game_id=game.game_id,
                clips={c.clip_id: c.fingerprint for c in game.clips},
                roster_fingerprint=_roster_fingerprint(game),
                team_model_present=team_present or not game.clips,
                observed=frozenset(c for g, c in observed if g == game.game_id),
            )
        )
    plans = mf.plan(inputs, manifest, hashes, force=force, retry_failed=retry_failed)
    return RunInputs(games=games, plans=plans, manifest=manifest, hashes=hashes)


class _Progress:
    """One log line per finished clip with an estimate of the time left."""

    def __init__(self, stage: str, total: int) -> None:
        self.stage, self.total, self.done = stage, total, 0
        self.started = time.perf_counter()

    def step(self, row: Mapping[str, Any]) -> None:
        self.done += 1
        elapsed = time.perf_counter() - self.started
        left = elapsed / self.done * (self.total - self.done)
        extra = f": {row['reason']}" if row.get("status") == ClipStatus.FAILED else ""
        log.info(
            "%s %s/%s %s (%d/%d, %.0f s elapsed, ~%.0f s left)%s",
            self.stage,
            row["game_id"],
            row["clip_id"],
            row.get("status", ""),
            self.done,
            self.total,
            elapsed,
            left,
            extra,
        )


def _dataset(rows: list[dict[str, Any]], keys: Sequence[str]) -> ray.data.Dataset:
    import ray.data

    return ray.data.from_items(
        [{k: r[k] for k in keys} for r in rows], override_num_blocks=max(1, len(rows))
    )


def _gpu_stage(ds: Any, stage: type, settings: Settings, ray_cfg: Any) -> Any:
    """``ds`` through a pool of ``stage`` actors, one clip per call, models loaded once per
    actor, GPUs (fractions allowed) and fault tolerance from ``ray_cfg``."""
    return ds.map_batches(
        stage,
        fn_constructor_kwargs={"settings": settings},
        batch_size=1,
        compute=_actor_pool(ray_cfg.get("actors", 1), ray_cfg.get("in_flight", 1)),
        num_gpus=float(ray_cfg.get("num_gpus", 0)),
        num_cpus=float(ray_cfg.get("num_cpus", 1)),
        **_fault_args(ray_cfg),
    )


def _run_pass1(settings: Settings, clip_rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Fit the team models of the games of ``clip_rows``; result row per game."""
    if not clip_rows:
        return {}
    ray_cfg = settings.ray.get("pass1", {})
    with _ToleratedErrors(len(clip_rows)):
        ds = _gpu_stage(
            _dataset(clip_rows, (*CLIP_KEYS, "game_dir")), Pass1Sampler, settings, ray_cfg
        )
        games = len({r["game_id"] for r in clip_rows})
        fitted = ds.groupby("game_id", num_partitions=games).map_groups(
            fit_team_model_group, fn_kwargs={"settings": settings}, num_cpus=1
        )
        return {str(r["game_id"]): r for r in fitted.iter_rows()}


def _run_observe(
    settings: Settings, clip_rows: list[dict[str, Any]], checkpoint: _Checkpoint
) -> list[dict[str, Any]]:
    """Observe the clips; one status row per clip, in the order they finish.

    A clip whose actor died on every try (a crash, the OOM killer) has no row from Ray
    Data: it gets a failed row here.
    """
    if not clip_rows:
        return []
    ray_cfg = settings.ray.get("observe", {})
    retries = _fault_args(ray_cfg)["max_task_retries"]
    progress = _Progress("observed", len(clip_rows))
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    with _ToleratedErrors(len(clip_rows)):
        ds = _gpu_stage(_dataset(clip_rows, CLIP_KEYS), ObserveStage, settings, ray_cfg)
        for row in ds.iter_rows():
            progress.step(row)
            rows[(str(row["game_id"]), str(row["clip_id"]))] = dict(row)
            checkpoint.observed(rows[(str(row["game_id"]), str(row["clip_id"]))])
    for clip in clip_rows:
        key = (str(clip["game_id"]), str(clip["clip_id"]))
        if key not in rows:
            reason = (
                f"the observe worker died on every try ({retries + 1}): "
                "a crash or out of memory; see the Ray logs"
            )
            log.warning("observe %s/%s failed: %s", *key, reason)
            _discard(delete_observations, settings.out_root, *key)
            rows[key] = status_row(
                clip, status=ClipStatus.FAILED.value, stage="observe", reason=reason
            )
            checkpoint.observed(rows[key])
    return list(rows.values())


def _run_resolve_render(settings: Settings, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not rows:
        return []
    ray_cfg = settings.ray
    games = len({r["game_id"] for r in rows})
    ds = (
        _dataset(rows, RESOLVE_IN_KEYS)
        .groupby("game_id", num_partitions=games)
        .map_groups(
            resolve_game_group,
            fn_kwargs={"settings": settings},
            num_cpus=float(ray_cfg.get("resolve", {}).get("num_cpus", 1)),
        )
    )
    render_cfg = ray_cfg.get("render", {})
    ds = ds.map_batches(
        render_batch,
        fn_kwargs={"settings": settings},
        batch_size=1,
        num_cpus=float(render_cfg.get("num_cpus", 1)),
        compute=_task_pool(render_cfg.get("tasks")),
    )
    progress = _Progress("finished", len(rows))
    done = []
    for row in ds.iter_rows():
        progress.step(row)
        done.append(dict(row))
    return done


def write_status(out_root: str, row: Mapping[str, Any]) -> None:
    """Write a clip's ``status/clips`` row (stage/reason empty -> null)."""
    from hoopray.store import write_table

    table = pa.table(
        {
            "path": [str(row["path"])],
            "fingerprint": [str(row["fingerprint"])],
            "status": [str(row["status"])],
            "stage": [str(row["stage"]) or None],
            "reason": [str(row["reason"]) or None],
            "frames": [int(row["frames"])],
            "confirmed": [int(row["confirmed"])],
            "seconds_observe": [float(row["seconds_observe"])],
            "seconds_resolve": [float(row["seconds_resolve"])],
            "seconds_render": [float(row["seconds_render"])],
        }
    )
    write_table(out_root, "status/clips", str(row["game_id"]), str(row["clip_id"]), table)


def _observed(out_root: str, game_id: str, clip_id: str) -> tuple[int, float]:
    """(frames, observe seconds) of a clip observed by an earlier run."""
    from hoopray.store import read_table

    table = read_table(out_root, "observations/clip", game_id, clip_id)
    if not table.num_rows:
        return 0, 0.0
    row = table.to_pylist()[0]
    return int(row["frames"] or 0), float(row["seconds"] or 0.0)


GAME_ROW = "_game"


def _discovery_failures(games: Sequence[GameInput]) -> list[dict[str, Any]]:
    """Failed status rows for what discovery left out.

    A clip file gets a row under its id; when a usable clip already has that id (``a.mov``
    beside ``a.mp4``) the row is named after the whole file name (``a.mov``). Problems of
    the game folder itself (no usable clips, a folder that leaves the games root, a
    colliding folder name) share one row with clip id :data:`GAME_ROW`. ``write`` says
    whether the row can be stored without replacing another clip's row.
    """
    from hoopray.video import CLIP_SUFFIXES, sanitise_id

    rows = []
    for game in games:
        taken = {c.clip_id for c in game.clips}
        folder: list[str] = []
        for name, reason in game.problems:
            if Path(name).suffix.lower() not in CLIP_SUFFIXES:
                folder.append(reason if name == Path(game.directory).name else f"{name}: {reason}")
                continue
            clip_id = sanitise_id(Path(name).stem)
            if clip_id in taken:
                clip_id = sanitise_id(name)
            clip = {
                "game_id": game.game_id,
                "clip_id": clip_id,
                "path": str(Path(game.directory) / name),
                "fingerprint": "",
            }
            row = status_row(clip, status=ClipStatus.FAILED.value, stage="discover", reason=reason)
            row["write"] = clip_id not in taken
            taken.add(clip_id)
            rows.append(row)
        if folder:
            clip = {
                "game_id": game.game_id,
                "clip_id": GAME_ROW,
                "path": str(game.directory),
                "fingerprint": "",
            }
            reason = "; ".join(folder)
            row = status_row(clip, status=ClipStatus.FAILED.value, stage="discover", reason=reason)
            row["write"] = GAME_ROW not in taken
            rows.append(row)
    return rows


def execute(settings: Settings, run: RunInputs) -> RunSummary:
    """Run the planned work on the connected Ray cluster and return the summary.

    Writes every output, the status table, the manifest and the per-game reports.
    Requires ``ray.init`` to have been called (by the entry point).
    """
    started = time.perf_counter()
    stage_seconds: dict[str, float] = {}
    out_root = settings.out_root
    games = {g.game_id: g for g in run.games}
    plans = {p.game_id: p for p in run.plans}
    Path(out_root).mkdir(parents=True, exist_ok=True)

    for plan in run.plans:
        for clip_id in plan.removed:
            delete_observations(out_root, plan.game_id, clip_id)
            video_path(out_root, plan.game_id, clip_id).unlink(missing_ok=True)

    def clip_row(game: GameInput, clip: ClipRef) -> dict[str, Any]:
        return {
            "game_id": game.game_id,
            "clip_id": clip.clip_id,
            "path": str(Path(clip.path).absolute()),
            "fingerprint": clip.fingerprint,
            "game_dir": str(Path(game.directory).absolute()),
        }

    pass1_rows = [
        clip_row(games[p.game_id], c)
        for p in run.plans
        if p.fit_teams
        for c in games[p.game_id].clips
    ]
    checkpoint = _Checkpoint(run, settings)
    t = time.perf_counter()
    fits = _run_pass1(settings, pass1_rows)
    stage_seconds["teams"] = time.perf_counter() - t
    checkpoint.teams_fitted(sorted({r["game_id"] for r in pass1_rows}), fits)
    for game_id, fit in fits.items():
        if fit["status"] != ClipStatus.OK:
            log.warning("%s: no team model (%s); teams stay unknown", game_id, fit["reason"])

    observe_rows, carried = [], []
    for plan in run.plans:
        game = games[plan.game_id]
        for clip in game.clips:
            cp = plan.clip(clip.clip_id)
            row = clip_row(game, clip)
            if cp.observe:
                observe_rows.append(row)
            elif cp.resolve or cp.render:
                carried.append(status_row(row) | {"game_dir": row["game_dir"]})
    t = time.perf_counter()
    observed = _run_observe(settings, observe_rows, checkpoint)
    stage_seconds["observe"] = time.perf_counter() - t

    game_dirs = {r["game_id"]: r["game_dir"] for r in observe_rows}
    failed = [r for r in observed if r["status"] != ClipStatus.OK]
    to_resolve = [
        r | {"game_dir": game_dirs[r["game_id"]]} for r in observed if r["status"] == ClipStatus.OK
    ]
    to_resolve += carried
    for row in to_resolve:
        cp = plans[row["game_id"]].clip(row["clip_id"])
        row["render"] = bool(settings.output.get("render", True)) and cp.render
        old = run.manifest.games.get(row["game_id"], mf.GameEntry()).clips.get(row["clip_id"])
        same_render = old is not None and old.render_hash == run.hashes.render
        row["prev_identities_hash"] = old.identities_hash if same_render and old else ""
        if not cp.observe:
            row["frames"], row["seconds_observe"] = _observed(
                out_root, row["game_id"], row["clip_id"]
            )
    t = time.perf_counter()
    finished = _run_resolve_render(settings, to_resolve)
    stage_seconds["resolve+render"] = time.perf_counter() - t

    discovery = _discovery_failures(run.games)
    results = failed + finished
    for row in results:
        write_status(out_root, row)
    for row in discovery:
        if row.pop("write"):
            write_status(out_root, row)

    _update_manifest(run, results, settings)
    t = time.perf_counter()
    _write_reports(out_root, sorted({r["game_id"] for r in results} | set(fits)), stage_seconds)
    stage_seconds["report"] = time.perf_counter() - t
    return summarise(results + discovery, stage_seconds, time.perf_counter() - started)


class _Checkpoint:
    """Records finished work in the manifest while a run goes on.

    A job killed mid-run leaves a manifest that knows which team models were fitted and
    which clips were observed, and with what config, so its rerun observes only the
    rest. Saves are at most one per ``output.checkpoint_seconds`` (default 10), plus one
    after pass 1; the final manifest is written by :func:`_update_manifest`.
    """

    def __init__(self, run: RunInputs, settings: Settings) -> None:
        self.run = run
        self.out_root = Path(settings.out_root)
        self.interval = float(settings.output.get("checkpoint_seconds", 10.0))
        self.last = time.monotonic()
        self.dirty = False

    def teams_fitted(self, game_ids: Sequence[str], fits: Mapping[str, Mapping[str, Any]]) -> None:
        """Pass 1 ran for ``game_ids``: their clips' observations are stale until redone."""
        games = {g.game_id: g for g in self.run.games}
        for game_id in game_ids:
            entry = self.run.manifest.games.setdefault(game_id, mf.GameEntry())
            entry.clips_key = mf.clips_key({c.clip_id: c.fingerprint for c in games[game_id].clips})
            entry.team_hash = self.run.hashes.team
            fit = fits.get(game_id)
            entry.team_failed = fit is None or fit["status"] != ClipStatus.OK
            for clip in entry.clips.values():
                clip.observe_hash = ""
        self.save(force=True)

    def observed(self, row: Mapping[str, Any]) -> None:
        """A clip was observed: not resolved yet (the render of its last identities, if
        any, stays on record so that an unchanged result is not rendered again)."""
        entry = self.run.manifest.games.setdefault(str(row["game_id"]), mf.GameEntry())
        old = entry.clips.get(str(row["clip_id"]))
        entry.clips[str(row["clip_id"])] = mf.ClipEntry(
            fingerprint=str(row["fingerprint"]),
            status=str(row["status"]),
            stage=str(row["stage"]) or None,
            reason=str(row["reason"]) or None,
            observe_hash=self.run.hashes.observe,
            render_hash=old.render_hash if old else "",
            identities_hash=old.identities_hash if old else "",
        )
        self.dirty = True
        self.save()

    def save(self, force: bool = False) -> None:
        if force or (self.dirty and time.monotonic() - self.last >= self.interval):
            mf.save(self.out_root, self.run.manifest)
            self.last = time.monotonic()
            self.dirty = False


def _update_manifest(run: RunInputs, results: list[dict[str, Any]], settings: Settings) -> None:
    manifest = run.manifest
    by_key = {(r["game_id"], r["clip_id"]): r for r in results}
    games = {g.game_id: g for g in run.games}
    for plan in run.plans:
        game = games[plan.game_id]
        entry = manifest.games.setdefault(plan.game_id, mf.GameEntry())
        clips = {c.clip_id: c.fingerprint for c in game.clips}
        entry.clips_key = mf.clips_key(clips)
        entry.team_hash = run.hashes.team
        entry.roster_fingerprint = _roster_fingerprint(game)
        for clip_id in plan.removed:
            entry.clips.pop(clip_id, None)
        for clip_id, fp in clips.items():
            row = by_key.get((plan.game_id, clip_id))
            if row is None:
                continue
            old = entry.clips.get(clip_id)
            entry.clips[clip_id] = mf.ClipEntry(
                fingerprint=fp,
                status=str(row["status"]),
                stage=str(row["stage"]) or None,
                reason=str(row["reason"]) or None,
                observe_hash=run.hashes.observe,
                resolve_hash=run.hashes.resolve,
                render_hash=run.hashes.render,
                identities_hash=str(row["identities_hash"]) or (old.identities_hash if old else ""),
            )
    mf.save(Path(settings.out_root), manifest)


def _write_reports(
    out_root: str, game_ids: Sequence[str], stage_seconds: Mapping[str, float]
) -> None:
    """Per-game reports, where :mod:`hoopray.report` is available."""
    try:
        from hoopray import report
    except ImportError:
        return
    for game_id in game_ids:
        try:
            report.write_game_report(Path(out_root), game_id, stage_seconds=stage_seconds)
        except Exception as err:
            log.warning("report of %s failed: %s", game_id, _reason(err))


def iter_clip_rows(games: Iterable[GameInput]) -> Iterator[dict[str, Any]]:
    """Discovery rows (``game_id, clip_id, path, fingerprint``) of every usable clip."""
    for game in games:
        for clip in game.clips:
            yield {
                "game_id": game.game_id,
                "clip_id": clip.clip_id,
                "path": str(clip.path),
                "fingerprint": clip.fingerprint,
            }


# --------------------------------------------------------------------------- jobs


def _preflight(cfg: Any, data_root: Path) -> list[str]:
    """Problems that stop a job before Ray starts: missing weights, no input games."""
    from hoopray.config import missing_weights

    problems = []
    weights = missing_weights(cfg, base_dir=Path.cwd())
    if weights:
        problems.append(
            "model weights are not available:\n  - "
            + "\n  - ".join(weights)
            + "\nProvide them (see the README: Roboflow key, Hugging Face ids, local paths), "
            "or try the pipeline on generated data with tiny models:\n"
            "  python jobs/process_games.py +experiment=smoke"
        )
    if not data_root.is_dir() or not any(p.is_dir() for p in data_root.iterdir()):
        problems.append(
            f"no input games under {data_root.absolute()}: put each game in its own folder, "
            f"e.g. {data_root}/<game_id>/clip-01.mp4 and {data_root}/<game_id>/roster.yaml, "
            "or point data.root=/path/to/games at them"
        )
    return problems


def write_run_summary(out_root: str | Path, summary: RunSummary, extra: dict[str, Any]) -> Path:
    """``<out>/_runs/<UTC timestamp>.json``: what one run did."""
    from datetime import UTC, datetime

    from hoopray.store import atomic_write_text

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    data = {**summary.to_dict(), **extra}
    path = Path(out_root) / "_runs" / f"{stamp}.json"
    return atomic_write_text(path, redact(json.dumps(data, indent=2, sort_keys=True)) + "\n")


def run_job(
    cfg: Any,
    *,
    incremental: bool,
    start_ray: Any,
    hydra_dir: Path | None = None,
) -> int:
    """The body of ``jobs/process_games.py`` and ``jobs/nightly.py``.

    Args:
        cfg: the composed config.
        incremental: plan from the manifest (nightly); otherwise ``cfg.force`` decides.
        start_ray: called with :func:`ray_init_kwargs` once there is work to do (the entry
            point passes ``ray.init``: the library never starts Ray itself).
        hydra_dir: the job's Hydra output dir, scrubbed if the config carries a secret.

    Returns:
        The exit code: 0 all done, 1 a clip failed, 2 the job could not start.
    """
    from hoopray.config import SecretInConfigError, check_no_secrets, scrub_hydra_dir
    from hoopray.summary import format_summary

    started = time.perf_counter()
    try:
        check_no_secrets(cfg)
    except SecretInConfigError as err:
        if hydra_dir is not None:
            scrub_hydra_dir(hydra_dir)
        print(f"error: {err}")
        return 2
    if cfg.get("smoke"):
        from hoopray.smoke import prepare

        try:
            prepare(to_plain(cfg.smoke))
        except Exception as err:
            print(f"error: the smoke run's inputs could not be built: {_reason(err)}")
            return 2
    data_root = Path(str(cfg.data.root))
    problems = _preflight(cfg, data_root)
    if problems:
        print("hoopray cannot start:\n\n" + "\n\n".join(problems))
        return 2
    settings = Settings.from_cfg(cfg)
    run = plan_run(
        settings,
        data_root,
        games_filter=cfg.data.get("games"),
        force=bool(cfg.get("force", False)) and not incremental,
        retry_failed=bool(cfg.get("retry_failed", False)),
    )
    extra = {
        "job": "nightly" if incremental else "process_games",
        "data_root": str(data_root.absolute()),
        "hashes": vars(run.hashes),
    }
    if run.idle:
        summary = summarise([], {}, time.perf_counter() - started)
        print(format_summary(summary))
        write_run_summary(settings.out_root, summary, extra)
        return 0
    planned = sum(not c.idle for p in run.plans for c in p.clips)
    log.info("%d games, %d clips to process", sum(not p.idle for p in run.plans), planned)
    start_ray(**ray_init_kwargs(cfg))
    configure_ray_data(settings)
    summary = execute(settings, run)
    print(format_summary(summary))
    path = write_run_summary(settings.out_root, summary, extra)
    log.info("run summary: %s", path)
    return summary.exit_code
