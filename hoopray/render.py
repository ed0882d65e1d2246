"""Annotated video of one clip: player masks in team colours and identity labels.

- A confirmed player's mask is drawn in its team's roster colour and labelled
  ``#23 Robinson`` (``#23`` when the name or team is unknown) under the bottom centre of
  its box.
- An ambiguous player (its number also confirmed on an overlapping track) is drawn in the
  neutral colour and labelled ``#23 ?``.
- An unread player is drawn in the neutral colour, without a label.

Masks are drawn as outlines (``masks="outline"``, the default: the player stays visible
under it), blended in (``"fill"``, at ``opacity``) or not at all (``"none"``); at most
``max_masks`` per frame, labelled players first, so that a tracker that floods a frame
with masks (a random-weight SAM2) leaves the video readable. Labels are always drawn.

The clip is decoded frame by frame and each mask decoded only for the frame it belongs
to, so memory does not grow with the clip's length. The output is H.264 (libx264,
yuv420p) that browsers play. It may go to any :mod:`hoopray.store` location and appears
whole or not at all: the video is encoded into a local temporary file
(:func:`hoopray.store.atomic_path`), then renamed over the target or uploaded as one object.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from hoopray import store
from hoopray.masks import rle_decode
from hoopray.roster import Roster
from hoopray.teams import TeamNaming
from hoopray.types import Identities, IdentityStatus
from hoopray.video import H264Writer, iter_frames, probe

Colour = tuple[int, int, int]

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv")

NEUTRAL: Colour = (160, 160, 160)
MASK_STYLES = ("outline", "fill", "none")
DEFAULT_MAX_MASKS = 20
# Keys of the ``output`` config node that :func:`render_options` passes to :func:`render`.
RENDER_OPTION_KEYS = {"masks": "masks", "mask_opacity": "opacity", "max_masks": "max_masks"}


@dataclass(frozen=True)
class Style:
    """How one track is drawn."""

    colour: Colour
    label: str | None


def _team_colour(roster: Roster | None, team_name: str | None) -> Colour | None:
    if roster is None or team_name is None:
        return None
    try:
        return roster.colour_rgb(team_name)
    except KeyError:
        return None


def track_styles(
    identities: Identities,
    roster: Roster | None,
    naming: TeamNaming | None,
    neutral: Colour = NEUTRAL,
) -> dict[int, Style]:
    """Colour and label of every track of ``identities.tracks``.

    ``team_name`` comes from the identities; where it is null but the team cluster is
    known, ``naming`` fills it in.
    """
    styles: dict[int, Style] = {}
    cluster_to_team = dict(naming.cluster_to_team) if naming is not None else {}
    for row in identities.tracks.to_pylist():
        team = row["team_name"]
        if team is None and row["team_cluster"] is not None:
            team = cluster_to_team.get(row["team_cluster"])
        number = row["number"]
        if row["status"] == IdentityStatus.CONFIRMED and number is not None:
            name = row["player_name"]
            label = f"#{number} {name}" if name else f"#{number}"
            colour = _team_colour(roster, team) or neutral
        elif row["status"] == IdentityStatus.AMBIGUOUS and number is not None:
            label, colour = f"#{number} ?", neutral
        else:
            label, colour = None, neutral
        styles[int(row["track_id"])] = Style(colour=colour, label=label)
    return styles


def _frame_slices(frames: np.ndarray) -> tuple[np.ndarray, dict[int, tuple[int, int]]]:
    """Row order sorted by frame, and each frame's ``(start, stop)`` in that order."""
    order = np.argsort(frames, kind="stable")
    if len(order) == 0:
        return order, {}
    values, starts = np.unique(frames[order], return_index=True)
    stops = np.r_[starts[1:], len(order)]
    return order, {int(v): (int(a), int(b)) for v, a, b in zip(values, starts, stops, strict=True)}


