"""The streaming graph: one Ray Data execution over the archive, no barrier across games.

::

    driver: discover + plan (per game: one listing, one manifest read)
      │ work items, game by game: [sample(game), observe(clip) ...]
      ▼
    Ray Data: map_batches(GpuWorker)            GPU actor pool, autoscaling, 1 -> 1
      │ result rows stream back to the driver as each item finishes
      ▼
    driver: a game's sample done   -> fit_teams task (CPU)
            a game's clips and fit done -> finish_game task (CPU): resolve, render
                                           (render_clip tasks), status, manifest, report
      ▼
    driver: counts; index.html and the run summary once per run

Observing needs no team model, so pass 1 and pass 2 of a game run side by side, and a
game is finished as soon as its own work is done while other games are still in pass 1.
The driver holds a few counters per game and one small row per clip; everything else is
read and written by the workers in the store.

A node lost mid-run takes its actors and tasks down: Ray restarts the actors and retries
their items (``ray.observe.max_task_retries``); if the execution itself fails, the items
without a result run again in a new execution (at most ``ray.rounds``), and each finished
item was written whole, so a retry equals an undisturbed run.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hoopray import manifest as mf
from hoopray import outputs, stages, store
from hoopray.settings import Settings
from hoopray.summary import RunSummary, summarise
from hoopray.types import ClipRef, ClipStatus

if TYPE_CHECKING:
    from hoopray.video import GameInput

log = logging.getLogger(__name__)

GAME_ROW = "_game"


# --------------------------------------------------------------------------- planning


@dataclass
class RunInputs:
    """What discovery and the manifest say this run must do."""

    games: list[GameInput]
    plans: list[mf.GamePlan]
    entries: dict[str, mf.GameEntry | None]
    fits: dict[str, mf.Fit | None]
    hashes: mf.StageHashes
    bytes_read: int = 0

    @property
    def idle(self) -> bool:
        return all(p.idle for p in self.plans)


def _fingerprints_location(out_root: str, game_id: str) -> str:
    return store.join(out_root, *mf.FINGERPRINTS_DIR, f"{store.check_id(game_id)}.json")


def plan_run(
    settings: Settings,
    data_root: str | None = None,
    *,
    games_filter: Sequence[str] | None = None,
    force: bool = False,
    retry_failed: bool = False,
) -> RunInputs:
    """Discover the games and plan which stages run for each clip (no Ray, no models).

    Per game: one listing of its folder, one read of its manifest entry and fingerprint
    cache, one listing of its observation markers; a clip's marker is read only when the
    manifest does not already vouch for it. Unchanged clips are never opened.
    """
    from hoopray import video

    out = settings.out_root
    caches: dict[str, Any] = {}

    def cache_for(game_id: str) -> Any:
        if game_id not in caches:
            caches[game_id] = video.FingerprintCache.load(_fingerprints_location(out, game_id))
        return caches[game_id]

    games = video.discover_games(data_root or settings.data_root, fingerprints=cache_for)
    if games_filter:
        wanted = set(games_filter)
        games = [g for g in games if g.game_id in wanted]
    for game_id, cache in caches.items():
        if cache.changed:
            cache.save(_fingerprints_location(out, game_id))
    hashes = settings.hashes()
    plans, entries, fits = [], {}, {}
    for game in games:
        entry = mf.load_game(out, game.game_id)
        fit = stages.read_fit(out, game.game_id)
        if fit is not None and not fit.failed and not stages.team_model_present(out, game.game_id):
            fit = None
        clips = {c.clip_id: c.fingerprint for c in game.clips}
        observed = _observed(out, game.game_id, clips, entry, hashes) if clips else {}
        inputs = mf.GameInputs(
            game_id=game.game_id,
            clips=clips,
            roster_fingerprint=outputs.roster_fingerprint(game.roster_path),
            observed=observed,
            fit=fit if game.clips else mf.Fit(hashes.team, {}, True),
        )
        plans.append(
            mf.plan_game(
                inputs,
                entry,
                hashes,
                refit_fraction=settings.refit_fraction,
                force=force,
                retry_failed=retry_failed,
            )
        )
        entries[game.game_id], fits[game.game_id] = entry, fit
    bytes_read = sum(int(getattr(g, "bytes_read", 0)) for g in games)
    return RunInputs(games, plans, entries, fits, hashes, bytes_read)


def _observed(
    out: str,
    game_id: str,
    clips: Mapping[str, str],
    entry: mf.GameEntry | None,
    hashes: mf.StageHashes,
) -> dict[str, tuple[str, str]]:
    """(fingerprint, observe hash) of the game's clips with complete observations: one
    listing of the game's markers; a marker is read only where the manifest does not
    already record the same clip, fingerprint and observe config as done."""
    found = {}
    for clip_id in outputs.observed_clips(out, game_id):
        if clip_id not in clips:
            continue
        prev = entry.clips.get(clip_id) if entry else None
        done = (clips[clip_id], hashes.observe)
        if (
            prev is not None
            and prev.status == ClipStatus.OK
            and ((prev.fingerprint, prev.observe_hash) == done)
        ):
            found[clip_id] = done
        elif (marker := outputs.observation_marker(out, game_id, clip_id)) is not None:
            found[clip_id] = marker
    return found


# --------------------------------------------------------------------------- progress


class Progress:
    """Per stage: items done out of the total, and an ETA from that stage's throughput."""

    def __init__(self, totals: Mapping[str, int]) -> None:
        self.totals = dict(totals)
        self.done = dict.fromkeys(totals, 0)
        self.started = time.monotonic()

    def step(self, stage: str, game_id: str, clip_id: str, status: str, why: str = "") -> None:
        self.done[stage] = self.done.get(stage, 0) + 1
        done, total = self.done[stage], self.totals.get(stage, 0)
        elapsed = time.monotonic() - self.started
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (total - done) / rate if rate > 0 else float("nan")
        log.info(
            "%s %d/%d (%s/%s %s), %.2f/min, ETA %s%s",
            stage,
            done,
            total,
            game_id,
            clip_id,
            status,
            rate * 60,
            f"{eta:.0f} s" if eta == eta else "?",
            f": {why}" if why else "",
        )

    def line(self) -> str:
        return ", ".join(f"{s} {self.done[s]}/{self.totals[s]}" for s in self.totals)


