"""OCR work per confirmed identity: hoopray's reading policy against the notebook's, over
clip lengths of 4, 8, 20 and 60 s.

For each length, the same synthetic game (``--clips`` clips) is observed twice with the
ground-truth replay doubles (detector, tracker, and a reader that misreads
``--misread-rate`` of the crops, independently of how legible they are):

- hoopray: :class:`hoopray.observe.ObserveConfig` defaults, with the game's roster: numbers
  are read every 5th frame, only legible boxes (the IoS, size and aspect gates) and only
  for tracks whose identity is not decided yet (the posterior early stop with the roster's
  prior).
- notebook: every number box the detector returns on every 5th frame, confirmed or not,
  with no gate: its crops are the detector's number boxes on frames ``% 5 == 0`` (observe's
  ``numbers_seen`` of this run); its identities come from an observe run with the early stop
  and the gates off, resolved with the same rules.

Both runs are resolved with :class:`hoopray.resolve.ResolveConfig` defaults and the roster
and a colour-histogram team model, and scored against the labels
(:func:`hoopray.evaluate.score_clip`) to show that reading less confirms about as many
players and no more wrong numbers.

Left out: the cost of a crop (``benchmarks/real_size.py`` times the reader), number boxes
the detector misses or invents (the replay detector returns exactly the visible numbers),
and misreads that depend on legibility (the replay reader's do not, so the gates save
nothing here: with real crops they also skip the reads most often wrong).

Run: ``.venv/bin/python benchmarks/ocr_work.py [--lengths 4,8,20,60 --clips 2 --size
640x360]``. The last line is ``result: reduction=<v at 8 s> target=>=3 pass|fail`` where
reduction = (notebook crops / notebook confirmed) / (hoopray crops / hoopray confirmed).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import common
import numpy as np
import pyarrow as pa

READ_STRIDE = 5
LENGTHS = (4.0, 8.0, 20.0, 60.0)
RESULT_LENGTH = 8.0


@dataclass
class PolicyRun:
    """One clip under one policy."""

    length: float  # clip length, seconds
    clip_id: str
    policy: str
    number_boxes: int  # the detector's number boxes on read frames (what the notebook reads)
    crops: int  # crops sent to the reader under this policy
    reader_calls: int
    confirmed: int
    wrong_confirmations: int
    identity_f1: float
    seconds: float  # observe's wall time


def notebook_config() -> object:
    """The notebook's reading: every number box on every read frame, no gate, no early stop."""
    from hoopray.observe import ObserveConfig

    return ObserveConfig(
        read_stride=READ_STRIDE,
        skip_confirmed_reads=None,
        read_min_ios=0.0,
        read_min_height=0.0,
        read_min_aspect=0.0,
        read_max_aspect=float("inf"),
    )


def number_boxes_on_read_frames(labels: pa.Table, stride: int = READ_STRIDE) -> int:
    """Visible number boxes on frames ``% stride == 0``: the crops the notebook reads."""
    frame = labels.column("frame").to_numpy(zero_copy_only=False)
    player = np.asarray(labels.column("role").to_pylist(), dtype=object) == "player"
    visible = labels.column("number_visible").fill_null(False).to_numpy(zero_copy_only=False)
    numbered = labels.column("number").is_valid().to_numpy(zero_copy_only=False)
    boxed = labels.column("nx1").is_valid().to_numpy(zero_copy_only=False)
    return int(np.count_nonzero(player & visible & numbered & boxed & (frame % stride == 0)))


