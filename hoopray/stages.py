"""The operators of the streaming graph (:mod:`hoopray.pipeline` wires them).

Every operator reads and writes the store itself and hands the driver only a small status
row, so the driver's work per clip does not grow with the archive.

- :class:`GpuWorker` (GPU actors, ``map_batches``, one work item per call, 1 -> 1):
  INPUT a work item. ``kind="sample"``: a game's clips; seeks to the sampled frames,
  detects players, embeds their central crops and stores the game's crop sample under
  ``<out>/<game>/teams/``. ``kind="observe"``: one clip; observes it (detect, track,
  read numbers, embed team crops) into its observation partitions, marker last.
  OUTPUT one result row (:data:`RESULT_KEYS`); a failure is a row ``failed`` with its
  reason, written to ``status/clips`` by the worker itself.
- :func:`fit_teams` (CPU task, one per game, 1 -> 1): INPUT the game's stored crop sample.
  OUTPUT the fitted team model, colour naming and plots under ``<out>/<game>/teams/`` and
  ``fit.json``; a result row.
- :func:`finish_game` (CPU task, one per game, n -> n): INPUT the game's observed clips
  and its team model. OUTPUT identities of every clip (team naming refined with the
  game's confirmed numbers), rendered videos (:func:`render_clip`, one CPU task per clip),
  status rows, the game's manifest entry and report; a status row per clip.

Input clips on an object store are read through a scratch copy per clip, removed when the
clip is done (:func:`hoopray.store.local_copy`).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from hoopray import manifest as mf
from hoopray import outputs, store
from hoopray.config import instantiate_models, to_dataclass
from hoopray.settings import PLAN_TEAM_KEYS, Settings
from hoopray.types import ClipRef, ClipStatus

log = logging.getLogger(__name__)

SAMPLE, OBSERVE = "sample", "observe"
TEAMS_ROW = "_teams"
FIT_FILE = "fit.json"
WORK_KEYS = ("kind", "game_id", "clip_id", "path", "fingerprint", "game_dir", "clips")
RESULT_KEYS = ("kind", *outputs.STATUS_KEYS)
NO_ROSTER = "warning: no roster.yaml, so teams and players are not named"
ROSTER_CACHE = 16  # rosters an actor keeps (a game's clips tend to come together)


# --------------------------------------------------------------------------- batches


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


def clip_ref(row: Mapping[str, Any]) -> ClipRef:
    return ClipRef(
        game_id=str(row["game_id"]),
        clip_id=str(row["clip_id"]),
        path=str(row["path"]),
        fingerprint=str(row["fingerprint"]),
    )


def teams_config(settings: Settings) -> Any:
    from hoopray.teams import TeamsConfig

    return to_dataclass(
        TeamsConfig, {k: v for k, v in settings.teams.items() if k not in PLAN_TEAM_KEYS}
    )


def _missing_weights_here(settings: Settings) -> list[str]:
    from omegaconf import OmegaConf

    from hoopray.config import missing_weights

    return missing_weights(OmegaConf.create({"models": settings.models}))


# --------------------------------------------------------------------------- GPU work


def read_ahead_depths(pool: Mapping[str, Any]) -> dict[str, int]:
    """``decode_ahead`` and ``infer_ahead`` of the GPU pool's settings (``ray.observe``),
    as :func:`observe_to_store` takes them (a missing or null one: 0)."""
    return {key: int(pool.get(key) or 0) for key in ("decode_ahead", "infer_ahead")}


def _timeout_marker(settings: Settings, row: Mapping[str, Any]) -> str:
    name = f"{row['game_id']}__{row['clip_id'] or TEAMS_ROW}"
    return store.join(settings.out_root, "_status", "timeouts", settings.run_id, name)


class ActorRegistry:
    """The GPU actors of one execution, so that the driver can stop them when it ends.

    Ray Data releases a finished execution's actors by reference counting; after an actor
    crashed and restarted, references can outlive the execution and the actor keeps its
    GPU and CPUs. Each :class:`GpuWorker` adds its handle here; :func:`stop_actors` kills
    them all.
    """

    def __init__(self) -> None:
        self.handles: list[Any] = []

    def add(self, handle: Any) -> None:
        self.handles.append(handle)

    def take(self) -> list[Any]:
        handles, self.handles = self.handles, []
        return handles


def stop_actors(registry: Any) -> int:
    """Kill every actor ``registry`` (a remote :class:`ActorRegistry`) holds, then the
    registry; returns how many handles it held (an actor restarted counts again)."""
    import ray

    try:
        handles = ray.get(registry.take.remote(), timeout=30)
    except Exception as err:
        log.warning("could not list the GPU actors to stop: %s", err)
        handles = []
    for handle in handles:
        try:
            ray.kill(handle, no_restart=True)
        except Exception as err:  # already gone
            log.debug("kill %s: %s", handle, err)
    ray.kill(registry, no_restart=True)
    return len(handles)


class GpuWorker:
    """Pass 1 and pass 2 on one GPU actor pool; models are loaded once per actor.

    A work item that runs longer than ``ray.observe.clip_timeout_s`` marks itself timed
    out in the store and ends the actor's process, which frees its GPU; Ray restarts the
    actor, and the retried item finds the mark and fails alone with the reason.
    """

    def __init__(self, settings: Settings, registry: Any = None) -> None:
        from hoopray.observe import ObserveConfig

        # Registered while the models load; confirmed at the end, so that an actor is
        # known to the registry before its first item and one that starts after its round
        # ended (the registry gone) fails here instead of holding its GPU.
        registering = None
        if registry is not None:
            import ray

            registering = registry.add.remote(ray.get_runtime_context().current_actor)

        missing = _missing_weights_here(settings)
        if missing:
            raise RuntimeError(
                f"model weights missing on worker {socket.gethostname()}:\n  - "
                + "\n  - ".join(missing)
            )
        self.settings = settings
        self.models = instantiate_models(settings.models, settings.roles)
        self.cfg = to_dataclass(ObserveConfig, settings.observe)
        self.teams_cfg = teams_config(settings)
        self.observe_hash = settings.hashes().observe
        timeout = settings.gpu.get("clip_timeout_s")
        self.timeout = float(timeout) if timeout else None
        self.ahead = read_ahead_depths(settings.gpu)
        self._rosters: dict[str, Any] = {}
        if registering is not None:
            ray.get(registering)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return rows_batch([self._one(row) for row in batch_rows(batch)], RESULT_KEYS)

    def _one(self, row: dict[str, Any]) -> dict[str, Any]:
        marker = _timeout_marker(self.settings, row)
        if self.timeout and store.exists(marker):
            result = _failed(
                row, "observe" if row["kind"] == OBSERVE else "teams", store.read_text(marker)
            )
            return self._record(row, result)
        watchdog = None
        if self.timeout:
            watchdog = threading.Timer(self.timeout, self._timed_out, args=(row, marker))
            watchdog.daemon = True
            watchdog.start()
        try:
            result = self._observe(row) if row["kind"] == OBSERVE else self._sample(row)
        finally:
            if watchdog is not None:
                watchdog.cancel()
        return self._record(row, result)

    def _record(self, row: Mapping[str, Any], result: dict[str, Any]) -> dict[str, Any]:
        if row["kind"] == OBSERVE and result["status"] != ClipStatus.OK:
            try:
                outputs.write_status(self.settings.out_root, result)
            except Exception as err:
                log.warning("status of %s/%s: %s", row["game_id"], row["clip_id"], err)
        return result

    def _timed_out(self, row: Mapping[str, Any], marker: str) -> None:
        text = (
            f"TimeoutError: {row['kind']} ran longer than ray.observe.clip_timeout_s="
            f"{self.timeout:g} s (a hung decoder or model); its worker was stopped to free "
            "the GPU"
        )
        log.error("%s/%s: %s", row["game_id"], row["clip_id"] or TEAMS_ROW, text)
        try:
            store.write_text(marker, text)
        finally:
            os._exit(3)

    def _observe(self, row: dict[str, Any]) -> dict[str, Any]:
        started = time.perf_counter()
        clip = clip_ref(row)
        out = self.settings.out_root
        try:
            outputs.delete_observations(out, clip.game_id, clip.clip_id)
            with store.local_copy(clip.path) as local:
                obs = observe_to_store(
                    out,
                    replace(clip, path=str(local)),
                    self.models,
                    self.cfg,
                    observe_hash=self.observe_hash,
                    source=clip.path,
                    roster=self._roster(str(row["game_dir"])),
                    **self.ahead,
                )
            frames = int(obs.clip.column("frames")[0].as_py())
        except Exception as err:
            log.warning("observe %s/%s failed: %s", clip.game_id, clip.clip_id, outputs.reason(err))
            log.debug("%s", traceback.format_exc())
            _discard(outputs.delete_observations, out, clip.game_id, clip.clip_id)
            return _failed(row, "observe", outputs.reason(err), time.perf_counter() - started)
        return {
            "kind": OBSERVE,
            **outputs.status_row(row, frames=frames, seconds_observe=time.perf_counter() - started),
        }

    def _roster(self, game_dir: str) -> Any:
        """The game's roster (or None), read once per actor: an actor lives for one run,
        and the run's plan fixed the roster it uses."""
        if game_dir not in self._rosters:
            while len(self._rosters) >= ROSTER_CACHE:
                self._rosters.pop(next(iter(self._rosters)))
            self._rosters[game_dir] = _roster_or_none(game_dir)
        return self._rosters[game_dir]

    def _sample(self, row: dict[str, Any]) -> dict[str, Any]:
        from hoopray import teams

        started = time.perf_counter()
        game_id = str(row["game_id"])
        try:
            clips = [ClipRef(game_id, *clip) for clip in json.loads(row["clips"])]
            sample, embeddings = teams.sample_game(clips, self.models, self.teams_cfg)
            teams.save_sample(teams.teams_dir(self.settings.out_root, game_id), sample, embeddings)
        except Exception as err:
            log.warning("pass 1 of %s failed: %s", row["game_id"], outputs.reason(err))
            return _failed(row, "teams", outputs.reason(err), time.perf_counter() - started)
        return {
            "kind": SAMPLE,
            **outputs.status_row(
                row, frames=len(sample), seconds_observe=time.perf_counter() - started
            ),
        }


