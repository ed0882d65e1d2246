"""Score identities against labels: what users tune and trust hoopray by.

Label format (one Parquet file per clip, ``<labels>/<game_id>/<clip_id>.parquet``; the
labels root and the output root may be any :mod:`hoopray.store` location; schema
:data:`hoopray.types.LABELS`): one row per frame (0-based) and labelled object with its
box ``x1, y1, x2, y2`` in pixels, ``role`` ("player", "referee", "ball", "rim") and, for
players, ``team`` (the roster's team name) and ``number`` ("0".."99", "00"). Only players
are scored; a frame with no rows is an unlabelled frame and is ignored, so sparse labels
(every 10th frame, say) are fine. ``number_visible``, the number box and ``mask_rle`` are
optional. :func:`labels_from_mot_csv` converts MOT-style CSV.

Matching: per labelled frame, predicted tracks (``identities/frames``) are matched to
labelled players by the Hungarian method on box IoU, pairs below ``iou_threshold`` are
dropped. On the matches:

- identity precision / recall / F1 per frame: a prediction *claims* an identity when its
  status is confirmed; a claim is right when (team, number) equals the matched label's.
  Precision = right claims / claims (unmatched claims are wrong), recall = right claims /
  labelled player-frames.
- track-level number accuracy: each predicted track takes the labelled object it matched
  most often; the track is right when its confirmed number equals that object's number.
  Denominator: tracks matched to a labelled player. ``wrong_confirmations`` counts
  confirmed tracks whose number differs from their object's.
- off-roster tracks (a number confirmed for a team whose roster lacks it, shown with no
  name) are neither claims nor confirmations: ``off_roster_tracks`` counts those matched
  to a labelled player, ``off_roster_numbers_right`` those whose number is the object's
  (the roster lacks a real player's number) rather than a misread.
- team accuracy: matched player-frames whose predicted team equals the label's, over
  matched player-frames with a predicted team (``team_coverage`` gives that share).
- median frames to confirm (confirmed_at_frame - first_frame) and median reads seen by
  confirmed tracks.
- IDF1, MOTA and HOTA from TrackEval (``trackeval.metrics``), on the same boxes.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from hoopray import store
from hoopray.types import LABELS, check_schema


@dataclass(frozen=True)
class ClipScore:
    """Metrics of one clip (or of a whole output when pooled)."""

    labelled_frames: int
    labelled_player_frames: int
    claims: int
    right_claims: int
    identity_precision: float
    identity_recall: float
    identity_f1: float
    tracks_matched: int
    tracks_number_right: int
    track_number_accuracy: float
    wrong_confirmations: int
    team_accuracy: float
    team_coverage: float
    median_frames_to_confirm: float
    median_reads_to_confirm: float
    idf1: float
    mota: float
    hota: float
    off_roster_tracks: int = 0
    off_roster_numbers_right: int = 0

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix (len(a), len(b)) of xyxy boxes; zeros for empty inputs."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def match_boxes(
    labels: np.ndarray, predictions: np.ndarray, iou_threshold: float
) -> list[tuple[int, int, float]]:
    """Hungarian matching on IoU; returns (label_idx, prediction_idx, iou) above threshold."""
    from scipy.optimize import linear_sum_assignment

    iou = box_iou(labels, predictions)
    if iou.size == 0:
        return []
    rows, cols = linear_sum_assignment(-iou)
    return [
        (int(r), int(c), float(iou[r, c]))
        for r, c in zip(rows, cols, strict=True)
        if iou[r, c] >= iou_threshold
    ]


def _boxes(table: pa.Table) -> np.ndarray:
    return np.stack([table.column(c).to_numpy() for c in ("x1", "y1", "x2", "y2")], axis=1)


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den else 0.0


def _median(values: list[float]) -> float:
    return float(np.median(values)) if values else float("nan")


def score_clip(
    labels: pa.Table,
    frames: pa.Table,
    tracks: pa.Table | None = None,
    *,
    iou_threshold: float = 0.5,
) -> ClipScore:
    """Score one clip's identities against its labels.

    Args:
        labels: rows of the LABELS schema (other roles are ignored).
        frames: ``identities/frames`` rows of the clip (frame, track_id, box, team_name,
            number, player_name, status).
        tracks: ``identities/tracks`` rows, for the time-to-confirm figures (optional).
        iou_threshold: minimum box IoU for a label/prediction match.
    """
    labels = labels.filter(pc.equal(labels.column("role"), "player"))
    label_frames = sorted(set(labels.column("frame").to_pylist()))
    pred_by_frame: dict[int, list[int]] = defaultdict(list)
    for i, f in enumerate(frames.column("frame").to_pylist()):
        pred_by_frame[f].append(i)
    lab_by_frame: dict[int, list[int]] = defaultdict(list)
    for i, f in enumerate(labels.column("frame").to_pylist()):
        lab_by_frame[f].append(i)

    lab_boxes = _boxes(labels) if labels.num_rows else np.zeros((0, 4))
    pred_boxes = _boxes(frames) if frames.num_rows else np.zeros((0, 4))
    lab_obj = labels.column("object_id").to_pylist()
    lab_team = labels.column("team").to_pylist()
    lab_num = labels.column("number").to_pylist()
    pred_tid = frames.column("track_id").to_pylist()
    pred_team = frames.column("team_name").to_pylist()
    pred_num = frames.column("number").to_pylist()
    pred_status = frames.column("status").to_pylist()

    claims = right = 0
    team_seen = team_right = matched_frames = 0
    track_objects: dict[int, Counter[str]] = defaultdict(Counter)
    object_index = {o: k for k, o in enumerate(sorted(set(lab_obj)))}
    track_index = {t: k for k, t in enumerate(sorted(set(pred_tid)))}
    te_gt_ids: list[np.ndarray] = []
    te_tr_ids: list[np.ndarray] = []
    te_sim: list[np.ndarray] = []

    for f in label_frames:
        li = lab_by_frame[f]
        pi = pred_by_frame.get(f, [])
        iou = box_iou(lab_boxes[li], pred_boxes[pi])
        te_gt_ids.append(np.array([object_index[lab_obj[k]] for k in li], dtype=int))
        te_tr_ids.append(np.array([track_index[pred_tid[k]] for k in pi], dtype=int))
        te_sim.append(iou)
        matched_pred: dict[int, int] = {}
        for a, b, _ in match_boxes(lab_boxes[li], pred_boxes[pi], iou_threshold):
            matched_pred[pi[b]] = li[a]
        for p in pi:
            if pred_status[p] == "confirmed" and pred_num[p] is not None:
                claims += 1
                lab = matched_pred.get(p)
                if lab is not None and (pred_team[p], pred_num[p]) == (lab_team[lab], lab_num[lab]):
                    right += 1
        for p, lab in matched_pred.items():
            matched_frames += 1
            track_objects[pred_tid[p]][lab_obj[lab]] += 1
            if pred_team[p] is not None:
                team_seen += 1
                team_right += pred_team[p] == lab_team[lab]

    object_number = dict(zip(lab_obj, lab_num, strict=True))
    track_number: dict[int, str | None] = {}
    track_status: dict[int, str] = {}
    for t, n, s in zip(pred_tid, pred_num, pred_status, strict=True):
        track_number[t] = n
        track_status[t] = s
    tracks_right = wrong_confirmations = off_roster = off_roster_right = 0
    for t, counter in track_objects.items():
        obj = counter.most_common(1)[0][0]
        number_right = track_number[t] == object_number[obj]
        if track_status[t] == "confirmed":
            if number_right:
                tracks_right += 1
            else:
                wrong_confirmations += 1
        elif track_status[t] == "off_roster":
            off_roster += 1
            off_roster_right += number_right

    frames_to_confirm: list[float] = []
    reads_to_confirm: list[float] = []
    if tracks is not None and tracks.num_rows:
        for row in tracks.to_pylist():
            if row["status"] == "confirmed" and row["confirmed_at_frame"] is not None:
                frames_to_confirm.append(row["confirmed_at_frame"] - row["first_frame"])
                reads_to_confirm.append(row["reads_seen"])

    precision = _ratio(right, claims)
    recall = _ratio(right, labels.num_rows)
    f1 = _ratio(2 * precision * recall, precision + recall)
    tracking = _trackeval(te_gt_ids, te_tr_ids, te_sim, len(object_index), len(track_index))
    return ClipScore(
        labelled_frames=len(label_frames),
        labelled_player_frames=labels.num_rows,
        claims=claims,
        right_claims=right,
        identity_precision=precision,
        identity_recall=recall,
        identity_f1=f1,
        tracks_matched=len(track_objects),
        tracks_number_right=tracks_right,
        track_number_accuracy=_ratio(tracks_right, len(track_objects)),
        wrong_confirmations=wrong_confirmations,
        team_accuracy=_ratio(team_right, team_seen),
        team_coverage=_ratio(team_seen, matched_frames),
        median_frames_to_confirm=_median(frames_to_confirm),
        median_reads_to_confirm=_median(reads_to_confirm),
        **tracking,
        off_roster_tracks=off_roster,
        off_roster_numbers_right=off_roster_right,
    )


def _trackeval(
    gt_ids: list[np.ndarray],
    tr_ids: list[np.ndarray],
    sim: list[np.ndarray],
    num_gt_ids: int,
    num_tr_ids: int,
) -> dict[str, float]:
    """IDF1, MOTA and HOTA of one sequence with TrackEval's metric classes."""
    from trackeval.metrics import CLEAR, HOTA, Identity

    data = {
        "num_timesteps": len(gt_ids),
        "gt_ids": gt_ids,
        "tracker_ids": tr_ids,
        "similarity_scores": sim,
        "num_gt_ids": num_gt_ids,
        "num_tracker_ids": num_tr_ids,
        "num_gt_dets": int(sum(len(g) for g in gt_ids)),
        "num_tracker_dets": int(sum(len(t) for t in tr_ids)),
    }
    quiet = {"PRINT_CONFIG": False, "THRESHOLD": 0.5}
    if data["num_gt_dets"] == 0:
        return {"idf1": float("nan"), "mota": float("nan"), "hota": float("nan")}
    identity = Identity(quiet).eval_sequence(data)
    clear = CLEAR(quiet).eval_sequence(data)
    hota = HOTA({"PRINT_CONFIG": False}).eval_sequence(data)
    return {
        "idf1": float(identity["IDF1"]),
        "mota": float(clear["MOTA"]),
        "hota": float(np.mean(hota["HOTA"])),
    }


