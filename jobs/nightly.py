"""Process only new or changed games and clips (for cron, Airflow or a Ray Job).

    python jobs/nightly.py data.root=/archive/games output.root=/archive/hoopray

Plans from ``<output.root>/_manifest/manifest.json``: a clip is redone when its file or
the config of a stage that produced its outputs changed; a game's team model is refit
when its clips change. With nothing new it starts no Ray and exits 0. Every run writes
``<output.root>/_runs/<timestamp>.json``. Exit codes as ``jobs/process_games.py``.
"""

from __future__ import annotations

import sys

import hydra
from _entry import run
from omegaconf import DictConfig

EXIT = {"code": 0}


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> int:
    EXIT["code"] = run(cfg, incremental=True)
    return EXIT["code"]


if __name__ == "__main__":
    main()
    sys.exit(EXIT["code"])
