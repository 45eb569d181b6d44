"""Keyframe selection (the paper's Algorithm 1, made to hold on recorded lectures): the first sampled frame is a
keyframe and the reference; each later sampled frame whose SSIM with the reference is below the threshold becomes
a keyframe and the new reference.

``select_keyframes`` holds on recorded lectures: frames are compared denoised (a pointer, a flash or an animation's
middle is gone in the median of three samples), and cells that move all the time (a speaker's webcam, a video
playing in a slide, the speaker full screen) do not decide.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np

from lectern.stages.keyframes.registration import registered
from lectern.stages.keyframes.ssim import Gray, cell_edges, cell_similarity

# Grey levels: keyframes whose 64x36 thumbnails differ less are compared in full (the same slide with noise: 0.01-0.15;
# another slide, even one changed digit: 0.68 and more).
DEDUP_THUMB_DIFF = 0.5




@dataclass
class Sample:
    time: float
    gray: np.ndarray
    rgb: Callable[[], np.ndarray]  # the full-resolution frame, made on demand


@dataclass
class Keyframe:
    time: float
    image: np.ndarray  # RGB, full resolution
    ssim: float | None  # with the reference it replaced (None for the first)
    gray: np.ndarray = field(repr=False, default=None)


def _thumb(gray: np.ndarray) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(gray).resize((64, 36), Image.BILINEAR), dtype=np.float32)


def _median3(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    return np.maximum(np.minimum(a, b), np.minimum(np.maximum(a, b), c))


def _dilate(mask: np.ndarray) -> np.ndarray:
    """A cell mask grown by one cell in each of the 8 directions."""
    padded = np.pad(mask, 1)
    rows, cols = mask.shape
    return np.logical_or.reduce([padded[i:i + rows, j:j + cols] for i in range(3) for j in range(3)])


# A cell is *moving* at a sample when it changed between at least MOVING_SHARE of the consecutive sample pairs
# within MOTION_WINDOW samples either side: a speaker's webcam, a video playing in a slide, the speaker full screen.
# A slide change moves a cell once; writing, a scroll or an animation a few times in a row.
MOTION_WINDOW = 4
MOVING_SHARE = 0.6
DEDUP_MEMORY = 256  # keyframes remembered for LECTERN_KEYFRAME_DEDUP: memory stays bounded on long videos
DEDUP_COMPARED = 4  # of which those with the nearest thumbnails are compared in full
# A slide shown again matches a kept one in every still cell at least this well (noise alone leaves cells above
# 0.98): the change threshold would take "Slide 130" for "Slide 150" (their lowest cell: 0.954).
DEDUP_SSIM = 0.98


def _within(cells: np.ndarray, inside: Gray, outside: Gray, grid: tuple[int, int]) -> Gray:
    """`inside`'s pixels in the cells, `outside`'s elsewhere (`inside` itself where every cell is in). Compared with
    `outside`, the cells left out then score 1, and what differs there does not reach their neighbours' scores
    through SSIM's window (a webcam beside a cell would lower it by its 3-pixel border)."""
    if cells.all():
        return inside
    height, width = inside.pixels.shape
    rows = np.repeat(cells, np.diff(np.append(cell_edges(height, grid[0]), height)), axis=0)
    mask = np.repeat(rows, np.diff(np.append(cell_edges(width, grid[1]), width)), axis=1)
    return Gray(np.where(mask, inside.pixels, outside.pixels))


@dataclass
class _Moment:
    """One sample through the selector: its frame, the frame denoised over its neighbours (the pixelwise median of
    three samples, which removes what is in one place for only one sample: a pointer, a flash, an animation's
    middle), and which cells are moving there."""
    sample: Sample
    denoised: Gray | None = None
    moved: np.ndarray | None = None  # cells that changed since the previous moment
    still: np.ndarray | None = None  # cells not moving (dilated by a cell): the ones that decide
    lasting: np.ndarray | None = None  # cells that do not change over the next MOTION_WINDOW samples
    repeats: bool = False  # denoised from the same three samples as the moment before (the video's last)
    following: "_Moment | None" = None  # the next sample's moment