def _roster_or_none(game_dir: str) -> Any:
    """The game's roster for observe's early stop (its numbers are the prior); a missing or
    malformed one gives None here and fails the clips at stage ``roster`` in finish_game."""
    try:
        return outputs.read_roster(game_dir)
    except Exception:
        return None


def _failed(row: Mapping[str, Any], stage: str, why: str, seconds: float = 0.0) -> dict[str, Any]:
    return {
        "kind": str(row.get("kind", OBSERVE)),
        **outputs.status_row(
            row, status=ClipStatus.FAILED.value, stage=stage, reason=why, seconds_observe=seconds
        ),
    }


def observe_to_store(
    out_root: str,
    clip: ClipRef,
    models: Any,
    cfg: Any,
    *,
    observe_hash: str = "",
    source: str | None = None,
    roster: Any = None,
    decode_ahead: int = 0,
    infer_ahead: int = 0,
) -> Any:
    """Observe a local clip straight into its observation partitions (the production path).

    Rows of ``tracks``, ``reads`` and ``team_votes`` stream into the store's writers as
    observe produces them, so memory does not grow with the clip. They are committed only
    once observe finished and the clip passed :func:`hoopray.video.check_frame_count`
    (against the count its header declared when observe opened it);
    ``clip`` is written last and marks completion. ``source`` is the clip's location as
    recorded (the input URI when ``clip.path`` is a scratch copy); ``roster`` (optional)
    lets observe stop reading a track as soon as resolve would confirm it;
    ``decode_ahead`` frames are decoded on a thread while the models run, and the detector
    and tracker run ``infer_ahead`` frames ahead of the recording on another.

    Returns:
        observe's result; its streamed tables are empty (read them back with
        :func:`hoopray.outputs.read_observations`).
    """
    from contextlib import ExitStack

    import pyarrow as pa

    from hoopray.observe import STREAMED_TABLES, observe
    from hoopray.video import check_frame_count

    with ExitStack() as stack:
        writers = {
            name: stack.enter_context(
                store.open_table_writer(
                    out_root, f"observations/{name}", clip.game_id, clip.clip_id
                )
            )
            for name in STREAMED_TABLES
        }

        def sink(name: str, batch: pa.RecordBatch) -> None:
            writers[name].write(batch)

        obs = observe(
            clip,
            models,
            cfg,
            sink=sink,
            observe_hash=observe_hash,
            roster=roster,
            decode_ahead=decode_ahead,
            infer_ahead=infer_ahead,
        )
        decoded = int(obs.clip.column("frames")[0].as_py())
        check_frame_count(clip.path, obs.extra["declared_frames"], decoded, cfg.max_frames)
    table = obs.clip
    if source is not None:
        table = table.set_column(
            table.schema.get_field_index("path"), "path", pa.array([source], pa.string())
        )
    obs.clip = table
    store.write_table(out_root, "observations/clip", clip.game_id, clip.clip_id, table)
    return obs


