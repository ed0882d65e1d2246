"""Shared helpers of the benchmarks: machine notes, tables, result lines, synthetic games
and the models they run (ground-truth replay doubles, tiny random-weight models).

The scripts import this module as ``common`` (``python benchmarks/<name>.py`` puts this
directory on ``sys.path``). Nothing here is timed; the scripts time what they measure.
"""

from __future__ import annotations

import logging
import os
import platform
import resource
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

if TYPE_CHECKING:
    from hoopray.models.base import Models
    from hoopray.roster import Roster
    from hoopray.teams import TeamModel, TeamNaming
    from hoopray.testing.replay import ReplayWorld
    from hoopray.testing.synthetic import SyntheticGame
    from hoopray.types import ClipRef

# Random-weight SAM2 masks cover about half the frame, so no later detection is
# "uncovered" by the default rule and every detection frame would add every player as a
# new track (hundreds of live tracks after a hundred frames). With this threshold any
# overlap covers a detection, so the tiny tracker keeps the players it was prompted with,
# as real weights do.
TINY_SAM2_NEW_TRACK_IOU = 1e-3


def production_ahead() -> dict[str, int]:
    """The read-ahead depths the production GPU pool uses (``conf/ray/local.yaml``), as
    :func:`hoopray.stages.observe_to_store` takes them."""
    from omegaconf import OmegaConf

    from hoopray.stages import read_ahead_depths

    pool = OmegaConf.load(Path(__file__).resolve().parents[1] / "conf" / "ray" / "local.yaml")
    return read_ahead_depths(pool.observe)


def quiet() -> None:
    """Silence warnings, progress bars and library logging below errors."""
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:
        pass


