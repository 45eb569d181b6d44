"""Registration of sampled frames: where a camera in the lecture hall films the screen, the whole picture moves a
little all the time (hand-held jitter, a tripod's wobble, a slow pan or zoom). Each sample is moved back onto the
first one's frame of reference before it is compared: a still slide then reads as still, and a slide change as one.
The motion is measured by phase correlation on each quarter of the frame; the quarters' shifts give the translation
and the zoom (a zoom moves the quarters apart).

Screen captures do not move: a sample that differs from the one before in at most two quarters costs a difference
per quarter, no FFT, and a screen capture's frames are used as they are. A scroll, a push transition or a new slide
moves content by more than a camera does between two samples, or matches nothing: such a shift is not undone.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Iterator

import numpy as np

# The largest translation from the anchor taken for the camera's (a share of the frame's width), and between two
# samples in a row: a scroll or a push moves content further, and is a change to keep.
MAX_SHIFT = 0.06
MAX_STEP = 0.02
MAX_ZOOM = 0.06  # the largest change of scale from the anchor
ZOOM_SMOOTHING = 0.5
MIN_ZOOM = 0.003  # a smaller zoom is taken where a translation alone does not explain the shifts
# Phase correlation's peak (the share of the spectra's energy the shift explains) below which a quarter's shift is
# not trusted: the same view measures 0.3-1.0, two unrelated pictures about 0.02, a blank quarter 0.
MIN_PEAK = 0.1
# The camera moved between FILMED_AFTER of FILMED_WITHIN samples in a row: the video is filmed, and registered (a
# screen capture's scroll moves all of it once, not again and again).
FILMED_AFTER, FILMED_WITHIN = 3, 5
# A quarter shifted less than STILL_PX is still; the picture is still where two are, or one is the same picture
# as before (a peak of IDENTICAL_PEAK: a screen capture's pixels; a camera's noise keeps it below 0.9). Where other
# quarters move then, their content does: a webcam beside the slide.
STILL_PX = 0.25
IDENTICAL_PEAK = 0.9
UNCHANGED_LEVELS = 0.5  # a quarter's mean difference from the sample before (grey levels) below which it is as it was
# Quarters that must agree on a motion: two could be a webcam's picture or the lecturer in a side strip.
MIN_AGREEING = 3
MAX_RESIDUAL_PX = 0.6  # a quarter that disagrees more with the others' motion: content moved there, not the camera
MIN_MOTION_PX = 0.2  # a smaller motion (at the frame's edge) is left as it is: no resampling of a still frame


@dataclass(frozen=True)
class Motion:
    """Where a picture's point p (from the frame's centre c) is in a later frame: c + scale * (p - c) + (dy, dx)."""
    scale: float = 1.0
    dy: float = 0.0
    dx: float = 0.0

    def then(self, later: "Motion") -> "Motion":
        """This motion followed by `later` (measured from where this one left the picture)."""
        return Motion(later.scale * self.scale, later.scale * self.dy + later.dy, later.scale * self.dx + later.dx)

    def size_px(self, shape: tuple[int, int]) -> float:
        """How far it moves the frame's farthest point."""
        return max(abs(self.dy), abs(self.dx)) + abs(self.scale - 1) * max(shape) / 2


STILL = Motion()


@lru_cache(maxsize=4)
def _window(shape: tuple[int, int]) -> np.ndarray:
    """A Hann window: a quarter's edges do not make a shift of their own in the spectrum."""
    return np.outer(np.hanning(shape[0]), np.hanning(shape[1])).astype(np.float32)


