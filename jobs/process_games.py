"""Process every game under ``data.root`` into ``output.root``.

    python jobs/process_games.py                       # local Ray, real weights
    python jobs/process_games.py +experiment=smoke     # synthetic games, tiny models
    python jobs/process_games.py ray=cluster           # on a running Ray cluster

Ends with a summary table; exits 1 when a clip failed, 2 when the job could not start
(missing weights, no input, a secret in the config).
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
    """Process the configured games; returns the exit code."""
    from hoopray.pipeline import run_job

    return run_job(cfg, incremental=False, start_ray=start_ray, hydra_dir=_hydra_dir())


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> int:
    logging.getLogger("hoopray").setLevel(logging.INFO)
    EXIT["code"] = run(cfg)
    return EXIT["code"]


if __name__ == "__main__":
    main()
    sys.exit(EXIT["code"])