def _discard(delete: Any, out_root: str, game_id: str, clip_id: str) -> None:
    """Remove what a failed stage wrote for a clip, so no partial output stays visible."""
    try:
        delete(out_root, game_id, clip_id)
    except Exception as err:
        log.warning("cleaning up %s/%s failed: %s", game_id, clip_id, outputs.reason(err))


# --------------------------------------------------------------------------- team fit


def fit_location(out_root: str, game_id: str) -> str:
    from hoopray.teams import teams_dir

    return store.join(teams_dir(out_root, game_id), FIT_FILE)


def read_fit(out_root: str, game_id: str) -> mf.Fit | None:
    """The record of the game's last finished fit, or None."""
    try:
        data = json.loads(store.read_text(fit_location(out_root, game_id)))
    except (FileNotFoundError, ValueError):
        return None
    return mf.Fit(str(data["team_hash"]), dict(data["clips"]), bool(data.get("failed")))


def fit_teams(settings: Settings, game_id: str, game_dir: str, clips: Mapping[str, str]) -> dict:
    """Fit a game's team model from its stored crop sample; name it by the roster's colours.

    Returns:
        ``{"game_id", "status", "reason", "crops"}``.
    """
    from hoopray import teams

    result = {"game_id": game_id, "status": ClipStatus.OK.value, "reason": "", "crops": 0}
    directory = teams.teams_dir(settings.out_root, game_id)
    for name in (FIT_FILE, teams.MODEL_FILE, teams.META_FILE, teams.NAMING_FILE):
        store.delete(store.join(directory, name))
    try:
        cfg = teams_config(settings)
        sample, embeddings = teams.load_sample(directory)
        result["crops"] = len(sample)
        model = teams.fit_team_model(
            embeddings, cfg, sample=sample, meta={"game_id": game_id, "clips": sorted(clips)}
        )
        naming = None
        try:
            roster = outputs.read_roster(game_dir)
        except Exception as err:  # the clips fail at stage "roster" in finish_game
            log.warning("%s: teams stay unnamed: %s", game_id, outputs.reason(err))
            roster = None
        if roster is not None:
            naming = teams.name_clusters(model, roster, override=cfg.override)
            naming.evidence["source"] = "colours"
        teams.save_game(directory, model, sample, naming)
    except Exception as err:
        log.warning("team model of %s failed: %s", game_id, outputs.reason(err))
        result.update(status=ClipStatus.FAILED.value, reason=outputs.reason(err))
    record = {
        "team_hash": settings.hashes().team,
        "clips": dict(clips),
        "failed": result["status"] != ClipStatus.OK,
        "reason": result["reason"],
    }
    store.write_text(fit_location(settings.out_root, game_id), json.dumps(record, indent=2))
    return result