def select_keyframes(samples: Iterator[Sample], threshold: float, grid: tuple[int, int] = (1, 1),
                     dedup: bool = True, settle_s: float = 0.5, register: bool = True,
                     metrics: dict | None = None) -> Iterator[Keyframe]:
    """Algorithm 1 over the samples (each compared with the last keyframe, the first sample a keyframe), made to
    hold on recorded lectures:
    - with `register`, frames are moved onto one another first (registration.py: a camera filming the screen
      moves a little all the time); `metrics` gets what that did;
    - frames are compared denoised: the median of each sample and its neighbours;
    - only cells that are *still* decide (see MOTION_WINDOW): a webcam inset or a playing video changes all the
      time and never makes a keyframe, nor hides a slide change around it. A keyframe taken while a cell moved
      knows nothing of that cell: when it comes to rest and stays so (MOTION_WINDOW samples), what it shows is
      taken into the reference, not counted as a change (an inset switched off reveals the same slide);
    - a changed frame is a *candidate* until a sample at least `settle_s` later confirms it (similar to it): a
      candidate that keeps changing is replaced (an animation or a scroll yields where it comes to rest), one
      that reverts to the reference is dropped, and so is one still unconfirmed when the video ends (the last
      sample's own frame confirms: a webcam arriving in a cell as the video ends is no slide);
    - the change must last in the cells where it was seen, and cells that do not decide are compared as they are
      now (`_within`): a webcam moving over the slide changes a cell, then moves on, and never reaches its
      neighbours' scores through SSIM's window;
    - with `dedup`, a confirmed frame that matches an earlier keyframe (the same slide shown again) becomes the
      reference without yielding a second image.
    Decisions run MOTION_WINDOW samples behind the decoder, which is what the motion mask looks ahead over."""
    decider = _Decider(threshold, grid, dedup, settle_s)
    if register:
        samples = registered(samples, metrics)
    for moment in denoised_moments(samples, threshold, grid):
        yield from decider.step(moment)


def denoised_moments(samples: Iterator[Sample], threshold: float, grid: tuple[int, int],
             moving_share: float = MOVING_SHARE) -> Iterator[_Moment]:
    """The samples as moments, denoised and with their still cells, in order, MOTION_WINDOW samples behind."""
    moments: list[_Moment] = []  # a sliding window: those yielded and no longer looked at are dropped
    window = MOTION_WINDOW

    def denoise(index: int) -> None:
        # The median of the sample and its two neighbours (at either end of the video, its two nearest).
        low = max(0, min(index - 1, len(moments) - 3))
        trio = [moments[k].sample.gray for k in range(low, min(len(moments), low + 3))]
        moment = moments[index]
        moment.denoised = Gray(_median3(*trio) if len(trio) == 3 else trio[0])
        moment.repeats = index > 0 and low == max(0, index - 2)
        if index > 0:
            moment.moved = cell_similarity(moments[index - 1].denoised, moment.denoised, grid) < threshold

    def mark_still(index: int) -> None:
        ahead = [m.moved for m in moments[index + 1:index + window + 1] if m.moved is not None]
        moments[index].lasting = ~np.logical_or.reduce(ahead) if ahead else np.ones(grid, bool)
        moved = [m.moved for m in moments[max(1, index - window + 1):index + window + 1] if m.moved is not None]
        if len(moved) < 3:
            moments[index].still = np.ones(grid, bool)
            return
        moving = np.mean(moved, axis=0) >= moving_share
        moments[index].still = ~_dilate(moving)

    ended = False
    iterator = iter(samples)
    index = 0  # the next moment to yield
    while True:
        if not ended:
            try:
                moments.append(_Moment(next(iterator)))
                if len(moments) > 1:
                    moments[-2].following = moments[-1]
            except StopIteration:
                ended = True
        total = len(moments)
        # denoise needs the next sample (the first: the next two); marking needs `window` denoised moments ahead.
        for k in range(max(0, index - 1), total):
            if moments[k].denoised is None and (total >= max(3, k + 2) or ended):
                denoise(k)
        while index < total and (ended or index + window < total) and \
                all(m.denoised is not None for m in moments[index:min(total, index + window + 1)]):
            mark_still(index)
            yield moments[index]
            index += 1
        if ended and index >= total:
            return
        drop = max(0, index - window - 2)
        if drop:
            del moments[:drop]
            index -= drop


