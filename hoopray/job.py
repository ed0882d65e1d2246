"""The body of the job entry points: preflight, the lease on the output root, plan, run,
summary. Exit codes: 0 all done, 1 a clip failed, 2 the job could not start, 3 another run
holds the output root."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hoopray import outputs, store
from hoopray.config import redact, to_plain
from hoopray.settings import Settings, ray_init_kwargs
from hoopray.summary import RunSummary, summarise, with_results

log = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILED, EXIT_CANNOT_START, EXIT_LOCKED = 0, 1, 2, 3


@dataclass(frozen=True)
class Inputs:
    """What :func:`check_inputs` found: storage problems, missing weights, and whether any
    game folder is under ``data.root`` (False when it cannot be listed)."""

    storage: list[str]
    weights: list[str]
    has_games: bool


def check_inputs(cfg: Any, data_root: str, out_root: str) -> Inputs:
    from hoopray.config import missing_weights

    storage = []
    for what, location in (("data.root", data_root), ("output.root", out_root)):
        try:
            store.check_reachable(location, what)
        except store.StorageError as err:
            storage.append(f"storage: {redact(str(err))}")
    has_games = False
    if not any("data.root" in p for p in storage):
        try:
            has_games = any(e.is_dir for e in store.list_dir(data_root))
        except Exception:
            has_games = False
    return Inputs(storage, missing_weights(cfg, base_dir=Path.cwd()), has_games)


def preflight(cfg: Any, data_root: str, out_root: str, inputs: Inputs | None = None) -> list[str]:
    """Problems that stop a job before Ray starts: unusable storage, missing weights, no
    input games."""
    found = inputs or check_inputs(cfg, data_root, out_root)
    problems = list(found.storage)
    if found.weights:
        problems.append(
            "model weights are not available:\n  - "
            + "\n  - ".join(found.weights)
            + "\n`make weights` fetches what can be downloaded: the Hugging Face models into "
            "the cache, the Roboflow models with ROBOFLOW_API_KEY set in the environment, "
            "EasyOCR's recogniser (give it the same overrides: make weights ARGS='...'). "
            "Provide the rest (see the README: Roboflow key, Hugging Face ids, local paths), "
            "or try the pipeline on generated data with tiny models:\n"
            "  python jobs/process_games.py +experiment=smoke"
        )
    if not any("data.root" in p for p in found.storage) and not found.has_games:
        problems.append(
            f"no input games under {data_root}: put each game in its own folder, "
            f"e.g. {data_root}/<game_id>/clip-01.mp4 and {data_root}/<game_id>/roster.yaml, "
            "or point data.root=/path/to/games (or s3://bucket/games) at them"
        )
    return problems


def write_run_summary(out_root: str, summary: RunSummary, extra: dict[str, Any]) -> str:
    """``<out>/_runs/<UTC timestamp>.json``: what one run did."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    data = {**summary.to_dict(), **extra}
    location = store.join(out_root, outputs.RUNS_DIR, f"{stamp}.json")
    return store.write_text(location, redact(json.dumps(data, indent=2, sort_keys=True)) + "\n")


def cluster_problem(address: str | None, timeout: float = 3.0) -> str | None:
    """Why no Ray cluster answers at ``address`` (None: local Ray, or one answers).

    ``auto`` is looked up as Ray does (``RAY_ADDRESS``, then the last ``ray start``); a
    ``host:port`` (or ``ray://host:port``) must accept a connection within ``timeout``.
    """
    import socket

    if not address or address == "local":
        return None
    target = str(address)
    if target == "auto":
        from ray._private.services import canonicalize_bootstrap_address

        try:
            found = canonicalize_bootstrap_address(target)
        except Exception as err:
            return f"no running Ray cluster found for ray.address=auto ({err})"
        if not found:
            return "no running Ray cluster found for ray.address=auto"
        target = found
    host_port = target.split("://", 1)[-1]
    host, _, port = host_port.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout):
            return None
    except (OSError, ValueError) as err:
        return f"no Ray cluster answered at ray.address={address!r} ({err})"


def _start_ray(cfg: Any, start_ray: Any) -> str | None:
    """Start or join Ray; an error message instead of a traceback when no cluster answers."""
    kwargs = ray_init_kwargs(cfg)
    problem = cluster_problem(kwargs.get("address"))
    if problem:
        return problem
    try:
        start_ray(**kwargs)
    except (ConnectionError, TimeoutError) as err:
        return (
            f"no Ray cluster answered at ray.address={kwargs.get('address')!r}: {redact(str(err))}"
        )
    return None