def read_labels(location: str | os.PathLike[str]) -> pa.Table:
    """Read one clip's labels (any store location) and check them against LABELS."""
    table = pq.read_table(pa.BufferReader(store.read_bytes(os.fspath(location))))
    return check_schema("labels", table.select(LABELS.names))


def label_files(labels_root: str | os.PathLike[str]) -> list[tuple[str, str, str]]:
    """``(game_id, clip_id, location)`` of every ``<labels_root>/<game>/<clip>.parquet``,
    sorted (one listing of the root and one per game folder)."""
    root = store.normalise(labels_root)
    found = []
    for game in store.list_dir(root):
        if not game.is_dir or game.name.startswith("."):
            continue
        folder = store.join(root, game.name)
        for entry in store.list_dir(folder):
            name = entry.name
            if not entry.is_dir and name.endswith(".parquet") and not name.startswith("."):
                found.append((game.name, name[: -len(".parquet")], store.join(folder, name)))
    return sorted(found)


def evaluate_output(
    out_root: str | os.PathLike[str],
    labels_root: str | os.PathLike[str],
    *,
    iou_threshold: float = 0.5,
    identities: dict[tuple[str, str], tuple[pa.Table, pa.Table]] | None = None,
) -> dict[tuple[str, str], ClipScore]:
    """Score every clip of an output directory that has labels.

    Args:
        out_root: hoopray output root (its ``tables/identities/*``), any store location.
        labels_root: ``<labels_root>/<game_id>/<clip_id>.parquet``, any store location.
        identities: optional (frames, tracks) per (game_id, clip_id) to score instead of
            the stored identities (a sweep re-resolves in memory).
    """
    scores: dict[tuple[str, str], ClipScore] = {}
    for game_id, clip_id, label_path in label_files(labels_root):
        key = (game_id, clip_id)
        if identities is not None:
            if key not in identities:
                continue
            frames, tracks = identities[key]
        else:
            frames = store.read_table(out_root, "identities/frames", *key)
            tracks = store.read_table(out_root, "identities/tracks", *key)
            if frames.num_rows == 0 and tracks.num_rows == 0:
                continue
        scores[key] = score_clip(
            read_labels(label_path), frames, tracks, iou_threshold=iou_threshold
        )
    return scores