class _Decider:
    """Algorithm 1's decisions over denoised moments whose still cells are known (select_keyframes)."""

    def __init__(self, threshold: float, grid: tuple[int, int], dedup: bool, settle_s: float):
        self.threshold, self.grid, self.dedup, self.settle_s = threshold, grid, dedup, settle_s
        self.reference: Gray | None = None
        self.known: np.ndarray | None = None  # the reference's cells that were still when it was taken
        self.candidate: tuple[_Moment, float, np.ndarray] | None = None  # the moment, its score, its changed cells
        # (thumbnail, frame, still cells) of the last DEDUP_MEMORY keyframes; frames as pixels (a Gray is 12x bigger)
        self.kept: deque[tuple[np.ndarray, np.ndarray, np.ndarray]] = deque(maxlen=DEDUP_MEMORY)

    def step(self, moment: _Moment) -> Iterator[Keyframe]:
        still = moment.still
        if self.reference is None:
            yield from self.adopt(moment, None)
            return
        self.rebase(moment)
        usable = still & self.known
        if self.candidate is not None:
            held, score, changed = self.candidate
            both = usable & held.still
            # The video's last moment is denoised from the same samples as the one before: its own frame confirms.
            seen = Gray(moment.sample.gray) if moment.repeats else moment.denoised
            agree = cell_similarity(_within(both, held.denoised, seen, self.grid), seen, self.grid) >= self.threshold
            # The change must be seen to last where it was seen: a cell an inset passed over changes, then moves
            # (no longer deciding) while the cells around it, unchanged, agree.
            seen_again = changed & both
            if seen_again.any() and agree[both].all():
                # ...and still differ from the reference there: a change at the threshold (a camera's noise and a
                # tenth of a pixel's misregistration) is seen once, not twice.
                cells = cell_similarity(_within(both, self.reference, seen, self.grid), seen, self.grid)
                if not (cells[seen_again] < self.threshold).any():
                    self.candidate = None
                    return
                if moment.sample.time - held.sample.time >= self.settle_s:
                    self.candidate = None
                    yield from self.adopt(held, score)
                return  # stable, or too soon to call it so
            self.candidate = None  # still changing: this moment is judged afresh
        if not usable.any():
            return  # everything moves (the speaker full screen): nothing to decide on
        cells = cell_similarity(_within(usable, self.reference, moment.denoised, self.grid), moment.denoised,
                                self.grid)
        changed = usable & (cells < self.threshold)
        if changed.any():
            self.candidate = (moment, round(float(cells[usable].min()), 4), changed)

    def rebase(self, moment: _Moment) -> None:
        """Cells the reference was taken without knowing (they moved then) and that are still now take what they
        show now: an inset switched off, a playing video stopped."""
        learn = moment.still & moment.lasting & ~self.known
        if not learn.any():
            return
        self.reference = _within(learn, moment.denoised, self.reference, self.grid)
        self.known = self.known | learn

    def adopt(self, moment: _Moment, score: float | None) -> Iterator[Keyframe]:
        """The moment becomes the reference; its image is a keyframe unless it is one already kept (dedup)."""
        self.reference, self.known = moment.denoised, moment.still.copy()
        thumb = _thumb(moment.denoised.pixels)
        # Only the few keyframes whose thumbnails match best, and nearly, are compared in full: slides of one
        # template all nearly match at 64 x 36, and a long video keeps hundreds.
        near = sorted((float(np.abs(thumb - kept[0]).mean()), n) for n, kept in enumerate(self.kept) if self.dedup)
        for diff, n in near[:DEDUP_COMPARED]:
            _thumb_kept, kept, kept_still = self.kept[n]
            both = moment.still & kept_still
            if diff < DEDUP_THUMB_DIFF and both.any() and (cell_similarity(kept, moment.denoised, self.grid)[both]
                                                           >= max(self.threshold, DEDUP_SSIM)).all():
                return
        self.kept.append((thumb, moment.denoised.pixels, moment.still))
        sample = self.shown(moment)
        yield Keyframe(sample.time, sample.rgb(), score, sample.gray)

    def shown(self, moment: _Moment) -> Sample:
        """The sample whose own image shows what the denoised moment does: the moment's, or where that is an
        animation's middle (the median already shows where it comes to rest), the next one's."""
        options = [moment.sample] + ([moment.following.sample] if moment.following else [])
        if not moment.still.any():
            return options[0]
        scores = []
        for option in options:  # the next one is compared only when the moment's own is not it
            scores.append(float(cell_similarity(option.gray, moment.denoised, self.grid)[moment.still].min()))
            if scores[-1] >= self.threshold:
                return option
        return options[int(np.argmax(scores))]