# --------------------------------------------------------------------------- Ray plumbing


def configure_ray_data(settings: Settings) -> None:
    """Progress bars, and dropped blocks tolerated (a clip that kills its actor on every
    try fails alone: the driver gives it a failed row). Call after ``ray.init``."""
    import ray.data

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = bool(settings.ray.get("progress_bars", True))
    ctx.enable_operator_progress_bars = ctx.enable_progress_bars
    ctx.max_errored_blocks = -1


def _actor_pool(spec: Any, in_flight: int | None = None) -> Any:
    """An actor pool of ``spec`` actors (an int, or ``[min, max]`` to autoscale)."""
    from ray.data import ActorPoolStrategy

    extra = {"max_tasks_in_flight_per_actor": int(in_flight)} if in_flight else {}
    if isinstance(spec, Sequence) and not isinstance(spec, str):
        low, high = (int(v) for v in spec)
        return ActorPoolStrategy(min_size=low, max_size=high, **extra)
    return ActorPoolStrategy(size=int(spec or 1), **extra)


def _gpu_dataset(
    settings: Settings,
    items: list[dict[str, Any]],
    in_flight: int | None = None,
    registry: Any = None,
) -> Any:
    """The GPU operator over ``items``; ``in_flight`` overrides ``ray.observe.in_flight``;
    the actors add themselves to ``registry`` (a remote :class:`stages.ActorRegistry`)."""
    import ray.data

    pool = settings.gpu
    in_flight = in_flight or pool.get("in_flight", 1)
    ds = ray.data.from_items(items, override_num_blocks=max(1, len(items)))
    return ds.map_batches(
        stages.GpuWorker,
        fn_constructor_kwargs={"settings": settings, "registry": registry},
        batch_size=1,
        compute=_actor_pool(pool.get("actors", 1), in_flight),
        num_gpus=float(pool.get("num_gpus", 0)),
        num_cpus=float(pool.get("num_cpus", 1)),
        max_restarts=int(pool.get("max_restarts", -1)),
        max_task_retries=int(pool.get("max_task_retries", 2)),
    )


def _stream(
    settings: Settings,
    items: list[dict[str, Any]],
    sink: queue.Queue,
    in_flight: int | None,
    registry: Any = None,
) -> None:
    """Run the GPU dataset; put each result row on ``sink``, then ``None`` or the error."""
    try:
        for row in _gpu_dataset(settings, items, in_flight, registry).iter_rows():
            sink.put(("row", dict(row)))
        sink.put(("end", None))
    except BaseException as err:
        sink.put(("end", err))