def set_torch_threads(threads: int) -> None:
    """Pin torch's intra-op threads. On a busy 2-core machine 2 threads spin against the
    other processes and run tiny models up to 100x slower than 1 thread."""
    import torch

    torch.set_num_threads(max(1, threads))


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def machine_line() -> str:
    """Date, cores, accelerator and load: what a reader needs to compare figures."""
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    device = "CUDA" if cuda_available() else "CPU only"
    stamp = time.strftime("%Y-%m-%d %H:%M %Z")
    return (
        f"machine: {stamp}, {os.cpu_count()} cores, {device}, "
        f"load avg (1/5/15 min) {load}, Python {platform.python_version()}"
    )


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Columns padded to their widest cell (numbers right-aligned, text left-aligned);
    floats with 3 significant digits.

    Raises:
        ValueError: a row whose length differs from the headers'.
    """

    def cell(value: object) -> str:
        if isinstance(value, float):
            return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
        return str(value)

    for row in rows:
        if len(row) != len(headers):
            raise ValueError(f"a row has {len(row)} cells for {len(headers)} headers: {row!r}")
    cells = [[cell(v) for v in row] for row in rows]
    numeric = [
        all(isinstance(row[i], int | float) or row[i] == "" for row in rows)
        for i in range(len(headers))
    ]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if right else v.ljust(w)
            for v, w, right in zip(values, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    lines = [line(headers), "  ".join("-" * w for w in widths)]
    lines.extend(line(row) for row in cells)
    return "\n".join(lines)


def result_line(metric: str, value: float | str, target: str, passed: bool) -> str:
    """``result: <metric>=<value> target=<target> <pass|fail>``."""
    shown = f"{value:.3g}" if isinstance(value, float) else str(value)
    return f"result: {metric}={shown} target={target} {'pass' if passed else 'fail'}"


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far (Linux: ru_maxrss is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mib(pid: int | str = "self") -> float:
    """Resident set size now, from ``/proc/<pid>/status`` (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS in /proc/{pid}/status")


# --------------------------------------------------------------------------- games


def make_game(
    root: Path,
    *,
    seconds: float,
    size: tuple[int, int],
    clips: int = 2,
    seed: int = 1,
    players_per_team: int = 5,
    referees: int = 2,
    game_id: str = "game-001",
) -> SyntheticGame:
    """A synthetic game under ``root/games`` with its labels under ``root/labels``."""
    from hoopray.testing.synthetic import make_game as write_game

    return write_game(
        root / "games",
        root / "labels",
        game_id,
        seed=seed,
        clips=clips,
        seconds=seconds,
        size=size,
        players_per_team=players_per_team,
        referees=referees,
    )


def clip_refs(game: SyntheticGame) -> list[ClipRef]:
    from hoopray.types import ClipRef

    return [
        ClipRef(game.game_id, clip_id, path, f"synthetic-{clip_id}")
        for clip_id, path in zip(game.clip_ids, game.clips, strict=True)
    ]


def replay_models(world: ReplayWorld, embedder: object | None = None) -> Models:
    """Detector, tracker and reader that replay the labels (FOR BENCHMARKS ONLY)."""
    from hoopray.models.base import Models

    return Models(
        detector=world.detector(),
        tracking=world.tracking(),
        embedder=embedder,  # type: ignore[arg-type]
        reader=world.reader(),
    )


def fit_teams(
    clips: list[ClipRef], models: Models, roster: Roster | None
) -> tuple[TeamModel, TeamNaming | None]:
    """The game's team model and naming; PCA instead of UMAP (no numba compile)."""
    from hoopray.teams import TeamsConfig, fit_team_model, name_clusters, sample_game

    cfg = TeamsConfig(umap_neighbors=10_000)
    sample, embeddings = sample_game(clips, models, cfg)
    model = fit_team_model(embeddings, cfg, sample=sample)
    naming = name_clusters(model, roster) if roster is not None else None
    return model, naming


# --------------------------------------------------------------------------- tiny models


@dataclass(frozen=True)
class TinyDirs:
    """Where the tiny random-weight models were saved."""

    sam2: Path
    siglip: Path
    smolvlm_base: Path
    smolvlm_adapter: Path
    rfdetr: Path | None = None


def build_tiny_models(root: Path, *, sam2_image_size: int = 128, rfdetr: bool = False) -> TinyDirs:
    """Save the tiny models of :mod:`hoopray.testing.tiny` and the tiny SAM2 video model."""
    from hoopray.testing import tiny

    sam2 = tiny.build_tiny_sam2_video(root / "sam2", image_size=sam2_image_size)
    siglip = tiny.build_tiny_siglip(root / "siglip")
    base, adapter = tiny.build_tiny_smolvlm(root / "smolvlm")
    checkpoint = tiny.build_tiny_rfdetr(root / "rfdetr" / "checkpoint.pth") if rfdetr else None
    return TinyDirs(sam2, siglip, base, adapter, checkpoint)


def tiny_models(
    dirs: TinyDirs, *, detector: object, embedder: str = "siglip", device: str = "cpu"
) -> Models:
    """Tiny SAM2 tracking, tiny SmolVLM + LoRA reader and an embedder ("siglip" for the
    tiny SigLIP, "colour" for colour histograms) around the given detector."""
    from hoopray.models.base import Models
    from hoopray.models.sam2_video import Sam2VideoTracking
    from hoopray.models.smolvlm import SmolVlmNumberReader

    if embedder == "siglip":
        from hoopray.models.siglip import SiglipEmbedder

        embed: object = SiglipEmbedder(str(dirs.siglip), device=device)
    elif embedder == "colour":
        from hoopray.models.colour import ColourHistogramEmbedder

        embed = ColourHistogramEmbedder()
    else:
        raise ValueError(f"embedder must be 'siglip' or 'colour', got {embedder!r}")
    return Models(
        detector=detector,  # type: ignore[arg-type]
        tracking=Sam2VideoTracking(
            str(dirs.sam2), device=device, new_track_iou=TINY_SAM2_NEW_TRACK_IOU
        ),
        embedder=embed,  # type: ignore[arg-type]
        reader=SmolVlmNumberReader(
            str(dirs.smolvlm_base), str(dirs.smolvlm_adapter), device=device
        ),
    )
