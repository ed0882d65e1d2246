"""Sweep resolve thresholds over stored observations; no model is loaded.

    python jobs/sweep.py -m sweep.out_root=outputs/hoopray sweep.labels=data/labels \
        resolve.min_posterior=0.7,0.8,0.9 resolve.min_margin=0.3,0.5,0.7

Any key of ``conf/resolve`` sweeps (the posterior policy's ``min_posterior`` and
``min_margin``, ``ios_threshold``, the streak policy's ``reads_to_confirm``, ...). Each
setting re-resolves every stored clip in memory and writes one metrics row,
``<sweep dir>/metrics/<job number>.json``: the counts of tracks by status (confirmed,
ambiguous, off_roster, unread), and scores against labels when ``sweep.labels`` is set
(``hoopray.evaluate``: identity F1, wrong confirmations, ...).
When the multirun ends, a Hydra callback writes ``summary.csv`` and ``summary.md`` sorted
by the objective; ``python jobs/sweep.py --summary <sweep dir>`` writes them again.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

log = logging.getLogger("hoopray.sweep")


def replay(cfg: DictConfig) -> dict[str, Any]:
    """Resolve every stored game with ``cfg.resolve`` and ``cfg.teams``, exactly as a run
    does (team naming refined by confirmed numbers), and measure the result."""
    from hoopray import outputs, store, teams
    from hoopray.resolve import ResolveConfig
    from hoopray.stages import load_team_model, resolve_game_clips
    from hoopray.types import IdentityStatus

    out_root = store.normalise(str(cfg.sweep.out_root))
    resolve_cfg = ResolveConfig.from_mapping(dict(cfg.resolve))
    wanted = set(cfg.sweep.games) if cfg.sweep.get("games") else None
    override = (cfg.get("teams") or {}).get("override")
    identities = {}
    for game_id in store.list_games(out_root, "observations/clip"):
        if wanted is not None and game_id not in wanted:
            continue
        observations = {
            clip_id: outputs.read_observations(out_root, game_id, clip_id)
            for clip_id in outputs.observed_clips(out_root, game_id)
        }
        roster = outputs.read_roster(store.game_dir(out_root, game_id))
        naming = teams.load_naming(teams.teams_dir(out_root, game_id))
        model = load_team_model(out_root, game_id)
        if model is not None and cfg.get("teams"):
            model.knn_k = int(cfg.teams.knn_k)
        resolved, _, _ = resolve_game_clips(
            observations, roster, naming, model, resolve_cfg, override=override
        )
        for clip_id, (ids, _) in resolved.items():
            identities[(game_id, clip_id)] = ids
    statuses = [s for ids in identities.values() for s in ids.tracks.column("status").to_pylist()]
    counts = {
        "clips": len(identities),
        "tracks": len(statuses),
        **{status.value: statuses.count(status.value) for status in IdentityStatus},
    }
    labels = cfg.sweep.get("labels")
    if not labels:
        return {"objective": cfg.sweep.objective or "confirmed", "metrics": counts}
    from hoopray.evaluate import evaluate_output, pool

    scores = evaluate_output(
        out_root,
        Path(str(labels)),
        iou_threshold=float(cfg.sweep.iou_threshold),
        identities={k: (ids.frames, ids.tracks) for k, ids in identities.items()},
    )
    return {
        "objective": cfg.sweep.objective or "identity_f1",
        "metrics": {**counts, **pool(scores), "clips_scored": len(scores)},
    }


def run(cfg: DictConfig) -> Path:
    """Score one setting and write its metrics row; returns the row's path."""
    from hydra.core.hydra_config import HydraConfig

    from hoopray.store import atomic_write_text
    from hoopray.summary import METRICS_DIR

    hydra_cfg = HydraConfig.get()
    multirun = hydra_cfg.mode is not None and hydra_cfg.mode.name == "MULTIRUN"
    sweep_dir = Path(hydra_cfg.sweep.dir if multirun else hydra_cfg.runtime.output_dir)
    job = int(hydra_cfg.job.num) if multirun else 0
    result = replay(cfg)
    metrics = result["metrics"]
    row = {
        "job": job,
        "overrides": list(hydra_cfg.overrides.task),
        "resolve": dict(cfg.resolve),
        "objective": result["objective"],
        "objective_value": metrics.get(result["objective"]),
        "metrics": metrics,
    }
    path = sweep_dir / METRICS_DIR / f"{job}.json"
    atomic_write_text(path, json.dumps(row, indent=2, sort_keys=True, default=str) + "\n")
    log.info("%s: %s = %s", " ".join(row["overrides"]), row["objective"], row["objective_value"])
    return path


@hydra.main(config_path="../conf", config_name="sweep", version_base="1.3")
def main(cfg: DictConfig) -> None:
    run(cfg)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--summary":
        from hoopray.summary import write_sweep_summary

        table = write_sweep_summary(sys.argv[2])
        print(table or f"no metrics rows under {sys.argv[2]}")
        sys.exit(0 if table else 1)
    main()