def _cpu_remote(fn: Any, settings: Settings, name: str) -> Any:
    import ray

    cfg = settings.ray.get(name) or {}
    return ray.remote(
        num_cpus=float(cfg.get("num_cpus", 1)), max_retries=int(cfg.get("max_retries", 3))
    )(fn)


# --------------------------------------------------------------------------- execution


@dataclass
class _Game:
    """The driver's state of one game: counters and its clips' rows, nothing more."""

    game: GameInput
    plan: mf.GamePlan
    fit: mf.Fit | None
    waiting_fit: bool
    pending: set[str] = field(default_factory=set)
    rows: list[dict[str, Any]] = field(default_factory=list)
    started: bool = False


def _longest_first(clips: Sequence[ClipRef], chosen: set[str]) -> list[ClipRef]:
    """The ``chosen`` clips, largest file first: a game's longest clips start early, so the
    run ends on short items instead of one long clip holding a GPU while the others idle."""
    picked = [c for c in clips if c.clip_id in chosen]
    return sorted(picked, key=lambda c: -c.size)


def _games_longest_clip_first(per_game: Sequence[tuple[Sequence[int], list[Any]]]) -> list[Any]:
    """Each game's items together; games whose largest clip to observe is largest first,
    then the games with more bytes to observe (ties keep their order).

    ``per_game``: per game, the sizes of its clips to observe and its work items. The
    actors take items in this order, each as soon as it frees a slot, so the run ends with
    the last items it handed out: ordered this way those are the clips of games without a
    long clip, and the actors finish close together, while each game's clips still come
    together (it is finished as soon as they are done).
    """

    def key(k: int) -> tuple[int, int]:
        sizes = per_game[k][0]
        return -max(sizes, default=0), -sum(sizes)

    return [item for k in sorted(range(len(per_game)), key=key) for item in per_game[k][1]]


def clip_item(game: GameInput, clip: Any) -> dict[str, Any]:
    """The GPU work item that observes one clip."""
    return {
        "kind": stages.OBSERVE,
        "game_id": game.game_id,
        "clip_id": clip.clip_id,
        "path": str(clip.path),
        "fingerprint": clip.fingerprint,
        "game_dir": str(game.directory),
        "clips": "",
    }


def sample_item(game: GameInput) -> dict[str, Any]:
    """The GPU work item of a game's pass 1 (its clips' sampled frames)."""
    clips = [[c.clip_id, str(c.path), c.fingerprint] for c in game.clips]
    return {
        "kind": stages.SAMPLE,
        "game_id": game.game_id,
        "clip_id": "",
        "path": str(game.directory),
        "fingerprint": "",
        "game_dir": str(game.directory),
        "clips": json.dumps(clips),
    }


def _item_key(row: Mapping[str, Any]) -> tuple[str, str, str]:
    return str(row["kind"]), str(row["game_id"]), str(row["clip_id"])


SCHEDULES = ("streaming", "barrier")


def execute(settings: Settings, run: RunInputs) -> RunSummary:
    """Run the planned work on the connected Ray cluster and return the summary.

    ``ray.schedule``: ``streaming`` (the default; no barrier across games) or ``barrier``
    (every game's pass 1, then every clip's observe, then every game's finish: the old
    schedule, kept for ``benchmarks/cluster_sim.py``). Requires ``ray.init`` to have been
    called (by the entry point).
    """
    schedule = str(settings.ray.get("schedule") or "streaming")
    if schedule not in SCHEDULES:
        raise ValueError(f"ray.schedule must be one of {SCHEDULES}; got {schedule!r}")
    return _Execution(settings, run).run(barrier=schedule == "barrier")


