"""What the job entry points share. Only entry points start Ray; the library never does."""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig


def start_ray(**kwargs: object) -> None:
    import ray

    ray.init(**kwargs)


def hydra_dir() -> Path | None:
    """This run's Hydra output directory (its ``.hydra/`` is scrubbed of secrets)."""
    from hydra.core.hydra_config import HydraConfig

    return Path(HydraConfig.get().runtime.output_dir) if HydraConfig.initialized() else None


def run(cfg: DictConfig, *, incremental: bool) -> int:
    """Run the pipeline on ``cfg``; returns the job's exit code."""
    from hoopray.job import run_job

    logging.getLogger("hoopray").setLevel(logging.INFO)
    return run_job(cfg, incremental=incremental, start_ray=start_ray, hydra_dir=hydra_dir())