# --------------------------------------------------------------------------- finish


def team_model_present(out_root: str, game_id: str) -> bool:
    from hoopray import teams

    return store.is_file(store.join(teams.teams_dir(out_root, game_id), teams.MODEL_FILE))


def load_team_model(out_root: str, game_id: str) -> Any:
    """The game's fitted :class:`~hoopray.teams.TeamModel`, or None when it has none."""
    from hoopray import teams

    if not team_model_present(out_root, game_id):
        return None
    return teams.TeamModel.load(teams.teams_dir(out_root, game_id), trusted_root=out_root)


def render_clip(settings: Settings, row: Mapping[str, Any], game_dir: str) -> dict[str, Any]:
    """Render one clip's annotated video (CPU task). OUTPUT: the row with
    ``seconds_render``, or failed at stage ``render``."""
    from hoopray import teams
    from hoopray.render import render, render_options

    out = settings.out_root
    game_id, clip_id = str(row["game_id"]), str(row["clip_id"])
    started = time.perf_counter()
    try:
        tracks = store.read_partition(out, "observations/tracks", game_id, clip_id)
        if tracks is None:
            raise FileNotFoundError(f"{game_id}/{clip_id} has no observations to render")
        ids = outputs.read_identities(out, game_id, clip_id)
        roster = outputs.read_roster(game_dir)
        naming = teams.load_naming(teams.teams_dir(out, game_id))
        with store.local_copy(str(row["path"])) as local:
            render(
                str(local),
                tracks,
                ids,
                roster,
                naming,
                outputs.video_path(out, game_id, clip_id),
                crf=int(settings.output.get("crf", 23)),
                **render_options(settings.output),
            )
        return {**row, "seconds_render": time.perf_counter() - started}
    except Exception as err:
        log.warning("render %s/%s failed: %s", game_id, clip_id, outputs.reason(err))
        return {
            **row,
            "status": ClipStatus.FAILED.value,
            "stage": "render",
            "reason": outputs.reason(err),
            "seconds_render": time.perf_counter() - started,
        }