class _Execution:
    """The driver's side of one run: counters per game, CPU tasks in flight, result rows."""

    def __init__(self, settings: Settings, run: RunInputs) -> None:
        self.settings, self.run_inputs = settings, run
        self.out = settings.out_root
        self.fit_remote = _cpu_remote(stages.fit_teams, settings, "resolve")
        self.finish_remote = _cpu_remote(stages.finish_game, settings, "resolve")
        self.render_remote = _cpu_remote(stages.render_clip, settings, "render")
        self.states: dict[str, _Game] = {}
        self.items: list[dict[str, Any]] = []
        self.fits_running: dict[Any, str] = {}
        self.finishing: dict[Any, str] = {}
        self.results: list[dict[str, Any]] = []
        self.done_items: set[tuple[str, str, str]] = set()
        self.teams_seconds = 0.0
        self.hold = False  # barrier schedule: no game is finished before all are observed
        per_game: list[tuple[list[int], list[dict[str, Any]]]] = []
        for game, plan in zip(run.games, run.plans, strict=True):
            if plan.idle:
                continue
            state = _Game(game, plan, run.fits.get(game.game_id), waiting_fit=plan.fit_teams)
            items = []
            if plan.fit_teams and game.clips:
                items.append(sample_item(game))
            else:
                state.waiting_fit = False
            for clip in game.clips:
                cp = plan.clip(clip.clip_id)
                if cp.observe:
                    state.pending.add(clip.clip_id)
                elif cp.resolve or cp.render:
                    state.rows.append(_carried_row(self.out, game, clip))
            observed = _longest_first(game.clips, state.pending)
            items.extend(clip_item(game, clip) for clip in observed)
            per_game.append(([c.size for c in observed], items))
            self.states[game.game_id] = state
        self.items = _games_longest_clip_first(per_game)
        self.progress = Progress(
            {
                "teams": sum(1 for i in self.items if i["kind"] == stages.SAMPLE),
                "observed": sum(1 for i in self.items if i["kind"] == stages.OBSERVE),
                "finished": sum(
                    1 for s in self.states.values() if s.plan.resolves or s.plan.fit_teams
                ),
            }
        )

    def run(self, barrier: bool = False) -> RunSummary:
        started = time.perf_counter()
        if barrier:
            self.hold = True
            self._gpu([i for i in self.items if i["kind"] == stages.SAMPLE])
            self._wait(lambda: bool(self.fits_running))
            self._gpu([i for i in self.items if i["kind"] == stages.OBSERVE])
            self.hold = False
        for state in self.states.values():
            self._maybe_finish(state)
        self._gpu(self.items)
        self._wait(lambda: bool(self.fits_running or self.finishing))
        discovery = _discovery_failures(self.run_inputs.games)
        for row in discovery:
            if row.pop("write"):
                outputs.write_status(self.out, row)
        if self.settings.output.get("report", True):
            _write_index(self.out)
        results = self.results
        stage_seconds = {
            "teams": self.teams_seconds,
            "observe": sum(float(r.get("seconds_observe") or 0) for r in results),
            "resolve": sum(float(r.get("seconds_resolve") or 0) for r in results),
            "render": sum(float(r.get("seconds_render") or 0) for r in results),
        }
        return summarise(results + discovery, stage_seconds, time.perf_counter() - started)

    # ----------------------------------------------------------------- GPU stream

    def _gpu(self, items: list[dict[str, Any]]) -> None:
        """Stream ``items`` through the GPU pool; run what is left again if an execution
        fails, and give a failed row to an item whose worker died on every try.

        With ``ray.observe.in_flight`` above 1 an item queued behind one that kills its
        actor loses tries with it; items left without a row by such a round get one more
        round that queues one item per actor at a time, where only the item that kills its
        actor fails.
        """
        import ray

        rounds = int(self.settings.ray.get("rounds", 3))
        queued = int(self.settings.gpu.get("in_flight", 1) or 1)
        todo = [i for i in items if _item_key(i) not in self.done_items]
        tried: dict[tuple[str, str, str], int] = {}
        for attempt in range(1, rounds + 1):
            if not todo:
                break
            for item in todo:
                tried[_item_key(item)] = tried.get(_item_key(item), 0) + 1
            sink: queue.Queue = queue.Queue()
            registry = ray.remote(num_cpus=0)(stages.ActorRegistry).remote()
            thread = threading.Thread(
                target=_stream, args=(self.settings, todo, sink, queued, registry), daemon=True
            )
            thread.start()
            error = self._drain(sink)
            thread.join()
            # the finished execution's actors free their GPUs and CPUs for the CPU tasks
            # and the next round (Ray Data alone may keep a restarted actor alive)
            stages.stop_actors(registry)
            todo = [i for i in todo if _item_key(i) not in self.done_items]
            if error is None and (queued == 1 or not todo):
                break
            why = outputs.reason(error) if error is not None else "a worker died on every try"
            log.warning(
                "the GPU execution lost items (%s); %d items run again, one per actor at a "
                "time (round %d of %d)",
                why,
                len(todo),
                attempt + 1,
                rounds,
            )
            queued = 1
        tries = int(self.settings.gpu.get("max_task_retries", 2)) + 1
        for item in todo:
            rounds_tried = tried.get(_item_key(item), 1)
            over = f" in each of {rounds_tried} rounds" if rounds_tried > 1 else ""
            why = (
                f"the {item['kind']} worker died on every try ({tries}{over}): a crash or "
                "out of memory; see the Ray logs"
            )
            log.warning("%s %s/%s failed: %s", item["kind"], item["game_id"], item["clip_id"], why)
            stage = "observe" if item["kind"] == stages.OBSERVE else "teams"
            failed = {
                "kind": item["kind"],
                **outputs.status_row(item, status=ClipStatus.FAILED.value, stage=stage, reason=why),
            }
            if item["kind"] == stages.OBSERVE:
                stages._discard(
                    outputs.delete_observations, self.out, item["game_id"], item["clip_id"]
                )
                outputs.write_status(self.out, failed)
            self.done_items.add(_item_key(item))
            self._on_row(failed)

    def _drain(self, sink: queue.Queue) -> BaseException | None:
        """Feed result rows to :meth:`_on_row`, polling the CPU tasks, until the stream ends."""
        while True:
            try:
                kind, value = sink.get(timeout=0.2)
            except queue.Empty:
                self._poll(0)
                continue
            if kind == "end":
                return value
            key = _item_key(value)
            if key not in self.done_items:
                self.done_items.add(key)
                self._on_row(value)
            self._poll(0)

    def _on_row(self, row: dict[str, Any]) -> None:
        state = self.states[str(row["game_id"])]
        game = state.game
        if row["kind"] == stages.SAMPLE:
            self.teams_seconds += float(row.get("seconds_observe") or 0.0)
            self.progress.step(
                "teams", game.game_id, stages.TEAMS_ROW, row["status"], row["reason"]
            )
            if row["status"] == ClipStatus.OK:
                clips = {c.clip_id: c.fingerprint for c in game.clips}
                ref = self.fit_remote.remote(
                    self.settings, game.game_id, str(game.directory), clips
                )
                self.fits_running[ref] = game.game_id
                return
            log.warning("%s: no team model (%s); teams stay unknown", game.game_id, row["reason"])
            _record_fit_failure(self.settings, state, row["reason"])
            state.waiting_fit = False
        else:
            self.progress.step(
                "observed", row["game_id"], row["clip_id"], row["status"], row["reason"]
            )
            state.pending.discard(str(row["clip_id"]))
            state.rows.append(outputs.status_row(row, **{k: row[k] for k in outputs.STATUS_KEYS}))
        self._maybe_finish(state)

    # ----------------------------------------------------------------- CPU tasks

    def _maybe_finish(self, state: _Game) -> None:
        if self.hold or state.started or state.waiting_fit or state.pending:
            return
        state.started = True
        if not (state.plan.resolves or state.plan.fit_teams):
            self.results.extend(state.rows)
            return
        game = state.game
        payload = {
            "game_id": game.game_id,
            "game_dir": str(game.directory),
            "roster_fingerprint": outputs.roster_fingerprint(game.roster_path),
            "removed": list(state.plan.removed),
            "fit": state.fit,
            "clips": {
                c.clip_id: {"resolve": c.resolve, "render": c.render} for c in state.plan.clips
            },
        }
        ref = self.finish_remote.remote(self.settings, payload, state.rows, self.render_remote)
        self.finishing[ref] = game.game_id

    def _wait(self, busy: Any) -> None:
        while busy():
            self._poll(1.0)

    def _poll(self, timeout: float | None) -> None:
        import ray

        refs = [*self.fits_running, *self.finishing]
        if not refs:
            return
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=timeout)
        for ref in ready:
            if ref in self.fits_running:
                self._fitted(ref)
            else:
                self._finished(ref)

    def _fitted(self, ref: Any) -> None:
        import ray

        game_id = self.fits_running.pop(ref)
        state = self.states[game_id]
        try:
            fit = ray.get(ref)
        except Exception as err:
            fit = {"status": ClipStatus.FAILED.value, "reason": outputs.reason(err)}
            _record_fit_failure(self.settings, state, fit["reason"])
        if fit["status"] != ClipStatus.OK:
            log.warning("%s: no team model (%s); teams stay unknown", game_id, fit["reason"])
        state.fit = stages.read_fit(self.out, game_id)
        state.waiting_fit = False
        self._maybe_finish(state)

    def _finished(self, ref: Any) -> None:
        import ray

        game_id = self.finishing.pop(ref)
        state = self.states[game_id]
        try:
            rows = ray.get(ref)
        except Exception as err:
            why = outputs.reason(err)
            log.warning("finishing %s failed: %s", game_id, why)
            rows = [
                {**r, "status": ClipStatus.FAILED.value, "stage": "resolve", "reason": why}
                if r["status"] == ClipStatus.OK
                else r
                for r in state.rows
            ]
            for row in rows:
                outputs.write_status(self.out, row)
        self.results.extend(rows)
        confirmed = sum(int(r.get("confirmed") or 0) for r in rows)
        failed = sum(r["status"] != ClipStatus.OK for r in rows)
        self.progress.step(
            "finished",
            game_id,
            "*",
            f"{len(rows)} clips, {confirmed} confirmed",
            f"{failed} failed" if failed else "",
        )
        state.rows = []