def pool(scores: dict[tuple[str, str], ClipScore]) -> dict[str, float]:
    """One summary over clips: ratios recomputed from pooled counts, tracking metrics
    averaged weighted by labelled player-frames."""
    if not scores:
        return {}
    s = list(scores.values())
    claims = sum(x.claims for x in s)
    right = sum(x.right_claims for x in s)
    labelled = sum(x.labelled_player_frames for x in s)
    precision, recall = _ratio(right, claims), _ratio(right, labelled)
    weights = np.array([x.labelled_player_frames for x in s], dtype=float)

    def wmean(name: str) -> float:
        values = np.array([getattr(x, name) for x in s], dtype=float)
        ok = ~np.isnan(values)
        return (
            float(np.average(values[ok], weights=weights[ok]))
            if ok.any() and weights[ok].sum()
            else float("nan")
        )

    tracks = sum(x.tracks_matched for x in s)
    return {
        "clips": len(s),
        "identity_precision": precision,
        "identity_recall": recall,
        "identity_f1": _ratio(2 * precision * recall, precision + recall),
        "track_number_accuracy": _ratio(sum(x.tracks_number_right for x in s), tracks),
        "wrong_confirmations": sum(x.wrong_confirmations for x in s),
        "off_roster_tracks": sum(x.off_roster_tracks for x in s),
        "off_roster_numbers_right": sum(x.off_roster_numbers_right for x in s),
        "team_accuracy": wmean("team_accuracy"),
        "median_frames_to_confirm": wmean("median_frames_to_confirm"),
        "median_reads_to_confirm": wmean("median_reads_to_confirm"),
        "idf1": wmean("idf1"),
        "mota": wmean("mota"),
        "hota": wmean("hota"),
    }


