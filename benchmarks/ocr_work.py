"""OCR work per confirmed identity: hoopray's reading policy against the notebook's.

The same synthetic game is observed twice with the ground-truth replay doubles (detector,
tracker and a reader that misreads ``--misread-rate`` of the crops):

- hoopray: :class:`hoopray.observe.ObserveConfig` defaults: numbers are read every 5th
  frame, and a track stops being read once 3 of its reads agree in a row.
- notebook: the notebook reads every number crop of every 5th frame, confirmed or not.
  Its crop count is the number of number boxes on frames ``% 5 == 0`` (from the labels,
  which the replay detector returns); its identities come from an observe run with the
  early stop off (``skip_confirmed_reads=None``), resolved with the same rules.

Both runs are resolved with :class:`hoopray.resolve.ResolveConfig` defaults (3 agreeing
reads in a row) and a colour-histogram team model, and scored against the labels
(:func:`hoopray.evaluate.score_clip`) to show that reading less confirms no fewer players
and no more wrong numbers.

Run: ``.venv/bin/python benchmarks/ocr_work.py [--seconds 20 --clips 2 --size 640x360]``.
The last line is ``result: reduction=<v> target=>=3 pass|fail`` where reduction =
(notebook crops / notebook confirmed) / (hoopray crops / hoopray confirmed).
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


@dataclass
class PolicyRun:
    """One clip under one policy."""

    clip_id: str
    policy: str
    number_boxes: int  # number boxes on read frames (what the notebook reads)
    crops: int  # crops sent to the reader under this policy
    reader_calls: int
    confirmed: int
    wrong_confirmations: int
    identity_f1: float
    seconds: float


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
    from hoopray.models.replay import ReplayWorld
    from hoopray.observe import ObserveConfig, observe
    from hoopray.resolve import ResolveConfig, resolve
    from hoopray.roster import load_roster
    from hoopray.types import IdentityStatus

    game = common.make_game(root, seconds=seconds, size=size, clips=clips, seed=seed)
    roster = load_roster(game.roster_path)
    world = ReplayWorld(root / "labels", misread_rate=misread_rate, seed=seed)
    models = common.replay_models(world, ColourHistogramEmbedder())
    refs = common.clip_refs(game)
    team_model, naming = common.fit_teams(refs, models, roster)
    policies = {
        "hoopray": ObserveConfig(read_stride=READ_STRIDE),
        "notebook": ObserveConfig(read_stride=READ_STRIDE, skip_confirmed_reads=None),
    }
    runs = []
    for clip, labels_path in zip(refs, game.labels, strict=True):
        labels = read_labels(labels_path)
        boxes = number_boxes_on_read_frames(labels)
        for policy, cfg in policies.items():
            started = time.perf_counter()
            obs = observe(clip, models, cfg)
            took = time.perf_counter() - started
            ids = resolve(obs, roster, naming, ResolveConfig(), team_model)
            score = score_clip(labels, ids.frames, ids.tracks)
            status = ids.tracks.column("status").to_pylist()
            crops = int(obs.clip.column("crops_read")[0].as_py())
            runs.append(
                PolicyRun(
                    clip_id=clip.clip_id,
                    policy=policy,
                    number_boxes=boxes,
                    crops=crops if policy == "hoopray" else boxes,
                    reader_calls=int(obs.clip.column("reader_calls")[0].as_py()),
                    confirmed=status.count(IdentityStatus.CONFIRMED.value),
                    wrong_confirmations=score.wrong_confirmations,
                    identity_f1=score.identity_f1,
                    seconds=took,
                )
            )
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
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each clip")
    parser.add_argument("--clips", type=int, default=2)
    parser.add_argument("--size", default="640x360", help="clip size WxH")
    parser.add_argument("--misread-rate", type=float, default=0.2)
    args = parser.parse_args()
    common.quiet()
    width, height = (int(v) for v in args.size.lower().split("x"))
    print(common.machine_line())
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="hoopray-ocr-") as tmp:
        runs = measure(
            Path(tmp),
            seconds=args.seconds,
            size=(width, height),
            clips=args.clips,
            misread_rate=args.misread_rate,
        )
    print(
        f"game: {args.clips} clips x {args.seconds:g} s at {width}x{height}, 30 fps; replay "
        f"doubles, reader misreads {args.misread_rate:.0%}; reads every {READ_STRIDE}th frame"
    )
    headers = (
        "clip",
        "policy",
        "number boxes",
        "crops read",
        "reader calls",
        "confirmed",
        "wrong",
        "identity F1",
        "crops/confirmed",
    )
    rows = [
        (
            r.clip_id,
            r.policy,
            r.number_boxes,
            r.crops,
            r.reader_calls,
            r.confirmed,
            r.wrong_confirmations,
            r.identity_f1,
            r.crops / r.confirmed if r.confirmed else float("nan"),
        )
        for r in runs
    ]
    for policy in ("hoopray", "notebook"):
        crops, confirmed = totals(runs, policy)
        rows.append(("all", policy, "", crops, "", confirmed, "", "", crops / max(confirmed, 1)))
    print(common.format_table(headers, rows))
    print("notebook crops = number boxes on frames % 5 == 0 (it reads them all, every time)")
    print(f"total {time.perf_counter() - started:.0f} s")
    value = reduction(runs)
    print(common.result_line("reduction", value, ">=3", value >= 3))


if __name__ == "__main__":
    main()