def _quarters(shape: tuple[int, int]) -> list[tuple[slice, slice]]:
    height, width = shape
    return [(slice(r * (height // 2), (r + 1) * (height // 2)), slice(c * (width // 2), (c + 1) * (width // 2)))
            for r in (0, 1) for c in (0, 1)]


def spectra(gray: np.ndarray) -> list[np.ndarray]:
    """The spectra of the frame's four quarters, each less its mean and windowed."""
    found = []
    for rows, cols in _quarters(gray.shape):
        values = gray[rows, cols].astype(np.float32)
        found.append(np.fft.rfft2((values - values.mean()) * _window(values.shape)))
    return found


def measure_shift(anchor: np.ndarray, moved: np.ndarray, shape: tuple[int, int],
                  limit: float) -> tuple[float, float, float]:
    """(dy, dx, peak): `moved` (a spectrum) shows `anchor`'s picture moved down by dy and right by dx pixels, looked
    for within `limit` pixels; sub-pixel by the side peak (Foroosh, Zerubia and Berthod 2002)."""
    cross = moved * np.conj(anchor)
    surface = np.fft.irfft2(cross / (np.abs(cross) + 1e-9), shape)
    height, width = shape
    reach_y, reach_x = min(int(limit) + 1, height // 2 - 1), min(int(limit) + 1, width // 2 - 1)
    rows = np.r_[0:reach_y + 1, height - reach_y:height]
    cols = np.r_[0:reach_x + 1, width - reach_x:width]
    near = surface[np.ix_(rows, cols)]
    at = np.unravel_index(int(np.argmax(near)), near.shape)
    y, x = int(rows[at[0]]), int(cols[at[1]])
    peak = float(surface[y, x])

    def refined(index: int, length: int, before: float, after: float) -> float:
        side, value = (1, after) if after >= before else (-1, before)
        offset = side * value / (value + peak) if value > 0 and peak > 0 else 0.0
        position = index + offset
        return position - length if position > length / 2 else position

    dy = refined(y, height, surface[(y - 1) % height, x], surface[(y + 1) % height, x])
    dx = refined(x, width, surface[y, (x - 1) % width], surface[y, (x + 1) % width])
    return dy, dx, peak


def measure_motion(anchor: list[np.ndarray], moved: list[np.ndarray], shape: tuple[int, int],
                   limit: float, zoom_before: float = 0.0) -> Motion | None:
    """The translation (and, where a translation alone does not explain them, the zoom) that carries `anchor`'s
    picture to `moved`'s (both `spectra`), from the shifts of the quarters that are trusted. A quarter that
    disagrees with the others (the lecturer walking through it) is left out; None where fewer than MIN_AGREEING
    agree."""
    height, width = shape
    quarter = (height // 2, width // 2)
    centres = [((r + 0.5) * quarter[0] - height / 2, (c + 0.5) * quarter[1] - width / 2)
               for r in (0, 1) for c in (0, 1)]
    found, identical = [], False
    for (cy, cx), a, b in zip(centres, anchor, moved):
        dy, dx, peak = measure_shift(a, b, quarter, limit)
        if peak >= MIN_PEAK:
            found.append((cy, cx, dy, dx))
            identical = identical or (peak >= IDENTICAL_PEAK and max(abs(dy), abs(dx)) < STILL_PX)
    if identical or sum(max(abs(dy), abs(dx)) < STILL_PX for _cy, _cx, dy, dx in found) >= 2:
        return STILL  # a screen capture's slide beside a webcam strip: what does not move at all is the picture
    while len(found) >= MIN_AGREEING:
        centre_y, centre_x, dys, dxs = (np.array(column) for column in zip(*found))
        # A quarter's shift: (scale - 1) * its centre + the translation.
        design = np.zeros((2 * len(found), 3))
        design[0::2, 0], design[0::2, 1], design[1::2, 0], design[1::2, 2] = centre_y, 1, centre_x, 1
        observed = np.ravel(np.column_stack([dys, dxs]))
        # A translation with the zoom kept where it was (a slow zoom goes on), and a translation with a zoom of its own
        kept = np.array([zoom_before, *np.linalg.lstsq(design[:, 1:], observed - design[:, 0] * zoom_before,
                                                        rcond=None)[0]])
        free = np.linalg.lstsq(design, observed, rcond=None)[0]
        fits = [(solution, np.abs(design @ solution - observed).reshape(-1, 2).max(axis=1))
                for solution in (kept, free)]
        # The zoom where a translation alone does not explain the shifts, or explains them twice as badly (a slow
        # zoom, caught before it misaligns the frame's edges); not the few thousandths the shifts' noise makes.
        zoomed = fits[1][1].max() <= MAX_RESIDUAL_PX and (
            fits[0][1].max() > MAX_RESIDUAL_PX
            or (fits[0][1].max() > 2 * fits[1][1].max() and abs(fits[1][0][0]) >= MIN_ZOOM))
        solution, residual = fits[1] if zoomed else fits[0]
        if residual.max() <= MAX_RESIDUAL_PX:
            zoom, dy, dx = (float(v) for v in solution)
            if abs(zoom) > MAX_ZOOM or max(abs(dy), abs(dx)) > limit:
                return None
            return Motion(1 + zoom, dy, dx)
        del found[int(np.argmax(residual))]
    return None


def refined_motion(anchor: list[np.ndarray], gray: np.ndarray, limit: float, seen: list[np.ndarray] | None = None,
                   zoom_before: float = 0.0) -> Motion | None:
    """measure_motion of the frame `gray` (its spectra `seen`), then once more on the frame moved back: a quarter's
    shift is its content's, not its centre's, so the first zoom is a little off; what is left is measured where it
    is small."""
    shape = gray.shape
    motion = measure_motion(anchor, spectra(gray) if seen is None else seen, shape, limit, zoom_before)
    if motion is None or motion.size_px(shape) < MIN_MOTION_PX:
        return motion
    rest = measure_motion(anchor, spectra(moved_back(gray, motion)), shape, 2.0)
    return rest.then(motion) if rest is not None else motion


def moved_back(gray: np.ndarray, motion: Motion) -> np.ndarray:
    """The frame with `motion` undone (bilinear, its edges repeated where the picture came in from outside)."""
    height, width = gray.shape
    ys = (height - 1) / 2 + motion.scale * (np.arange(height) - (height - 1) / 2) + motion.dy
    xs = (width - 1) / 2 + motion.scale * (np.arange(width) - (width - 1) / 2) + motion.dx
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    wy, wx = (ys - y0).astype(np.float32)[:, None], (xs - x0).astype(np.float32)[None, :]
    rows0, rows1 = np.clip(y0, 0, height - 1), np.clip(y0 + 1, 0, height - 1)
    cols0, cols1 = np.clip(x0, 0, width - 1), np.clip(x0 + 1, 0, width - 1)
    values = gray.astype(np.float32)
    top, bottom = values[rows0], values[rows1]
    top = top[:, cols0] * (1 - wx) + top[:, cols1] * wx
    bottom = bottom[:, cols0] * (1 - wx) + bottom[:, cols1] * wx
    return np.clip(np.rint(top * (1 - wy) + bottom * wy), 0, 255).astype(np.uint8)


def _softened(gray: np.ndarray) -> np.ndarray:
    """A [1, 2, 1] binomial blur each way (edges repeated)."""
    values = np.pad(gray.astype(np.float32), 1, mode="edge")
    rows = values[:-2] + 2 * values[1:-1] + values[2:]
    return np.rint((rows[:, :-2] + 2 * rows[:, 1:-1] + rows[:, 2:]) / 16).astype(np.uint8)


class _Seen:
    """A sample's frame, its motion from the first sample's frame of reference, and its spectra once needed."""

    def __init__(self, gray: np.ndarray, motion: Motion, seen: list[np.ndarray] | None = None):
        self.gray, self.motion, self._spectra = gray, motion, seen

    @property
    def spectra(self) -> list[np.ndarray]:
        if self._spectra is None:
            self._spectra = spectra(self.gray)
        return self._spectra


def _unchanged(before: np.ndarray, now: np.ndarray) -> bool:
    """Two quarters (or more) of the frame as they were, to within compression's noise: the picture did not move
    (what STILL_PX asks of a measured shift), and no FFT is needed. Most samples of a screen capture."""
    changed = [np.abs(now[rows, cols].astype(np.int16) - before[rows, cols]).mean() >= UNCHANGED_LEVELS
               for rows, cols in _quarters(now.shape)]
    return changed.count(False) >= 2


def _measured(samples: Iterator) -> Iterator[tuple]:
    """(sample, its motion from the first sample's frame of reference, whether the camera moved since the sample
    before). A sample is measured against an anchor (directly: no chain of small errors adds up over a still
    slide); where the anchor no longer matches (a new slide, a wide pan), against the sample before (a smaller
    motion), and it becomes the anchor; where neither matches (the lecturer in front of half the screen), it is
    taken to be where the sample before was."""
    anchor = previous = None
    for sample in samples:
        gray, shape = sample.gray, sample.gray.shape
        if anchor is None:
            anchor = previous = _Seen(gray, STILL)
            yield sample, STILL, False
            continue
        before = previous.motion
        if _unchanged(previous.gray, gray):
            previous = _Seen(gray, before)
            yield sample, before, False
            continue
        seen = spectra(gray)
        relative, step = refined_motion(anchor.spectra, gray, MAX_SHIFT * shape[1], seen,
                                        before.scale / anchor.motion.scale - 1), None
        if relative is not None:
            motion = anchor.motion.then(relative)
            # A camera's zoom changes slowly, a measured one by a few thousandths from sample to sample: half of it.
            previous = _Seen(gray, Motion(before.scale + ZOOM_SMOOTHING * (motion.scale - before.scale), motion.dy,
                                          motion.dx), seen)
        else:
            step = measure_motion(previous.spectra, seen, shape, MAX_STEP * shape[1])
            previous = _Seen(gray, before.then(step) if step else before, seen)
            if step is not None:  # a new slide, or a wide pan: the anchor from now on
                anchor = previous
        measured = relative is not None or step is not None
        change = Motion(previous.motion.scale / before.scale, previous.motion.dy - before.dy,
                        previous.motion.dx - before.dx)
        yield sample, previous.motion, measured and change.size_px(shape) >= MIN_MOTION_PX


def registered(samples: Iterator, metrics: dict | None = None) -> Iterator:
    """The samples (lectern.stages.keyframes.selection.Sample), each with its grayscale frame moved onto the first
    sample's frame of reference once the video shows itself filmed: the camera moved between FILMED_AFTER of
    FILMED_WITHIN samples in a row (those are held back until then, and moved too). A screen capture, still but for
    a webcam or a playing video in it, is never moved. `metrics` (if given) gets whether the video was filmed, how
    many samples were moved, and the largest motion (pixels at the frame's edge)."""
    filmed, recent, held = False, deque(maxlen=FILMED_WITHIN), []
    moved, largest = 0, 0.0

    def out(sample, motion: Motion):
        nonlocal moved, largest
        if not filmed:
            return sample
        size = motion.size_px(sample.gray.shape)
        gray = sample.gray
        if size >= MIN_MOTION_PX:
            moved += 1
            largest = max(largest, size)
            gray = moved_back(gray, motion)
        # Every filmed frame softened alike: one moved by half a pixel is blurred by its interpolation, one not
        # moved is not, and text cells would tell them apart.
        return replace(sample, gray=_softened(gray))

    for sample, motion, camera_moved in _measured(samples):
        recent.append(camera_moved)
        filmed = filmed or sum(recent) >= FILMED_AFTER
        held.append((sample, motion))
        while held and (filmed or len(held) > FILMED_WITHIN):
            yield out(*held.pop(0))
    for sample, motion in held:
        yield out(sample, motion)
    if metrics is not None:
        metrics.update(filmed=filmed, registered_samples=moved, largest_motion_px=round(largest, 1))