def resolve_game_clips(
    observations: Mapping[str, Any],
    roster: Any,
    naming: Any,
    model: Any,
    cfg: Any,
    *,
    override: Any = None,
) -> tuple[dict[str, tuple[Any, float]], Any, bool]:
    """Resolve a game's clips; refine the team naming with the game's confirmed numbers
    and resolve again when that changed it (pure: the pipeline and the sweep share it).

    Returns:
        clip id -> (identities, seconds), the refined naming, whether it changed.
    """
    from hoopray import teams
    from hoopray.resolve import resolve

    def resolve_all(naming: Any) -> dict[str, tuple[Any, float]]:
        result = {}
        for clip_id, obs in observations.items():
            started = time.perf_counter()
            ids = resolve(obs, roster, naming, cfg, team_model=model)
            result[clip_id] = (ids, time.perf_counter() - started)
        return result

    resolved = resolve_all(naming)
    confirmed = teams.confirmed_numbers(ids.tracks for ids, _ in resolved.values())
    refined, changed = teams.refine_naming(model, roster, naming, confirmed, override=override)
    if changed:
        log.info("team naming changed by confirmed numbers; resolving again")
        resolved = resolve_all(refined)
    return resolved, refined, changed


def finish_game(
    settings: Settings,
    game: Mapping[str, Any],
    rows: Sequence[Mapping[str, Any]],
    render_remote: Any = None,
) -> list[dict[str, Any]]:
    """Resolve a game's clips, render them, and write their status, the manifest and the
    report (CPU task, one per game).

    Args:
        settings: the run's settings.
        game: ``game_id``, ``game_dir``, ``roster_fingerprint``, ``removed`` (clip ids that
            left the archive), ``fit`` (the team fit's record or None) and ``clips``: clip
            id -> ``{"resolve": bool, "render": bool}`` of the plan.
        rows: a status row per clip to finish (observed now, or observed before).
        render_remote: a Ray remote of :func:`render_clip` to render the clips in
            parallel, or None to render them here one by one.

    Returns:
        The final status row of every clip of ``rows``.
    """
    from hoopray import teams
    from hoopray.resolve import ResolveConfig

    out = settings.out_root
    game_id, game_dir = str(game["game_id"]), str(game["game_dir"])
    hashes = settings.hashes()
    rows = sorted((dict(r) for r in rows), key=lambda r: str(r["clip_id"]))
    plans = game["clips"]
    for clip_id in game.get("removed", ()):
        outputs.delete_clip(out, game_id, clip_id)
    todo = [r for r in rows if r["status"] == ClipStatus.OK and plans[r["clip_id"]]["resolve"]]
    done: dict[str, dict[str, Any]] = {r["clip_id"]: r for r in rows}
    try:
        roster = outputs.read_roster(game_dir)
    except Exception as err:
        roster, why = None, outputs.reason(err)
        for r in todo:
            done[r["clip_id"]] = {
                **r,
                "status": ClipStatus.FAILED.value,
                "stage": "roster",
                "reason": why,
            }
        todo = []
    else:
        if roster is None:
            log.warning("%s: %s", game_id, NO_ROSTER)
        else:
            outputs.keep_roster_copy(out, game_id, game_dir)
    cfg = ResolveConfig.from_mapping(settings.resolve)
    model = load_team_model(out, game_id)
    if model is not None:
        model.knn_k = int(settings.teams.get("knn_k", model.knn_k))
    directory = teams.teams_dir(out, game_id)
    naming = teams.load_naming(directory)
    observations = {}
    for r in todo:
        try:
            observations[r["clip_id"]] = outputs.read_observations(out, game_id, r["clip_id"])
        except Exception as err:
            done[r["clip_id"]] = {
                **r,
                "status": ClipStatus.FAILED.value,
                "stage": "resolve",
                "reason": outputs.reason(err),
            }

    override = teams_config(settings).override
    resolved, refined, changed = resolve_game_clips(
        observations, roster, naming, model, cfg, override=override
    )
    if refined is not None and refined is not naming:
        refined.evidence["changed_by_numbers"] = changed
        teams.save_naming(refined, directory)
    entry = mf.load_game(out, game_id) or mf.GameEntry()
    to_render = []
    for clip_id, (ids, seconds) in resolved.items():
        row = done[clip_id]
        try:
            outputs.delete_identities(out, game_id, clip_id)
            outputs.write_identities(out, game_id, clip_id, ids)
        except Exception as err:
            _discard(outputs.delete_identities, out, game_id, clip_id)
            done[clip_id] = {
                **row,
                "status": ClipStatus.FAILED.value,
                "stage": "resolve",
                "reason": outputs.reason(err),
            }
            continue
        warning = {"stage": "roster", "reason": NO_ROSTER} if roster is None else {}
        statuses = ids.tracks.column("status").to_pylist()
        digest = outputs.identities_hash(ids)
        done[clip_id] = {
            **row,
            **warning,
            "confirmed": statuses.count("confirmed"),
            "seconds_resolve": seconds,
            "identities_hash": digest,
        }
    for r in rows:
        row = done[r["clip_id"]]
        if row["status"] != ClipStatus.OK or not plans[r["clip_id"]]["render"]:
            continue
        if not bool(settings.output.get("render", True)):
            continue
        old = entry.clips.get(row["clip_id"])
        digest = row.get("identities_hash") or (old.identities_hash if old else "")
        unchanged = (
            old is not None
            and old.render_hash == hashes.render
            and old.identities_hash == digest
            and store.is_file(outputs.video_path(out, game_id, row["clip_id"]))
        )
        if not unchanged:
            to_render.append(row)
    if render_remote is not None and to_render:
        import ray

        rendered = ray.get([render_remote.remote(settings, r, game_dir) for r in to_render])
    else:
        rendered = [render_clip(settings, r, game_dir) for r in to_render]
    for row in rendered:
        done[row["clip_id"]] = row
    final = [done[r["clip_id"]] for r in rows]
    for row in final:
        outputs.write_status(out, row)
    _update_entry(entry, settings, game, final)
    mf.save_game(out, game_id, entry)
    if settings.output.get("report", True):
        _write_report(out, game_id)
    return [{k: row.get(k) for k in (*outputs.STATUS_KEYS,)} for row in final]