def _mask(counts: str, height: int, width: int, shape: tuple[int, int]) -> np.ndarray:
    mask = rle_decode(counts, height, width)
    if mask.shape != shape:
        import cv2

        mask = cv2.resize(
            mask.astype(np.uint8), (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST
        ).astype(bool)
    return mask


def _blend(rgb: np.ndarray, mask: np.ndarray, colour: Colour, opacity: float) -> None:
    """Blend ``colour`` into ``rgb`` under ``mask``, in place, within the mask's bounds."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return
    cols = np.flatnonzero(mask.any(axis=0))
    window = rgb[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    inside = mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    pixels = window[inside].astype(np.float32)
    pixels = pixels * (1.0 - opacity) + np.asarray(colour, np.float32) * opacity
    window[inside] = np.clip(np.rint(pixels), 0, 255).astype(np.uint8)


def _outline(rgb: np.ndarray, mask: np.ndarray, colour: Colour, thickness: int) -> None:
    """Draw the outer contours of ``mask`` on ``rgb`` in place."""
    import cv2

    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return
    cols = np.flatnonzero(mask.any(axis=0))
    inside = mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].astype(np.uint8)
    contours, _ = cv2.findContours(inside, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    offset = (int(cols[0]), int(rows[0]))
    cv2.drawContours(rgb, contours, -1, colour, thickness, cv2.LINE_8, offset=offset)


def drawn_rows(rows: np.ndarray, labelled: np.ndarray, max_masks: int | None) -> np.ndarray:
    """The rows of one frame whose masks are drawn: all of them, or the first ``max_masks``
    with the labelled ones (``labelled[k]`` for ``rows[k]``) first, order kept within each."""
    if max_masks is None or len(rows) <= max_masks:
        return rows
    order = np.argsort(~labelled, kind="stable")
    return rows[order[:max_masks]]


def render_options(output: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`render`'s drawing keywords from the ``output`` config node (``masks``,
    ``mask_opacity``, ``max_masks``); keys it lacks keep :func:`render`'s defaults."""
    return {arg: output[key] for key, arg in RENDER_OPTION_KEYS.items() if key in output}


def _draw_label(rgb: np.ndarray, box: np.ndarray, text: str, colour: Colour, scale: float) -> None:
    """A filled tag with ``text`` centred under the box, kept inside the frame."""
    import cv2

    font = cv2.FONT_HERSHEY_SIMPLEX
    thickness = max(1, round(scale * 2))
    (tw, th), base = cv2.getTextSize(text, font, scale, thickness)
    pad = max(2, round(4 * scale))
    height, width = rgb.shape[:2]
    w, h = tw + 2 * pad, th + base + 2 * pad
    x1, _, x2, y2 = (float(v) for v in box)
    x0 = round((x1 + x2) / 2 - w / 2)
    y0 = round(y2) + 2
    x0 = min(max(x0, 0), max(width - w, 0))
    y0 = min(max(y0, 0), max(height - h, 0))
    cv2.rectangle(rgb, (x0, y0), (x0 + w - 1, y0 + h - 1), colour, thickness=-1)
    luminance = 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2]
    ink = (0, 0, 0) if luminance > 140 else (255, 255, 255)
    cv2.putText(rgb, text, (x0 + pad, y0 + pad + th), font, scale, ink, thickness, cv2.LINE_AA)