def measure(
    root: Path,
    *,
    seconds: float,
    size: tuple[int, int],
    clips: int = 2,
    misread_rate: float = 0.2,
    seed: int = 1,
) -> list[PolicyRun]:
    """Write a game, observe it under both policies, resolve and score each clip."""
    from hoopray.evaluate import read_labels, score_clip
    from hoopray.models.colour import ColourHistogramEmbedder
    from hoopray.observe import ObserveConfig, observe
    from hoopray.resolve import ResolveConfig, resolve
    from hoopray.roster import load_roster
    from hoopray.testing.replay import ReplayWorld
    from hoopray.types import IdentityStatus

    game = common.make_game(root, seconds=seconds, size=size, clips=clips, seed=seed)
    roster = load_roster(game.roster_path)
    world = ReplayWorld(root / "labels", misread_rate=misread_rate, seed=seed)
    models = common.replay_models(world, ColourHistogramEmbedder())
    refs = common.clip_refs(game)
    team_model, naming = common.fit_teams(refs, models, roster)
    policies = {
        "hoopray": (ObserveConfig(read_stride=READ_STRIDE), roster),
        "notebook": (notebook_config(), None),
    }
    runs = []
    for clip, labels_path in zip(refs, game.labels, strict=True):
        labels = read_labels(labels_path)
        boxes: int | None = None
        for policy, (cfg, known) in policies.items():
            started = time.perf_counter()
            obs = observe(clip, models, cfg, roster=known)  # type: ignore[arg-type]
            took = time.perf_counter() - started
            ids = resolve(obs, roster, naming, ResolveConfig(), team_model)
            score = score_clip(labels, ids.frames, ids.tracks)
            status = ids.tracks.column("status").to_pylist()
            crops = int(obs.clip.column("crops_read")[0].as_py())
            if policy == "notebook":
                boxes = int(obs.extra["numbers_seen"])
                crops = boxes
            runs.append(
                PolicyRun(
                    length=seconds,
                    clip_id=clip.clip_id,
                    policy=policy,
                    number_boxes=int(obs.extra["numbers_seen"]),
                    crops=crops,
                    # the notebook calls the reader once per crop; observe batches per frame
                    reader_calls=crops
                    if policy == "notebook"
                    else int(obs.clip.column("reader_calls")[0].as_py()),
                    confirmed=status.count(IdentityStatus.CONFIRMED.value),
                    wrong_confirmations=score.wrong_confirmations,
                    identity_f1=score.identity_f1,
                    seconds=took,
                )
            )
        assert boxes == number_boxes_on_read_frames(labels), "the detector is not the labels'"
    return runs


def totals(runs: list[PolicyRun], policy: str) -> tuple[int, int]:
    """(crops, confirmed identities) of one policy over all clips."""
    chosen = [r for r in runs if r.policy == policy]
    return sum(r.crops for r in chosen), sum(r.confirmed for r in chosen)


def reduction(runs: list[PolicyRun]) -> float:
    """(notebook crops per confirmed identity) / (hoopray crops per confirmed identity)."""
    nb_crops, nb_confirmed = totals(runs, "notebook")
    hr_crops, hr_confirmed = totals(runs, "hoopray")
    if nb_confirmed == 0 or hr_confirmed == 0 or hr_crops == 0:
        return 0.0
    return (nb_crops / nb_confirmed) / (hr_crops / hr_confirmed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", default=",".join(f"{v:g}" for v in LENGTHS))
    parser.add_argument("--clips", type=int, default=2)
    parser.add_argument("--size", default="640x360", help="clip size WxH")
    parser.add_argument("--misread-rate", type=float, default=0.2)
    args = parser.parse_args()
    common.quiet()
    width, height = (int(v) for v in args.size.lower().split("x"))
    lengths = [float(v) for v in args.lengths.split(",") if v]
    print(common.machine_line())
    started = time.perf_counter()
    runs: list[PolicyRun] = []
    for length in lengths:
        with tempfile.TemporaryDirectory(prefix="hoopray-ocr-") as tmp:
            runs += measure(
                Path(tmp),
                seconds=length,
                size=(width, height),
                clips=args.clips,
                misread_rate=args.misread_rate,
            )
    print(
        f"game: {args.clips} clips per length at {width}x{height}, 30 fps; replay doubles, "
        f"reader misreads {args.misread_rate:.0%}; reads every {READ_STRIDE}th frame"
    )
    headers = (
        "length s",
        "policy",
        "number boxes",
        "crops read",
        "reader calls",
        "confirmed",
        "wrong",
        "identity F1",
        "crops/confirmed",
        "reduction",
    )
    rows = []
    for length in lengths:
        at = [r for r in runs if r.length == length]
        for policy in ("hoopray", "notebook"):
            mine = [r for r in at if r.policy == policy]
            crops, confirmed = totals(at, policy)
            rows.append(
                (
                    length,
                    policy,
                    sum(r.number_boxes for r in mine),
                    crops,
                    sum(r.reader_calls for r in mine),
                    confirmed,
                    sum(r.wrong_confirmations for r in mine),
                    float(np.mean([r.identity_f1 for r in mine])),
                    crops / confirmed if confirmed else float("nan"),
                    reduction(at) if policy == "hoopray" else "",
                )
            )
    print(common.format_table(headers, rows))
    print(
        "notebook crops = the detector's number boxes on frames % 5 == 0 (it reads them all, "
        "every time); identity F1: mean over the clips"
    )
    print(f"total {time.perf_counter() - started:.0f} s")
    at = [r for r in runs if r.length == RESULT_LENGTH]
    value = reduction(at) if at else 0.0
    print(common.result_line("reduction", value, ">=3", value >= 3))


if __name__ == "__main__":
    main()
