"""Generated inputs of the smoke run (``+experiment=smoke``) and of the demo
(``+experiment=demo``, :mod:`hoopray.testing.demo`): synthetic games and tiny offline models.

:func:`prepare` writes, under one cache directory, what the experiment's ``smoke`` or
``demo`` node points at:

- ``games/<game_id>/`` and ``labels/<game_id>/``: synthetic games from
  :func:`hoopray.testing.synthetic.make_game` at the node's ``difficulty``;
- ``models/<name>``: tiny randomly initialised models of the real architectures
  (:mod:`hoopray.testing.tiny`), loaded by the production adapters through their ordinary
  loading code (the smoke run only: their weights are random, so their outputs mean
  nothing).

Each part is built once: a small JSON stamp beside it records the settings it was built
with, and a later call with the same settings does nothing.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

TINY_MODELS = ("sam2", "smolvlm", "siglip", "rfdetr")
INPUT_NODES = ("smoke", "demo")


@dataclass(frozen=True)
class SmokeConfig:
    """The ``smoke`` node of ``conf/experiment/smoke.yaml`` (or ``demo`` of ``demo.yaml``).

    Attributes:
        dir: cache directory for the generated inputs.
        games: how many synthetic games.
        clips: clips per game.
        seconds: length of each clip.
        fps: frame rate of the clips.
        size: (width, height) of the clips.
        seed: seed of games and models.
        difficulty: the world's noise preset (:data:`hoopray.testing.synthetic.WORLD_PRESETS`).
        prefix: game ids are ``<prefix>-001``, ``<prefix>-002``, ...
        models: which tiny models to build (any of ``sam2, smolvlm, siglip, rfdetr``).
    """

    dir: str
    games: int = 2
    clips: int = 2
    seconds: float = 2.0
    fps: float = 10.0
    size: tuple[int, int] = (640, 360)
    seed: int = 0
    difficulty: str = "easy"
    prefix: str = "smoke"
    models: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> SmokeConfig:
        data = dict(values)
        data["size"] = tuple(int(v) for v in data.get("size", cls.size))
        data["models"] = tuple(data.get("models") or ())
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"unknown smoke options {unknown}")
        bad = sorted(set(data["models"]) - set(TINY_MODELS))
        if bad:
            raise ValueError(f"unknown tiny models {bad}; known: {TINY_MODELS}")
        return cls(**data)


def game_ids(count: int, prefix: str = "smoke") -> list[str]:
    return [f"{prefix}-{i + 1:03d}" for i in range(count)]


def input_node(cfg: Mapping[str, Any]) -> tuple[str, Any] | None:
    """The experiment's generated-inputs node, ``("smoke" | "demo", node)``, if any."""
    for name in INPUT_NODES:
        node = cfg.get(name)
        if node:
            return name, node
    return None


def _stamp_ok(target: Path, settings: dict[str, Any]) -> bool:
    stamp = target.with_name(f".{target.name}.built.json")
    return target.exists() and stamp.is_file() and json.loads(stamp.read_text()) == settings


def _build_once(target: Path, settings: dict[str, Any], build: Callable[[Path], object]) -> bool:
    """Build ``target`` unless it was built with ``settings`` already; True if built now."""
    if _stamp_ok(target, settings):
        return False
    if target.is_dir():
        shutil.rmtree(target)
    elif target.exists():
        target.unlink()
    target.parent.mkdir(parents=True, exist_ok=True)
    build(target)
    stamp = target.with_name(f".{target.name}.built.json")
    stamp.write_text(json.dumps(settings, sort_keys=True))
    return True


def _build_model(name: str, target: Path, seed: int) -> None:
    from hoopray.testing import tiny

    if name == "sam2":
        tiny.build_tiny_sam2_video(target, seed=seed)
    elif name == "smolvlm":
        tiny.build_tiny_smolvlm(target, seed=seed)
    elif name == "siglip":
        tiny.build_tiny_siglip(target, seed=seed)
    elif name == "rfdetr":
        target.mkdir(parents=True, exist_ok=True)
        tiny.build_tiny_rfdetr(target / "checkpoint.pth", seed=seed)
    else:
        raise ValueError(f"unknown tiny model {name!r}")


def prepare(cfg: SmokeConfig | Mapping[str, Any]) -> dict[str, Path]:
    """Build whatever is missing or stale under ``cfg.dir`` and return the paths.

    Returns:
        ``{"games": ..., "labels": ..., "<model>": ...}``.
    """
    from hoopray.testing.synthetic import make_game

    if not isinstance(cfg, SmokeConfig):
        cfg = SmokeConfig.from_mapping(cfg)
    root = Path(cfg.dir)
    games_root, labels_root = root / "games", root / "labels"
    paths = {"games": games_root, "labels": labels_root}
    game_settings = {k: v for k, v in asdict(cfg).items() if k not in ("dir", "models")}
    game_settings["size"] = list(cfg.size)
    for index, game_id in enumerate(game_ids(cfg.games, cfg.prefix)):

        def build_game(target: Path, game_id: str = game_id, index: int = index) -> None:
            shutil.rmtree(labels_root / game_id, ignore_errors=True)
            make_game(
                games_root,
                labels_root,
                game_id,
                seed=cfg.seed + index,
                clips=cfg.clips,
                seconds=cfg.seconds,
                fps=cfg.fps,
                size=cfg.size,
                difficulty=cfg.difficulty,
            )

        if _build_once(games_root / game_id, game_settings, build_game):
            log.info("%s: wrote synthetic game %s", cfg.prefix, games_root / game_id)
    for name in cfg.models:
        target = root / "models" / name
        if _build_once(target, {"seed": cfg.seed}, lambda t, n=name: _build_model(n, t, cfg.seed)):
            log.info("%s: built tiny %s in %s", cfg.prefix, name, target)
        paths[name] = target
    return paths


def missing(cfg: SmokeConfig, names: Sequence[str] = ()) -> list[str]:
    """Parts not built yet (for messages), without building anything."""
    root = Path(cfg.dir)
    parts = [root / "games" / g for g in game_ids(cfg.games, cfg.prefix)]
    parts += [root / "models" / n for n in (names or cfg.models)]
    return [str(p) for p in parts if not p.exists()]