def format_table(scores: dict[tuple[str, str], ClipScore]) -> str:
    """A plain-text table, one row per clip plus the pooled row."""
    cols = [
        ("id P", "identity_precision"),
        ("id R", "identity_recall"),
        ("id F1", "identity_f1"),
        ("trk #acc", "track_number_accuracy"),
        ("wrong", "wrong_confirmations"),
        ("off rost", "off_roster_tracks"),
        ("team acc", "team_accuracy"),
        ("IDF1", "idf1"),
        ("MOTA", "mota"),
        ("HOTA", "hota"),
    ]
    header = f"{'game/clip':<32}" + "".join(f"{c:>10}" for c, _ in cols)
    lines = [header, "-" * len(header)]
    for (game, clip), sc in sorted(scores.items()):
        d = sc.as_dict()
        lines.append(f"{game + '/' + clip:<32}" + "".join(_cell(d[k]) for _, k in cols))
    if scores:
        p = pool(scores)
        lines.append(f"{'ALL':<32}" + "".join(_cell(p[k]) for _, k in cols))
    return "\n".join(lines)


def _cell(value: float | int) -> str:
    if isinstance(value, int):
        return f"{value:>10d}"
    return f"{value:>10.3f}"


def labels_from_mot_csv(
    csv_path: str | os.PathLike[str],
    identities: dict[str, tuple[str, str]] | None = None,
) -> pa.Table:
    """Convert a MOT-style CSV to the LABELS schema.

    Rows are ``frame, id, bb_left, bb_top, bb_width, bb_height[, conf, x, y, z][, team,
    number]`` with 1-based frames (MOT convention; converted to 0-based). Team and number
    come from columns 11 and 12 when present, else from ``identities`` (MOT id ->
    (team, number)). Rows with neither are labelled players without an identity.
    """
    rows: dict[str, list] = {name: [] for name in LABELS.names}
    text = store.read_text(os.fspath(csv_path))
    with io.StringIO(text, newline="") as handle:
        for line_no, rec in enumerate(csv.reader(handle), start=1):
            if not rec or rec[0].startswith("#"):
                continue
            if len(rec) < 6:
                raise ValueError(
                    f"{csv_path}:{line_no}: expected at least 6 columns, got {len(rec)}"
                )
            try:
                frame = int(float(rec[0])) - 1
                left, top, width, height = (float(v) for v in rec[2:6])
            except ValueError as err:
                raise ValueError(f"{csv_path}:{line_no}: {err}") from err
            if frame < 0:
                raise ValueError(f"{csv_path}:{line_no}: MOT frames are 1-based, got {rec[0]}")
            obj = rec[1].strip()
            team, number = (
                (rec[10].strip() or None, rec[11].strip() or None)
                if len(rec) >= 12
                else (None, None)
            )
            if team is None and identities and obj in identities:
                team, number = identities[obj]
            values = {
                "frame": frame,
                "object_id": obj,
                "role": "player",
                "team": team,
                "number": number,
                "x1": left,
                "y1": top,
                "x2": left + width,
                "y2": top + height,
                "number_visible": None,
                "nx1": None,
                "ny1": None,
                "nx2": None,
                "ny2": None,
                "mask_rle": None,
            }
            for name in LABELS.names:
                rows[name].append(values[name])
    return check_schema("labels", pa.table(rows, schema=LABELS))


def main(argv: list[str] | None = None) -> int:
    """``python -m hoopray.evaluate OUT_ROOT LABELS_ROOT``: print the metrics table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_root", help="hoopray output root (a path or a URI)")
    parser.add_argument("labels_root", help="<labels>/<game_id>/<clip_id>.parquet (path or URI)")
    parser.add_argument("--iou", type=float, default=0.5, help="box IoU to match (0.5)")
    args = parser.parse_args(argv)
    if not store.is_dir(args.labels_root):
        parser.error(f"labels directory not found: {args.labels_root}")
    scores = evaluate_output(args.out_root, args.labels_root, iou_threshold=args.iou)
    if not scores:
        print(f"no labelled clip of {args.labels_root} has identities under {args.out_root}")
        return 1
    print(format_table(scores))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
