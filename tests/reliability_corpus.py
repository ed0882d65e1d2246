"""The bad-input corpus of the reliability tests, and test-only fault doubles.

:func:`build_corpus` writes, under a temporary directory, a games root in which each
:class:`Case` is one thing an archive can throw at hoopray (a zero-byte file, a
truncated mp4, a rotated phone clip, a malformed roster, ...), beside control clips
that must come through untouched. Clips that are expected to work are made from the
synthetic world (:mod:`hoopray.testing.synthetic`) with their own labels, so the replay doubles
see players in them: a clip that decodes wrongly (unrotated, mis-sized) loses its
players and the tests notice.

Nothing here is imported by the package: the doubles at the end are injected through a
config ``_target_`` by the fault tests only.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from omegaconf import DictConfig

from hoopray.testing.replay import ReplayTracker, ReplayTracking, ReplayWorld
from hoopray.testing.synthetic import ClipSpec, clip_key, iter_clip, make_game
from hoopray.types import LABELS
from tests.conftest import compose_config
from tests.test_video import _set_display_rotation

CONTROL = "ctl"
SIZE = (320, 180)
FPS = 10


@dataclass(frozen=True)
class Case:
    """One corpus entry and what must come of it.

    Attributes:
        name: the test id.
        game_id: the game of its status row.
        clip_id: the clip id of its status row (as discovery sanitises it).
        status: "ok", "failed" or "skipped".
        stage: the stage of a failure (or of a warning on an ok row).
        reason: a fragment the row's reason must contain ("" for no reason at all).
        tracks: an ok clip made from the synthetic world must have tracked players.
        size: (width, height) observe must see, upright, when it matters.
        frames: how many frames observe must count, when it matters.
    """

    name: str
    game_id: str
    clip_id: str
    status: str
    stage: str | None = None
    reason: str = ""
    tracks: bool = False
    size: tuple[int, int] | None = None
    frames: int | None = None


@dataclass
class Corpus:
    games: Path
    labels: Path
    outside: Path
    cases: list[Case]
    unreadable: Path
    roster_marker: Path


def config(games: Path, labels: Path, out: Path, *extra: str) -> DictConfig:
    """The replay experiment over ``games``, shrunk for tests (PCA instead of UMAP)."""
    return compose_config(
        "+experiment=replay",
        f"data.root={games}",
        f"data.labels={labels}",
        f"output.root={out}",
        "ray.observe.num_gpus=0.5",
        *extra,
        cpu=True,
    )


# --------------------------------------------------------------------------- encoding


def encode(
    path: Path,
    frames: Iterable[np.ndarray],
    *,
    fps: float = FPS,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    times_ms: list[int] | None = None,
) -> Path:
    """Encode RGB frames with PyAV as given (no padding, any pixel format).

    ``times_ms`` gives every frame's presentation time: a variable frame rate.
    """
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
        first = True
        for index, rgb in enumerate(frames):
            if first:
                stream.height, stream.width = rgb.shape[:2]
                stream.pix_fmt = pix_fmt
                if times_ms is not None:
                    stream.codec_context.time_base = Fraction(1, 1000)
                    stream.time_base = Fraction(1, 1000)
                first = False
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            frame = frame.reformat(format=pix_fmt)
            if times_ms is not None:
                frame.pts, frame.time_base = times_ms[index], Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def write_variant(
    spec: ClipSpec,
    video: Path,
    labels_root: Path,
    *,
    rotate: int = 0,
    **encode_kwargs: object,
) -> Path:
    """Render ``spec`` with its labels and encode it with :func:`encode`.

    ``rotate`` (counter-clockwise degrees) stores the frames turned the other way and
    writes a display matrix that turns them back, as a phone does: decoded upright, the
    frames match the labels again.
    """
    rows: list[dict] = []

    def frames() -> Iterator[np.ndarray]:
        for _, image, labels in iter_clip(spec):
            rows.extend(labels)
            yield np.rot90(image, k=-(rotate // 90)) if rotate else image

    encode(video, frames(), fps=spec.fps, **encode_kwargs)
    if rotate:
        _set_display_rotation(video, rotate)
    target = labels_root / spec.game_id / f"{spec.clip_id}.parquet"
    target.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=LABELS), target)
    return video


# --------------------------------------------------------------------------- corpus


def _malicious_roster(marker: Path) -> str:
    """A roster.yaml with a Python object tag: an unsafe loader would create ``marker``."""
    return (
        "teams: !!python/object/apply:pathlib.Path.touch\n"
        f"  - !!python/object/apply:pathlib.Path ['{marker}']\n"
    )


W, H = SIZE

# The expected outcome of every case; :func:`build_corpus` writes the files.
CASES = (
    Case("control-1", CONTROL, "clip-01", "ok", tracks=True, size=SIZE, frames=15),
    Case("control-2", CONTROL, "clip-02", "ok", tracks=True, size=SIZE, frames=15),
    Case("one-frame clip", CONTROL, "one-frame", "ok", tracks=True, frames=1),
    Case("variable frame rate", CONTROL, "vfr", "ok", tracks=True, frames=12),
    Case("odd size 1279x719", CONTROL, "odd-size", "ok", tracks=True, size=(1279, 719)),
    Case("rotation metadata", CONTROL, "rotated", "ok", tracks=True, size=(H, W)),
    Case("grayscale", CONTROL, "grey", "ok", tracks=True, size=SIZE),
    Case("yuv444", CONTROL, "yuv444", "ok", tracks=True, size=SIZE),
    Case("4K clip", CONTROL, "uhd", "ok", tracks=True, size=(3840, 2160), frames=2),
    Case("first second without players", CONTROL, "empty-start", "ok", tracks=True),
    Case("name with spaces", CONTROL, "with_spaces_", "ok", tracks=True),
    Case("unicode name", CONTROL, "_and_-_-cam", "ok", tracks=True),
    Case("name with ..", CONTROL, "up_and_over", "ok", tracks=True),
    Case("same name, first (dup.mov)", CONTROL, "dup", "ok", tracks=True),
    Case("same name, second (dup.mp4)", CONTROL, "dup.mp4", "failed", "discover", "collides"),
    Case("zero-byte file", CONTROL, "zero", "failed", "discover", "empty file"),
    Case("truncated mp4", CONTROL, "truncated", "failed", "observe", "truncated"),
    Case("not a video", CONTROL, "notes", "failed", "observe", "not a readable video"),
    Case("container without frames", CONTROL, "no-frames", "failed", "observe", "no video"),
    Case("unreadable file", CONTROL, "locked", "failed", "discover", "permission denied"),
    Case("symlink out of the root", CONTROL, "escape", "failed", "discover", "outside"),
    Case("missing roster", "no-roster", "clip-01", "ok", "roster", "no roster.yaml", True),
    Case("malformed roster", "bad-roster", "clip-01", "failed", "roster", "python"),
    Case("game folder without clips", "empty-game", "_game", "failed", "discover", "no usable"),
    Case("a file that is not a video", "empty-game", "README", "skipped", "discover", "not a"),
    Case("game folder linked outside", "linked-game", "_game", "failed", "discover", "outside"),
)


def build_corpus(root: Path) -> Corpus:
    """Write the corpus of :data:`CASES` under ``root``."""
    games, labels, outside = root / "games", root / "labels", root / "outside"
    outside.mkdir(parents=True)
    control = make_game(games, labels, CONTROL, seed=0, clips=2, seconds=1.5, fps=FPS, size=SIZE)
    here = games / CONTROL

    def variant(clip_id: str, file: str, **kwargs: object) -> None:
        keys = ("frames", "width", "height", "empty_frames")
        changes = {k: kwargs.pop(k) for k in keys if k in kwargs}
        spec = replace(control.specs[0], clip_id=clip_id, **changes)
        write_variant(spec, here / file, labels, **kwargs)

    gaps = [50 if i % 2 else 150 for i in range(12)]
    variant("one-frame", "one-frame.mp4", frames=1)
    variant("vfr", "vfr.mp4", frames=12, times_ms=[sum(gaps[:i]) for i in range(12)])
    variant("odd-size", "odd-size.mp4", width=1279, height=719, frames=3, pix_fmt="yuv444p")
    variant("rotated", "rotated.mp4", width=H, height=W, frames=6, rotate=90)
    variant("grey", "grey.mkv", frames=6, codec="ffv1", pix_fmt="gray")
    variant("yuv444", "yuv444.mp4", frames=6, pix_fmt="yuv444p")
    variant("uhd", "uhd.mp4", width=3840, height=2160, frames=2)
    variant("empty-start", "empty-start.mp4", frames=20, empty_frames=10)
    variant("with_spaces_", "with spaces .mp4", frames=4)
    variant("_and_-_-cam", "\u00f1and\u00fa-\u00e9-cam.mp4", frames=4)
    variant("up_and_over", "up..and..over.mp4", frames=4)

    whole = (here / "clip-01.mp4").read_bytes()
    (here / "dup.mp4").write_bytes(whole)
    (here / "dup.mov").write_bytes(whole)
    (here / "zero.mp4").write_bytes(b"")
    (here / "truncated.mp4").write_bytes(whole[: len(whole) * 6 // 10])
    (here / "notes.mp4").write_text("minutes of the meeting, not a video\n")
    with av.open(str(here / "no-frames.mp4"), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        container.start_encoding()
    unreadable = here / "locked.mp4"
    unreadable.write_bytes(whole)
    unreadable.chmod(0)
    (outside / "elsewhere.mp4").write_bytes(whole)
    (here / "escape.mp4").symlink_to(outside / "elsewhere.mp4")

    make_game(games, labels, "no-roster", seed=1, clips=1, seconds=1.0, fps=FPS, size=SIZE)
    (games / "no-roster" / "roster.yaml").unlink()
    make_game(games, labels, "bad-roster", seed=2, clips=1, seconds=1.0, fps=FPS, size=SIZE)
    marker = root / "roster-code-ran"
    (games / "bad-roster" / "roster.yaml").write_text(_malicious_roster(marker))
    (games / "empty-game").mkdir()
    (games / "empty-game" / "README.txt").write_text("clips arrive tomorrow\n")
    (outside / "game-x").mkdir()
    (games / "linked-game").symlink_to(outside / "game-x", target_is_directory=True)
    return Corpus(games, labels, outside, list(CASES), unreadable, marker)


# --------------------------------------------------------------------------- fault doubles
# FOR THE FAULT TESTS ONLY: injected with models.tracker._target_=tests.reliability_corpus...


class FaultyTracking(ReplayTracking):
    """The replay tracking of :mod:`hoopray.testing.replay`, with faults on request.

    Args:
        world: as :class:`~hoopray.testing.replay.ReplayTracking`.
        crash: ``"<game_id>/<clip_id>"`` whose tracker kills its process (``os._exit``)
            at frame ``crash_frame``, once: ``marker`` is created first and a later try
            finds it and goes on.
        crash_frame: the frame to crash at.
        marker: the file that records the crash.
        poison: ``"<game_id>/<clip_id>"`` whose tracker kills its process every time.
        pause_env: name of an environment variable; when set to ``N`` (a number), the
            tracker of the (N+1)-th clip this process opens writes ``<marker>`` and
            sleeps until killed. Unset: no pause (so the same config runs undisturbed).
        leak: ``"<game_id>/<clip_id>"`` whose tracker fails with an error message that
            quotes the secret environment variables, as a careless SDK might.
        hang: ``"<game_id>/<clip_id>"`` whose tracker hangs for ever (a stuck decoder).
        delay: seconds every frame takes (a slow model; sleeping, no CPU used).
        log_dir: a folder where each try of a clip appends a line to ``<clip key>.txt``.
    """

    def __init__(
        self,
        world: ReplayWorld,
        max_missing_frames: int = 15,
        crash: str | None = None,
        crash_frame: int = 4,
        marker: str | None = None,
        poison: str | None = None,
        pause_env: str | None = None,
        leak: str | None = None,
        hang: str | None = None,
        delay: float = 0.0,
        log_dir: str | None = None,
    ) -> None:
        super().__init__(world, max_missing_frames)
        self.hang = _key(hang)
        self.delay = float(delay)
        self.log_dir = Path(log_dir) if log_dir else None
        self.crash = _key(crash)
        self.crash_frame = crash_frame
        self.marker = Path(marker or os.devnull)
        self.poison = _key(poison)
        self.pause_after = os.environ.get(pause_env or "") or None
        self.leak = _key(leak)
        self.opened = 0

    def open(self) -> ReplayTracker:
        if self.pause_after is not None and self.opened >= int(self.pause_after):
            self.marker.write_text(f"paused before clip {self.opened + 1}\n")
            while True:
                time.sleep(1)
        self.opened += 1
        return _FaultyTracker(self, self.world, self.max_missing_frames)


def _node_id() -> str:
    try:
        import ray

        return ray.get_runtime_context().get_node_id() if ray.is_initialized() else "-"
    except Exception:
        return "-"


def _key(name: str | None) -> int | None:
    if not name:
        return None
    game_id, clip_id = name.split("/")
    return clip_key(game_id, clip_id)


class _FaultyTracker(ReplayTracker):
    def __init__(self, owner: FaultyTracking, world: ReplayWorld, max_missing: int) -> None:
        super().__init__(world, max_missing)
        self.owner = owner
        self.logged = False

    def step(self, frame: np.ndarray, new_detections: object = None) -> object:
        found = self.world.frame_labels(frame)
        if found is not None:
            key, index, _ = found
            owner = self.owner
            if owner.log_dir is not None and not self.logged:
                self.logged = True
                owner.log_dir.mkdir(parents=True, exist_ok=True)
                with open(owner.log_dir / f"{key}.txt", "a") as handle:
                    handle.write(f"{os.getpid()} {_node_id()}\n")
            if key == owner.hang:
                while True:
                    time.sleep(1)
            if owner.delay:
                time.sleep(owner.delay)
            if key == owner.poison:
                os._exit(3)
            if key == owner.leak:
                raise RuntimeError(
                    "401 Unauthorized: https://api.example.com/infer?api_key="
                    f"{os.environ.get('ROBOFLOW_API_KEY')} (token {os.environ.get('HF_TOKEN')}, "
                    f"aws {os.environ.get('AWS_SECRET_ACCESS_KEY')} "
                    f"{os.environ.get('AWS_SESSION_TOKEN')})"
                )
            marker = owner.marker
            if key == owner.crash and index >= owner.crash_frame and not marker.exists():
                marker.write_text(f"killed at frame {index}\n")
                os._exit(3)
        return super().step(frame, new_detections)


TABLES = (
    "observations/tracks",
    "observations/reads",
    "observations/team_votes",
    "observations/detections",
    "observations/clip",
    "identities/tracks",
    "identities/frames",
    "status/clips",
)
TIMING = frozenset({"seconds", "seconds_observe", "seconds_resolve", "seconds_render"})


def table_content(
    out: str | Path, game_id: str, leave_out: frozenset[str] = TIMING
) -> dict[str, list[str]]:
    """Every table of a game as sorted rows (JSON), the columns ``leave_out`` left out:
    what two runs must agree on."""
    import json

    from hoopray import store

    found = {}
    for name in TABLES:
        table = store.read_table(str(out), name, game_id)
        keep = [c for c in table.column_names if c not in leave_out]
        rows = table.select(keep).to_pylist()
        found[name] = sorted(json.dumps(r, sort_keys=True, default=str) for r in rows)
    return found


def nightly_command(
    games: Path, labels: Path, out: Path, hydra_dir: Path, *overrides: str
) -> list[str]:
    """The command line of ``jobs/nightly.py`` on a replay world, for a subprocess."""
    return [
        sys.executable,
        str(Path(__file__).resolve().parents[1] / "jobs" / "nightly.py"),
        "+experiment=replay",
        f"data.root={games}",
        f"data.labels={labels}",
        f"output.root={out}",
        f"hydra.run.dir={hydra_dir}",
        *overrides,
    ]
