"""The first run on a fresh clone: a demo of the real pipeline on generated games.

``make run`` with no games under the default ``data.root`` and model weights missing
would stop and name what is missing. Instead it runs the demo: the same job
(:func:`hoopray.job.run_job`, local Ray) on the config ``+experiment=demo``
(``conf/experiment/demo.yaml``), composed with the user's own overrides:

- 2 synthetic games x 2 clips at the generator's ``realistic`` difficulty, generated once
  under ``demo.dir`` (:func:`hoopray.testing.smoke.prepare`);
- detections REPLAYED from the generator's labels (:class:`hoopray.testing.replay.ReplayDetector`,
  a ground-truth double, with the ``realistic`` preset's misses, false number boxes and
  box jitter); ByteTrack, or the configured SAM2 tracker where its weights exist; colour
  histograms for the teams; EasyOCR reading the numbers from the pixels;
- the summary lists the confirmed identities and the identity F1 against the labels.

The decision is :func:`wants_demo`: the default ``data.root`` (no override names it), no
game under it, and at least one weight missing. With games, with every weight present,
or with a ``data.root`` given, the job behaves as it always did.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

EXPERIMENT = "demo"
TARGET_F1 = 0.9
# Overrides that choose the input: data.root itself, the data group, or an experiment
# (each experiment brings its own data).
_INPUT_KEYS = ("data", "data.root", "experiment")


def override_key(override: str) -> str:
    """The key of a Hydra command-line override: ``+data.root=x`` -> ``data.root``."""
    return override.split("=", 1)[0].lstrip("+~")


def data_root_given(overrides: Sequence[str]) -> bool:
    """Whether a command-line override sets ``data.root``, picks a ``data`` option or an
    experiment: then ``data.root`` is not the default one."""
    return any(override_key(o) in _INPUT_KEYS for o in overrides)


def wants_demo(
    *,
    default_root: bool,
    has_games: bool,
    missing_weights: Sequence[str],
    other_problems: Sequence[str] = (),
) -> bool:
    """Run the demo instead of stopping: only on the default ``data.root``, with no game
    under it, some weights missing and nothing else in the way (storage, Ray)."""
    return default_root and not has_games and bool(missing_weights) and not other_problems


def compose(overrides: Sequence[str]) -> Any:
    """The demo's config: the user's overrides with ``+experiment=demo`` before them, so
    that what the user set (``output.root=...``) wins over the demo's defaults. Needs
    Hydra to be initialised (inside ``@hydra.main``)."""
    from hydra import compose as hydra_compose

    return hydra_compose(config_name="config", overrides=[f"+experiment={EXPERIMENT}", *overrides])


def keep_tracker(tracker: Mapping[str, Any] | None, tracker_missing: Sequence[str]) -> bool:
    """Whether the demo keeps the configured tracker: a SAM2 tracker whose weights exist
    (otherwise the demo's ByteTrack)."""
    target = str((tracker or {}).get("_target_", ""))
    return "sam2" in target.lower() and not tracker_missing


def banner(data_root: str, missing_weights: Sequence[str], demo_cfg: Any) -> str:
    """What the terminal shows before the demo starts: that it is a demo, why, and with
    which models."""
    tracker = str(demo_cfg.models.tracker._target_).rsplit(".", 1)[-1]
    lines = [
        "=" * 78,
        f"hoopray DEMO: there are no games under {data_root} and these model weights are missing:",
        *(f"  - {m}" for m in missing_weights),
        "",
        f"So this run is a demo of the real pipeline on {demo_cfg.demo.games} generated games "
        f"x {demo_cfg.demo.clips} clips ({demo_cfg.demo.difficulty} difficulty) under "
        f"{demo_cfg.demo.dir}, written to {demo_cfg.output.root}.",
        "  - detections: REPLAYED FROM THE GENERATOR'S LABELS (hoopray.testing.replay), with "
        "its misses, false number boxes and box jitter: no detector looks at the pixels;",
        f"  - tracker: {tracker}; teams: colour histograms; numbers: EasyOCR on the pixels.",
        "To run on your own games, put them under "
        f"{data_root}/<game_id>/ (clips and a roster.yaml) or pass data.root=..., and get the "
        "weights with `make weights`.",
        "=" * 78,
    ]
    return "\n".join(lines)


def footer(demo_cfg: Any) -> str:
    """What the terminal shows after the demo: what the F1 means and where to look."""
    return (
        "demo done: the identity F1 above scores the confirmed identities against the "
        f"generator's labels (target >= {TARGET_F1} at {demo_cfg.demo.difficulty}). Open "
        f"{demo_cfg.output.root}/index.html for the reports and videos."
    )