def _record_fit_failure(settings: Settings, state: _Game, why: str) -> None:
    record = {
        "team_hash": settings.hashes().team,
        "clips": {c.clip_id: c.fingerprint for c in state.game.clips},
        "failed": True,
        "reason": why,
    }
    try:
        store.write_text(
            stages.fit_location(settings.out_root, state.game.game_id), json.dumps(record, indent=2)
        )
    except Exception as err:
        log.warning("%s: could not record the failed fit: %s", state.game.game_id, err)
    state.fit = stages.read_fit(settings.out_root, state.game.game_id)


def _carried_row(out_root: str, game: GameInput, clip: Any) -> dict[str, Any]:
    """The row of a clip observed by an earlier run (frames and seconds from its marker)."""
    row = outputs.status_row(
        {
            "game_id": game.game_id,
            "clip_id": clip.clip_id,
            "path": str(clip.path),
            "fingerprint": clip.fingerprint,
        }
    )
    table = store.read_partition(out_root, "observations/clip", game.game_id, clip.clip_id)
    if table is not None and table.num_rows:
        first = table.slice(0, 1).to_pylist()[0]
        row["frames"], row["seconds_observe"] = (
            int(first["frames"] or 0),
            float(first["seconds"] or 0),
        )
    return row


def _write_index(out_root: str) -> None:
    try:
        from hoopray import report

        report.write_index(out_root)
    except Exception as err:
        log.warning("index of %s failed: %s", out_root, outputs.reason(err))