def _update_entry(
    entry: mf.GameEntry, settings: Settings, game: Mapping[str, Any], rows: Sequence[Mapping]
) -> None:
    hashes = settings.hashes()
    fit = game.get("fit")
    if fit is not None:
        entry.team_hash, entry.team_clips, entry.team_failed = fit.team_hash, fit.clips, fit.failed
    entry.roster_fingerprint = str(game.get("roster_fingerprint", ""))
    entry.resolve_hash = hashes.resolve
    for clip_id in game.get("removed", ()):
        entry.clips.pop(clip_id, None)
    for row in rows:
        old = entry.clips.get(str(row["clip_id"]))
        entry.clips[str(row["clip_id"])] = mf.ClipEntry(
            fingerprint=str(row["fingerprint"]),
            status=str(row["status"]),
            stage=str(row["stage"] or "") or None,
            reason=str(row["reason"] or "") or None,
            observe_hash=hashes.observe,
            render_hash=hashes.render,
            identities_hash=str(row.get("identities_hash") or "")
            or (old.identities_hash if old else ""),
        )


def _write_report(out_root: str, game_id: str) -> None:
    try:
        from hoopray import report

        report.write_game_report(out_root, game_id, update_index=False)
    except Exception as err:
        log.warning("report of %s failed: %s", game_id, outputs.reason(err))
