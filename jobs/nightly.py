"""Process only new or changed games and clips (for cron, Airflow or a Ray Job).

    python jobs/nightly.py data.root=/archive/games output.root=/archive/hoopray

Plans from ``<output.root>/_manifest/manifest.json``: a clip is redone when its file or
the config of a stage that produced its outputs changed; a game's team model is refit
when its clips change. With nothing new it starts no Ray and exits 0. Every run writes
``<output.root>/_runs/<timestamp>.json``. Exit codes as ``jobs/process_games.py``.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

EXIT = {"code": 0}


def start_ray(**kwargs: object) -> None:
    import ray

    ray.init(**kwargs)


def _hydra_dir() -> Path | None:
    from hydra.core.hydra_config import HydraConfig

    return Path(HydraConfig.get().runtime.output_dir) if HydraConfig.initialized() else None


def run(cfg: DictConfig) -> int:
    """Process what changed since the last run; returns the exit code."""
    from hoopray.pipeline import run_job

    return run_job(cfg, incremental=True, start_ray=start_ray, hydra_dir=_hydra_dir())


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> int:
    logging.getLogger("hoopray").setLevel(logging.INFO)
    EXIT["code"] = run(cfg)
    return EXIT["code"]


if __name__ == "__main__":
    main()
    sys.exit(EXIT["code"])
