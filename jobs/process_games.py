"""Process every game under ``data.root`` into ``output.root``.

    python jobs/process_games.py                       # local Ray, real weights
    python jobs/process_games.py +experiment=demo      # the demo on generated games
    python jobs/process_games.py +experiment=smoke     # synthetic games, tiny models
    python jobs/process_games.py ray=cluster           # on a running Ray cluster

On a fresh clone (no games under the default ``data.root``, weights missing) it runs the
demo (:mod:`hoopray.testing.demo`) and says so. Ends with a summary table; exits 1 when a clip
failed, 2 when the job could not start (missing weights, no input, a secret in the config).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

import hydra
from _entry import hydra_dir, start_ray
from omegaconf import DictConfig

EXIT = {"code": 0}


def demo_composer() -> Callable[[], Any] | None:
    """Composes the demo's config with this run's overrides; None when an override names
    ``data.root`` (then the job never runs the demo)."""
    from hydra.core.hydra_config import HydraConfig

    from hoopray.testing import demo

    overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
    if demo.data_root_given(overrides):
        return None
    return lambda: demo.compose(overrides)


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> int:
    from hoopray.job import run_job

    logging.getLogger("hoopray").setLevel(logging.INFO)
    EXIT["code"] = run_job(
        cfg, incremental=False, start_ray=start_ray, hydra_dir=hydra_dir(), demo=demo_composer()
    )
    return EXIT["code"]


if __name__ == "__main__":
    main()
    sys.exit(EXIT["code"])
