"""Process every game under ``data.root`` into ``output.root``.

    python jobs/process_games.py                       # local Ray, real weights
    python jobs/process_games.py +experiment=smoke     # synthetic games, tiny models
    python jobs/process_games.py ray=cluster           # on a running Ray cluster

Ends with a summary table; exits 1 when a clip failed, 2 when the job could not start
(missing weights, no input, a secret in the config).
"""

from __future__ import annotations

import sys

import hydra
from _entry import run
from omegaconf import DictConfig

EXIT = {"code": 0}


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> int:
    EXIT["code"] = run(cfg, incremental=False)
    return EXIT["code"]


if __name__ == "__main__":
    main()
    sys.exit(EXIT["code"])