def render(
    clip_path: str | Path,
    tracks: pa.Table,
    identities: Identities,
    roster: Roster | None,
    naming: TeamNaming | None,
    out_path: str | os.PathLike[str],
    *,
    masks: str = "outline",
    opacity: float = 0.5,
    max_masks: int | None = DEFAULT_MAX_MASKS,
    label_font_scale: float | None = None,
    neutral: Colour = NEUTRAL,
    crf: int = 23,
) -> str:
    """Write ``clip_path`` with masks and labels drawn on it to ``out_path`` (H.264).

    Args:
        clip_path: the source clip, a local file (make a scratch copy of a remote one,
            e.g. with :func:`hoopray.store.local_copy`).
        tracks: the clip's ``observations/tracks`` (frame, track_id, box, mask RLE with its
            height and width; a mask of another size is resized to the frame).
        identities: the clip's resolved identities (only ``identities.tracks`` is used);
            a track missing from it is drawn as unread.
        roster: team colours; without it every mask is neutral.
        naming: fills in team names that ``identities`` lacks.
        out_path: destination ``.mp4`` (or ``.mov``/``.mkv``), any store location; a
            local parent folder is created. Nothing appears there unless the whole video
            was written.
        masks: ``outline`` (the mask's outer contour), ``fill`` (blended at ``opacity``)
            or ``none``.
        opacity: mask blend weight in [0, 1] (``fill``).
        max_masks: most masks drawn per frame, labelled players first (None: all).
        label_font_scale: OpenCV font scale; None scales with the frame height
            (0.6 at 720 rows).
        neutral: colour of unconfirmed players.
        crf: x264 quality (lower is better and larger).

    Returns:
        ``out_path``, normalised (:func:`hoopray.store.normalise`). Every frame of the
        clip is written, annotated or not.

    Raises:
        ValueError: an unknown mask style, an opacity outside [0, 1], a negative
            ``max_masks``, or an output without a video suffix.
        hoopray.video.VideoError: the clip cannot be decoded or no frame was written.
    """
    if masks not in MASK_STYLES:
        raise ValueError(f"masks must be one of {MASK_STYLES}, got {masks!r}")
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must be in [0, 1], got {opacity}")
    if max_masks is not None and max_masks < 0:
        raise ValueError(f"max_masks must be >= 0 or None, got {max_masks}")
    out = store.normalise(out_path)
    suffix = os.path.splitext(store.name_of(out))[1].lower()
    if suffix not in VIDEO_SUFFIXES:
        raise ValueError(f"{out}: output must end in one of {sorted(VIDEO_SUFFIXES)}")
    styles = track_styles(identities, roster, naming, neutral)
    unread = Style(colour=neutral, label=None)

    frames = tracks.column("frame").to_numpy()
    order, slices = _frame_slices(frames)
    track_ids = tracks.column("track_id").to_numpy()
    boxes = np.stack([tracks.column(c).to_numpy() for c in ("x1", "y1", "x2", "y2")], axis=1)
    heights = tracks.column("height").to_numpy()
    widths = tracks.column("width").to_numpy()
    rles = tracks.column("mask_rle")

    info = probe(clip_path)
    scale = label_font_scale or max(0.4, 0.6 * info.height / 720)
    thickness = max(1, round(3 * info.height / 720))
    labelled = np.isin(track_ids, [t for t, style in styles.items() if style.label])
    with store.atomic_path(out) as tmp:
        # H264Writer picks its muxer by the suffix and renames its own part file over its
        # target: encode to a name with the video's suffix beside ``tmp``, then move it.
        encoded = tmp.with_name(tmp.name + suffix)
        try:
            with H264Writer(encoded, info.width, info.height, info.fps or 30.0, crf=crf) as w:
                for index, frame in iter_frames(clip_path):
                    rgb = frame if frame.flags.writeable else frame.copy()
                    start, stop = slices.get(index, (0, 0))
                    rows = order[start:stop]
                    shown = [] if masks == "none" else drawn_rows(rows, labelled[rows], max_masks)
                    for i in shown:
                        style = styles.get(int(track_ids[i]), unread)
                        counts = rles[int(i)].as_py()
                        mask = _mask(counts, int(heights[i]), int(widths[i]), rgb.shape[:2])
                        if masks == "fill":
                            _blend(rgb, mask, style.colour, opacity)
                        else:
                            _outline(rgb, mask, style.colour, thickness)
                    for i in rows:
                        style = styles.get(int(track_ids[i]), unread)
                        if style.label:
                            _draw_label(rgb, boxes[i], style.label, style.colour, scale)
                    w.write(rgb)
            os.replace(encoded, tmp)
        finally:
            encoded.unlink(missing_ok=True)
    return out