def _discovery_failures(games: Iterable[GameInput]) -> list[dict[str, Any]]:
    """Status rows for what discovery left out: ``failed`` for a file that could not be
    used, ``skipped`` for a file that is not a video.

    A file gets a row under its id; when a usable clip (or an earlier row, in name order)
    already has that id (``a.mov`` beside ``a.mp4``, ``notes.txt`` beside ``notes.mp4``)
    the row is named after the whole file name (``a.mov``). Problems of the game folder
    itself share one failed row with clip id :data:`GAME_ROW`. ``write`` says whether the
    row can be stored without replacing another clip's row.
    """
    from hoopray.video import sanitise_id

    rows = []
    for game in games:
        taken = {c.clip_id for c in game.clips}
        directory = str(game.directory)
        own = game.folder_problems
        files = [(n, w, ClipStatus.FAILED) for n, w in game.problems if (n, w) not in own]
        files += [(n, w, ClipStatus.SKIPPED) for n, w in game.skipped]
        for name, why, status in sorted(files, key=lambda f: f[0]):
            clip_id = sanitise_id(name.rsplit(".", 1)[0])
            if clip_id in taken:
                clip_id = sanitise_id(name)
            clip = {
                "game_id": game.game_id,
                "clip_id": clip_id,
                "path": f"{directory.rstrip('/')}/{name}",
                "fingerprint": "",
            }
            row = outputs.status_row(clip, status=status.value, stage="discover", reason=why)
            row["write"] = clip_id not in taken
            taken.add(clip_id)
            rows.append(row)
        folder = [
            why if name == store.name_of(directory) else f"{name}: {why}" for name, why in own
        ]
        if folder:
            clip = {
                "game_id": game.game_id,
                "clip_id": GAME_ROW,
                "path": directory,
                "fingerprint": "",
            }
            row = outputs.status_row(
                clip, status=ClipStatus.FAILED.value, stage="discover", reason="; ".join(folder)
            )
            row["write"] = GAME_ROW not in taken
            rows.append(row)
    return rows