def run_job(
    cfg: Any,
    *,
    incremental: bool,
    start_ray: Any,
    hydra_dir: Path | None = None,
    demo: Callable[[], Any] | None = None,
) -> int:
    """The body of ``jobs/process_games.py`` and ``jobs/nightly.py``.

    Args:
        cfg: the composed config.
        incremental: plan from the manifest (nightly); otherwise ``cfg.force`` decides.
        start_ray: called with :func:`~hoopray.settings.ray_init_kwargs` once there is
            work to do (the entry point passes ``ray.init``).
        hydra_dir: the job's Hydra output dir, scrubbed if the config carries a secret.
        demo: composes the demo's config (:func:`hoopray.testing.demo.compose`); given only when
            ``data.root`` is the default one. When no game is under it and weights are
            missing, the job runs the demo (:mod:`hoopray.testing.demo`) instead of stopping.

    Returns:
        The exit code: 0 all done, 1 a clip failed, 2 the job could not start, 3 another
        run holds the output root.
    """
    from hoopray import lease as leases
    from hoopray import pipeline
    from hoopray.config import SecretInConfigError, check_no_secrets, scrub_hydra_dir
    from hoopray.summary import format_summary

    started = time.perf_counter()
    try:
        check_no_secrets(cfg)
    except SecretInConfigError as err:
        if hydra_dir is not None:
            scrub_hydra_dir(hydra_dir)
        print(f"error: {err}")
        return EXIT_CANNOT_START
    from hoopray.testing.smoke import input_node

    generated = input_node(cfg)
    if generated:
        from hoopray.testing.smoke import prepare

        try:
            prepare(to_plain(generated[1]))
        except Exception as err:
            print(
                f"error: the {generated[0]} run's inputs could not be built: {outputs.reason(err)}"
            )
            return EXIT_CANNOT_START
    endpoint = (to_plain(cfg.get("storage")) or {}).get("endpoint_url")
    if endpoint:
        os.environ["AWS_ENDPOINT_URL"] = str(endpoint)
    settings = Settings.from_cfg(cfg)
    inputs = check_inputs(cfg, settings.data_root, settings.out_root)
    problems = preflight(cfg, settings.data_root, settings.out_root, inputs)
    cluster = cluster_problem(ray_init_kwargs(cfg).get("address"))
    if cluster:
        problems.append(f"ray: {cluster}")
    if problems and demo is not None and not incremental:
        demo_cfg = _demo_config(cfg, settings.data_root, inputs, cluster, demo)
        if demo_cfg is not None:
            return _run_demo(demo_cfg, start_ray, hydra_dir)
    if problems:
        print("hoopray cannot start:\n\n" + "\n\n".join(problems))
        return EXIT_CANNOT_START
    job = "nightly" if incremental else "process_games"
    try:
        lease = leases.acquire(
            settings.out_root,
            stale_seconds=float(cfg.output.get("lock_stale_seconds", 600)),
            heartbeat_seconds=float(cfg.output.get("lock_heartbeat_seconds", 30)),
            job=job,
        )
    except leases.LeaseHeldError as err:
        print(f"hoopray cannot start: {err}")
        return EXIT_LOCKED
    with lease:
        return _run(cfg, settings, incremental, start_ray, started, job, pipeline, format_summary)


def _demo_config(
    cfg: Any, data_root: str, inputs: Inputs, cluster: str | None, demo: Callable[[], Any]
) -> Any | None:
    """The demo's config when the demo replaces this job (:func:`hoopray.testing.demo.wants_demo`)
    and prints why; None to stop as usual."""
    from omegaconf import open_dict

    from hoopray.config import check_weights
    from hoopray.testing import demo as demos

    if not demos.wants_demo(
        default_root=True,
        has_games=inputs.has_games,
        missing_weights=inputs.weights,
        other_problems=[*inputs.storage, *([cluster] if cluster else [])],
    ):
        return None
    demo_cfg = demo()
    tracker = to_plain(cfg.models.get("tracker"))
    if demos.keep_tracker(tracker, check_weights(tracker, base_dir=Path.cwd())):
        with open_dict(demo_cfg):
            demo_cfg.models.tracker = cfg.models.tracker
    print(demos.banner(data_root, inputs.weights, demo_cfg), flush=True)
    return demo_cfg


def _run_demo(demo_cfg: Any, start_ray: Any, hydra_dir: Path | None) -> int:
    from hoopray.testing import demo as demos

    code = run_job(demo_cfg, incremental=False, start_ray=start_ray, hydra_dir=hydra_dir)
    if code in (EXIT_OK, EXIT_FAILED):
        print(demos.footer(demo_cfg))
    return code


def _run(
    cfg: Any,
    settings: Settings,
    incremental: bool,
    start_ray: Any,
    started: float,
    job: str,
    pipeline: Any,
    format_summary: Any,
) -> int:
    run = pipeline.plan_run(
        settings,
        games_filter=cfg.data.get("games"),
        force=bool(cfg.get("force", False)) and not incremental,
        retry_failed=bool(cfg.get("retry_failed", False)),
    )
    extra = {
        "job": job,
        "run_id": settings.run_id,
        "data_root": settings.data_root,
        "hashes": vars(run.hashes),
        "fingerprint_bytes_read": run.bytes_read,
    }
    if run.idle:
        summary = summarise([], {}, time.perf_counter() - started)
        print(format_summary(summary))
        write_run_summary(settings.out_root, summary, extra)
        return EXIT_OK
    planned = sum(not c.idle for p in run.plans for c in p.clips)
    log.info("%d games, %d clips to process", sum(not p.idle for p in run.plans), planned)
    problem = _start_ray(cfg, start_ray)
    if problem:
        print(f"hoopray cannot start: {problem}")
        return EXIT_CANNOT_START
    pipeline.configure_ray_data(settings)
    summary = pipeline.execute(settings, run)
    clips = [(p.game_id, c.clip_id) for p in run.plans for c in p.clips if not c.idle]
    labels = cfg.data.get("labels")
    summary = with_results(summary, settings.out_root, clips, str(labels) if labels else None)
    print(format_summary(summary))
    location = write_run_summary(settings.out_root, summary, extra)
    log.info("run summary: %s", location)
    return summary.exit_code
