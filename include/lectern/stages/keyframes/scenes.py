"""Scene changes: where a video cuts from one shot to another, for clips cut at scene changes (InternVid-style
video-text pairs) rather than at sentence ends.

Frames are sampled LECTERN_SCENE_FPS times a second as small thumbnails and each is compared with the one before:
``histogram`` (the default) by the distance of their colour histograms, which a cut changes and motion within a shot
barely does; ``difference`` by their mean absolute pixel difference, which also sees a cut between shots of similar
colours but is more sensitive to fast motion. Both distances lie in [0, 1]; a sample farther than
LECTERN_SCENE_THRESHOLD from the previous one starts a new scene, unless the current scene is shorter than
LECTERN_SCENE_MIN_S (a flash or a fast pan does not make a run of tiny scenes).
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from lectern.errors import CorruptMedia
from lectern.stages.keyframes.decoding import open_video, scaler, stream_start

METHODS = ("histogram", "difference")
THUMB_WIDTH = 64
BINS = 16


def thumbnails(path: str, fps: float, width: int = THUMB_WIDTH) -> Iterator[tuple[float, np.ndarray]]:
    """(time, RGB thumbnail `width` pixels wide), `fps` a second at most, decoded one at a time."""
    import av

    container, stream = open_video(path)
    to_rgb = scaler(stream, width, "rgb24")
    stream.thread_type = "AUTO"
    start = stream_start(stream)
    step, next_time = 1.0 / fps, 0.0
    with container:
        try:
            for frame in container.decode(stream):
                moment = float(frame.time - start) if frame.time is not None else 0.0
                if moment + 1e-6 < next_time:
                    continue
                while next_time <= moment + 1e-6:  # on a fixed grid: a cut is seen at most 1/fps late
                    next_time += step
                yield moment, to_rgb(frame)
        except av.error.FFmpegError as exc:
            raise CorruptMedia(f"decoding failed: {exc}".splitlines()[0]) from exc


def distance(a: np.ndarray, b: np.ndarray, method: str) -> float:
    """How different two RGB thumbnails are, in [0, 1]."""
    if method == "histogram":
        return float(np.abs(_histogram(a) - _histogram(b)).sum() / 6.0)  # three channels, each L1 distance <= 2
    if method == "difference":
        return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean() / 255.0)
    raise ValueError(f"unknown scene method {method!r}; methods are {', '.join(METHODS)}")


def _histogram(image: np.ndarray) -> np.ndarray:
    pixels = image.reshape(-1, 3)
    counts = [np.bincount(pixels[:, c] // (256 // BINS), minlength=BINS) for c in range(3)]
    return np.concatenate(counts) / len(pixels)


def scene_cuts(path: str, method: str = "histogram", threshold: float = 0.3, min_scene_s: float = 1.0,
               fps: float = 4.0) -> tuple[list[float], dict]:
    """The times where a new scene starts (not 0), and metrics: frames compared and the largest distance."""
    if method not in METHODS:
        raise ValueError(f"unknown scene method {method!r}; methods are {', '.join(METHODS)}")
    cuts: list[float] = []
    previous, scene_start, compared, largest = None, 0.0, 0, 0.0
    for moment, thumb in thumbnails(path, fps):
        if previous is not None:
            change = distance(previous, thumb, method)
            compared, largest = compared + 1, max(largest, change)
            if change > threshold and moment - scene_start >= min_scene_s:
                cuts.append(round(moment, 3))
                scene_start = moment
        previous = thumb
    return cuts, {"frames_compared": compared, "largest_change": round(largest, 4)}


def scene_spans(cuts: list[float], duration: float, max_s: float) -> list[tuple[float, float]]:
    """Contiguous (start, end) spans covering [0, duration]: one per scene, a scene longer than `max_s` split into
    equal parts no longer than it."""
    bounds = [0.0, *[c for c in cuts if 0.0 < c < duration], duration]
    spans = []
    for start, end in zip(bounds, bounds[1:]):
        parts = max(1, int(np.ceil((end - start) / max_s - 1e-9))) if max_s > 0 else 1
        edges = np.linspace(start, end, parts + 1)
        spans += [(round(float(a), 3), round(float(b), 3)) for a, b in zip(edges, edges[1:])]
    return spans
