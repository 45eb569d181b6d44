"""Frame sampling and SSIM keyframe selection (the paper's Algorithm 1), fast and exact.

Algorithm 1: the first sampled frame is a keyframe and the reference; each later sampled frame whose SSIM with
the reference is below the threshold becomes a keyframe and the new reference.

Sampling (``sample_frames``), all through PyAV (FFmpeg's decoders: H.264, VP9, AV1 alike):
- ``iframes`` (the fast path): only the stream's key packets reach the decoder, so only its I-frames are decoded,
  each reduced to grayscale at LECTERN_SSIM_WIDTH by swscale. Used when the stream's I-frames are at most
  LECTERN_KEYFRAME_MAX_GOP_S apart.
- ``scan`` (sparser I-frames, x264's default of 10 s): a first reader decodes the I-frames (``changing_gops``) a few
  GOPs ahead of a second, which decodes, in order, the I-frames again and every frame (one per
  LECTERN_KEYFRAME_INTERVAL_S) of each GOP whose still cells differ between its two I-frames, read only until a
  sample shows what the next I-frame does. Frames that no sampled frame needs are not decoded (``skip_frame``
  NONREF, or BIDIR where the P-frames need no B-frame).
- ``interval``: every frame is decoded (threaded), one every LECTERN_KEYFRAME_INTERVAL_S is kept: the reference
  the fast paths are measured against.
A full-resolution RGB image is made only for the frames selected as keyframes.

Selection (``select_keyframes``) holds on recorded lectures: frames are compared denoised (a pointer, a flash or
an animation's middle is gone in the median of three samples), and cells that move all the time (a speaker's
webcam, a video playing in a slide, the speaker full screen) do not decide.

The benchmarks compare with the naive exact method (lectern_dev.baselines.naive_keyframes: decord, every frame,
full-resolution scikit-image SSIM). PyAV does the decoding here instead of decord: it reads every codec (decord
fails on VP9 with threads and on AV1) and lets a GOP be skipped or read to its I-frame alone, which the fast paths
need (249x realtime against the naive method's 0.3x, docs/performance.md).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Iterator, NamedTuple, Sequence

import numpy as np

from lectern.errors import CorruptMedia

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


def open_video(path: str):
    import av

    try:
        container = av.open(path)
        stream = container.streams.video[0]
    except (av.error.FFmpegError, IndexError) as exc:
        raise CorruptMedia(f"cannot read a video stream: {exc}".splitlines()[0]) from exc
    return container, stream


def stream_start(stream) -> float:
    """Where the stream's timestamps begin: frame times are taken relative to it."""
    return float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0


def turns(frame) -> int:
    """Quarter turns (counter-clockwise) that show the frame upright: its display matrix (a phone's recording is
    stored sideways and tagged rotate=90), as FFmpeg's own players apply it."""
    return round((getattr(frame, "rotation", 0) or 0) / 90) % 4


def upright(frame, array: np.ndarray) -> np.ndarray:
    """A decoded frame's pixels as it is shown."""
    quarter = turns(frame)
    return np.ascontiguousarray(np.rot90(array, quarter)) if quarter else array


def scaler(stream, width: int, format: str = "gray"):
    """frame -> ndarray `width` pixels wide in `format`, upright, the stream's aspect kept. One reformatter for all
    frames: PyAV's frame.reformat sets up a new swscale context on every call, 0.7 of its 1.0 ms on a 720p frame."""
    from av.video.reformatter import VideoReformatter

    reformatter = VideoReformatter()
    coded_width, coded_height = stream.codec_context.width, stream.codec_context.height

    def scaled(frame) -> np.ndarray:
        if turns(frame) % 2:  # shown sideways: the coded height becomes the width
            size = {"width": max(2, round(coded_width * width / coded_height)), "height": width}
        else:
            size = {"width": width, "height": max(2, round(coded_height * width / coded_width))}
        return upright(frame, reformatter.reformat(frame, format=format, **size).to_ndarray())

    return scaled


def iframe_spacing(path: str, probe_seconds: float = 300.0) -> float | None:
    """Median seconds between I-frames over the first `probe_seconds` (packets only, nothing decoded)."""
    container, stream = open_video(path)
    times: list[float] = []
    with container:
        for packet in container.demux(stream):
            if packet.pts is None:
                continue
            moment = float(packet.pts * packet.time_base)
            if packet.is_keyframe:
                times.append(moment)
            if moment > probe_seconds:
                break
    gaps = sorted(b - a for a, b in zip(times, times[1:]))
    return gaps[len(gaps) // 2] if gaps else None


def choose_sampling(path: str, max_gop_s: float) -> str:
    """iframes where the stream's I-frames are at most `max_gop_s` apart, else scan; interval where there are
    not two I-frames to scan between."""
    spacing = iframe_spacing(path)
    if spacing is None:
        return "interval"
    return "iframes" if spacing <= max_gop_s else "scan"


def fixed_mmap_threshold(size: int = 256 * 1024) -> None:
    """Keep glibc's malloc from raising its mmap threshold as it does once large blocks are freed: decoded
    frames (1.4 MB at 720p, their RGB 2.7 MB) then come from heaps that fragment, and a keyframes process grew to
    770 MiB instead of 170 (bench/keyframes.py, memory). At 256 KiB the SSIM's temporaries (230 KB at 320 px)
    still come from the heap: at 128 KiB their mmap calls made the stage 40% slower. glibc only."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(-3, size)  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        pass


def sample_frames(path: str, mode: str, interval_s: float, width: int, threshold: float = 0.95,
                  grid: tuple[int, int] = (8, 12)) -> Iterator[Sample]:
    """Grayscale frames `width` pixels wide, with their times and a way to get the full frame. Decoding runs in
    a thread ahead of the caller (FFmpeg releases the GIL), so on two cores it overlaps the SSIM work. `scan`
    first finds the GOPs in which something changes (changing_gops, by `threshold` and `grid`)."""
    fixed_mmap_threshold()
    if mode != "scan":
        return _prefetch(_decode(path, mode, interval_s, width))
    return _prefetch(_scan(path, interval_s, width, threshold, grid))


def _scan(path: str, interval_s: float, width: int, threshold: float, grid: tuple[int, int]) -> Iterator[Sample]:
    """Scan sampling: changing_gops in a thread of its own, a few GOPs ahead of the decoding it steers. Both sides
    mostly decode, which releases the GIL: on two cores they overlap (run first, on its own, changing_gops took
    0.13 s of the stage's 1.1 s on the 3-minute bench encode)."""
    import itertools
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(1)
    alone = pool.submit(p_frames_stand_alone, path)
    pool.shutdown(wait=False)
    verdicts = _prefetch(changing_gops(path, width, threshold, grid))
    try:
        first = next(verdicts, None)  # the first reader is under way while the B-frame check finishes
        skip = "BIDIR" if alone.result() else "NONREF"
        steering = verdicts if first is None else itertools.chain([first], verdicts)
        yield from _decode(path, "scan", interval_s, width, steering, skip, threshold, grid)
    finally:
        verdicts.close()


class GopVerdict(NamedTuple):
    """Whether the GOP beginning at `start` changes, and, where its frames can come to show the next I-frame, that
    I-frame's time and its still cells (None for the last GOP, or one that does not change)."""
    start: float
    changes: bool
    until: tuple[float, np.ndarray] | None


def changing_gops(path: str, width: int, threshold: float, grid: tuple[int, int]) -> Iterator[GopVerdict]:
    """For each I-frame in order, whether the picture changes before the next one: some of its still cells
    (select_keyframes' motion mask, over the I-frames) differ in the next I-frame. A pointer moving over the
    slides differs in every GOP: such a video is decoded nearly in full. The last GOP always counts: nothing
    after it to compare with. A changing GOP's verdict carries the next I-frame's time and its still cells: a GOP
    whose frames come to show that I-frame is read no further. Each verdict comes MOTION_WINDOW I-frames after its
    own; nothing of a frame is kept: memory stays flat."""
    previous, previous_gray = None, None
    # Over GOPs, slides that change every few I-frames look like motion: only what moves between every pair of
    # I-frames (a webcam, a playing video) is left out.
    for moment in _moments(_decode(path, "iframes", 0.0, width), threshold, grid, moving_share=1.0):
        gray = Gray(moment.sample.gray)  # as it is, not denoised: a slide shown for one GOP only counts
        if previous is not None:
            changes = bool((cell_similarity(previous_gray, gray, grid) < threshold)[moment.still].any())
            yield GopVerdict(previous.sample.time, changes, (moment.sample.time, moment.still) if changes else None)
        previous, previous_gray = moment, gray
    if previous is not None:
        yield GopVerdict(previous.sample.time, True, None)


def _prefetch(items: Iterator, depth: int = 16) -> Iterator:
    """`items` made in a thread of its own, up to `depth` ahead of the caller (from the first one asked for)."""
    import queue
    import threading

    buffer: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        buffer.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            buffer.put(done)
        except BaseException as exc:  # handed to the consumer, raised there
            buffer.put(exc)
        finally:
            if hasattr(items, "close"):
                items.close()  # in the thread that ran it: its own clean-up (a reader's threads) runs here

    worker = threading.Thread(target=produce, name="lectern-decode", daemon=True)
    worker.start()
    try:
        while True:
            item = buffer.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join(timeout=5)


def _decode(path: str, mode: str, interval_s: float, width: int, verdicts: Iterator[GopVerdict] = (),
            skip: str = "NONREF", threshold: float = 0.95, grid: tuple[int, int] = (8, 12)) -> Iterator[Sample]:
    """Frames by `mode`: interval decodes every frame; iframes only the I-frames; scan the I-frames and the frames
    of the GOPs that `verdicts` (changing_gops) says change, but those skipped by `skip` (no sample needs a frame
    no other frame needs), each GOP until a sample looks like the next I-frame (by `threshold` and `grid`, on its
    still cells)."""
    import av

    container, stream = open_video(path)
    to_gray = scaler(stream, width)
    start = stream_start(stream)
    # Scanning P-frames alone (B-frames skipped), each needing the one before, one decoder thread beside
    # changing_gops and the SSIM is faster than FFmpeg's threads: 0.91 s, not 1.06, on the 720p H.264 bench encode.
    # Where every frame of a GOP is decoded (VP9 at 1080p) its threads pay: 2.1 s, not 2.6.
    stream.thread_type = "NONE" if mode == "scan" and skip == "BIDIR" else "AUTO"
    reading = _Gops(container, stream, start, iter(verdicts), _IframeReader(path, width))
    if mode == "scan":
        stream.codec_context.skip_frame = skip
    decoded = container.decode(stream) if mode == "interval" else reading
    next_time = -1.0
    with container, reading:
        try:
            for frame in decoded:
                moment = float(frame.time - start) if frame.time is not None else 0.0
                if interval_s > 0:  # samples are never closer than interval_s, whatever the I-frames (0: all)
                    if moment < next_time:
                        continue
                    next_time = (next_time if next_time >= 0 else moment) + interval_s
                    while next_time <= moment:
                        next_time += interval_s
                gray = to_gray(frame)
                if reading.until is not None and not frame.key_frame:
                    until, still = reading.until
                    if (cell_similarity(gray, until, grid)[still] >= threshold).all():
                        reading.whole = False  # it shows what the next I-frame does: the rest of the GOP is not read
                yield Sample(round(moment, 3), gray, lambda f=frame: upright(f, f.to_ndarray(format="rgb24")))
        except av.error.FFmpegError as exc:
            raise CorruptMedia(f"decoding failed: {exc}".splitlines()[0]) from exc


def p_frames_stand_alone(path: str, frames: int = 32) -> bool:
    """Whether the stream's P-frames decode the same with its B-frames skipped (x264's B-frames are references
    for other B-frames only): the first `frames` frames decoded both ways, their pictures compared. A stream
    without B-frames (VP9) has nothing to skip."""
    import hashlib

    import av

    container, stream = open_video(path)
    with container:
        if not stream.codec_context.has_b_frames:
            return False

    def p_frames(skip: str, until: int | None = None) -> dict[int, bytes]:
        container, stream = open_video(path)
        stream.codec_context.skip_frame = skip  # one thread: a few frames do not pay for starting more
        found = {}
        with container:
            try:
                for n, frame in enumerate(container.decode(stream)):
                    if (n >= frames) if until is None else (frame.pts is None or frame.pts > until):
                        break
                    if frame.pict_type == av.video.frame.PictureType.P:
                        found[frame.pts] = hashlib.blake2b(bytes(frame.planes[0])).digest()
            except av.error.FFmpegError:
                return {}
        return found

    every = p_frames("NONREF")
    return bool(every) and every.items() <= p_frames("BIDIR", max(every)).items()


class _IframeReader:
    """A second reader of the file: the I-frame at a time (one changing_gops found), grayscale at `width`, by a
    seek and a decode. Opened on first use."""

    def __init__(self, path: str, width: int):
        self.path, self.width, self.opened, self.to_gray = path, width, None, None

    def __call__(self, moment: float) -> Gray | None:
        if self.opened is None:
            self.opened = open_video(self.path)
            self.to_gray = scaler(self.opened[1], self.width)
        container, stream = self.opened
        frame = _frame_at(container, stream, stream_start(stream), moment, key_only=True)
        if frame is None:
            return None
        return Gray(self.to_gray(frame))

    def close(self) -> None:
        if self.opened is not None:
            self.opened[0].close()


class _Gops:
    """Decoded frames of the I-frames, and of the frames of the GOPs `verdicts` says change while `whole`.
    Packets are chosen before the decoder sees them: FFmpeg's VP9 decoder ignores skip_frame. `peek` reads the
    I-frame a GOP comes to."""

    def __init__(self, container, stream, start: float, verdicts: Iterator[GopVerdict], peek: _IframeReader):
        self.container, self.stream, self.start, self.verdicts, self.peek = container, stream, start, verdicts, peek
        self.pending: GopVerdict | None = None  # the first verdict not yet passed
        self.whole = False
        self.until: tuple[Gray, np.ndarray] | None = None  # what the GOP being read comes to

    def __enter__(self) -> "_Gops":
        return self

    def __exit__(self, *exc) -> None:
        self.peek.close()

    def verdict(self, begins: float) -> GopVerdict | None:
        """The verdict on the GOP beginning at `begins`: they come in the key packets' order (None for a key packet
        the first reader did not decode as an I-frame)."""
        if self.pending is None or self.pending.start < begins:
            self.pending = next((v for v in self.verdicts if v.start >= begins), None)
        return self.pending if self.pending is not None and self.pending.start == begins else None

    def __iter__(self) -> Iterator:
        for packet in self.container.demux(self.stream):
            if packet.size and packet.pts is not None:  # (the last, empty packet flushes the decoder)
                if packet.is_keyframe:
                    verdict = self.verdict(round(float(packet.pts * packet.time_base) - self.start, 3))
                    self.whole = verdict is not None and verdict.changes
                    until = self.peek(verdict.until[0]) if self.whole and verdict.until else None
                    self.until = (until, verdict.until[1]) if until is not None else None
                elif not self.whole:
                    continue
            for frame in packet.decode():
                if self.whole or frame.key_frame:
                    yield frame


class Gray:
    """A grayscale frame with the local statistics SSIM needs of it, computed once however often it is compared."""

    __slots__ = ("pixels", "values", "mean", "mean_square", "variance")

    def __init__(self, pixels: np.ndarray):
        self.pixels = pixels
        self.values = pixels.astype(np.float32)
        self.mean = box_mean(self.values, SSIM_WINDOW)
        self.mean_square = self.mean * self.mean
        self.variance = _NORM * (box_mean(self.values * self.values, SSIM_WINDOW) - self.mean_square)


SSIM_WINDOW = 7  # scikit-image's default
_NORM = np.float32(SSIM_WINDOW * SSIM_WINDOW / (SSIM_WINDOW * SSIM_WINDOW - 1))  # sample covariance
_C1, _C2 = np.float32((0.01 * 255) ** 2), np.float32((0.03 * 255) ** 2)


def ssim_map(a: np.ndarray | Gray, b: np.ndarray | Gray) -> np.ndarray:
    """The SSIM map exactly as scikit-image computes it by default (7x7 uniform window, sample covariance,
    K1 0.01, K2 0.03, data range 255), in float32: equal to it within 1e-3."""
    a, b = (x if isinstance(x, Gray) else Gray(x) for x in (a, b))
    both = a.mean * b.mean
    covariance = _NORM * (box_mean(a.values * b.values, SSIM_WINDOW) - both)
    return ((2 * both + _C1) * (2 * covariance + _C2)) / (
        (a.mean_square + b.mean_square + _C1) * (a.variance + b.variance + _C2))


def cell_similarity(a: np.ndarray | Gray, b: np.ndarray | Gray, grid: tuple[int, int] = (1, 1)) -> np.ndarray:
    """SSIM per cell of a rows x columns grid: the mean of the SSIM map over each cell (1x1: over the whole frame
    less the filter's border, as scikit-image's structural_similarity)."""
    full = ssim_map(a, b)
    if grid == (1, 1):
        pad = (SSIM_WINDOW - 1) // 2
        return np.array([[full[pad:-pad, pad:-pad].mean()]])
    return cell_means(full, grid)


def similarity(a: np.ndarray | Gray, b: np.ndarray | Gray, grid: tuple[int, int] = (1, 1)) -> float:
    """SSIM of two grayscale frames: the mean of the SSIM map over the whole frame (grid 1x1, the paper's), or its
    lowest mean over the cells of a rows x columns grid. The grid makes a local change count (a bullet point
    revealed on an otherwise unchanged slide: global 0.96, lowest of 8x12 cells 0.42 at 320 px; one digit changed
    in a title: 0.96 and 0.85) while sensor noise, spread evenly, still scores high everywhere (0.99 global, 0.98
    lowest cell)."""
    return float(cell_similarity(a, b, grid).min())


def _edges(length: int, parts: int) -> np.ndarray:
    return np.arange(parts) * length // parts


def cell_means(full: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """The mean of an SSIM map over each cell of a rows x columns grid."""
    rows, cols = grid
    height, width = full.shape
    row_edges, col_edges = _edges(height, rows), _edges(width, cols)
    sums = np.add.reduceat(np.add.reduceat(full, row_edges, axis=0), col_edges, axis=1)
    counts = np.outer(np.diff(np.append(row_edges, height)), np.diff(np.append(col_edges, width)))
    return sums / counts


def box_mean(image: np.ndarray, window: int) -> np.ndarray:
    """The mean over a window x window box around each pixel, edges mirrored: scipy.ndimage.uniform_filter's
    default ('reflect') without importing scipy.ndimage (0.4 s of every keyframes process on this machine). Sums
    of window shifted slices, in place: exact in float32 for the integer frames, and their squares and products,
    SSIM filters."""
    before, after = window // 2, window - 1 - window // 2
    height, width = image.shape
    # np.pad(image, ..., mode="symmetric"), written out: np.pad's own bookkeeping was 40% of the filter's time.
    padded = np.empty((height + window - 1, width + window - 1), image.dtype)
    padded[before:before + height, before:before + width] = image
    padded[:before, before:before + width] = image[before - 1::-1]
    padded[before + height:, before:before + width] = image[height - 1:height - 1 - after:-1]
    padded[:, :before] = padded[:, 2 * before - 1:before - 1:-1]
    padded[:, before + width:] = padded[:, before + width - 1:before + width - 1 - after:-1]
    rows = padded[:height].copy()
    for i in range(1, window):
        rows += padded[i:i + height]
    total = rows[:, :width].copy()
    for j in range(1, window):
        total += rows[:, j:j + width]
    total *= np.float32(1 / (window * window))
    return total


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


@dataclass
class _Moment:
    """One sample through the selector: its frame, the frame denoised over its neighbours (the pixelwise median of
    three samples, which removes what is in one place for only one sample: a pointer, a flash, an animation's
    middle), and which cells are moving there."""
    sample: Sample
    denoised: Gray | None = None
    moved: np.ndarray | None = None  # cells that changed since the previous moment
    still: np.ndarray | None = None  # cells not moving (dilated by a cell): the ones that decide
    following: "_Moment | None" = None  # the next sample's moment


def select_keyframes(samples: Iterator[Sample], threshold: float, grid: tuple[int, int] = (1, 1),
                     dedup: bool = True, settle_s: float = 0.5) -> Iterator[Keyframe]:
    """Algorithm 1 over the samples (each compared with the last keyframe, the first sample a keyframe), made to
    hold on recorded lectures:
    - frames are compared denoised: the median of each sample and its neighbours;
    - only cells that are *still* decide (see MOTION_WINDOW): a webcam inset or a playing video changes all the
      time and never makes a keyframe, nor hides a slide change around it. A keyframe taken while a cell moved
      knows nothing of that cell: when it comes to rest, what it shows is taken into the reference, not counted
      as a change (an inset switched off reveals the same slide);
    - a changed frame is a *candidate* until a sample at least `settle_s` later confirms it (similar to it): a
      candidate that keeps changing is replaced (an animation or a scroll yields where it comes to rest), and one
      that reverts to the reference is dropped;
    - with `dedup`, a confirmed frame that matches an earlier keyframe (the same slide shown again) becomes the
      reference without yielding a second image.
    Decisions run MOTION_WINDOW samples behind the decoder, which is what the motion mask looks ahead over."""
    decider = _Decider(threshold, grid, dedup, settle_s)
    for moment in _moments(samples, threshold, grid):
        yield from decider.step(moment)
    yield from decider.finish()


def _moments(samples: Iterator[Sample], threshold: float, grid: tuple[int, int],
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
        if index > 0:
            moment.moved = cell_similarity(moments[index - 1].denoised, moment.denoised, grid) < threshold

    def mark_still(index: int) -> None:
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
        self.candidate: tuple[_Moment, float] | None = None
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
            held, score = self.candidate
            both = usable & held.still
            agree = cell_similarity(held.denoised, moment.denoised, self.grid) >= self.threshold
            if both.any() and agree[both].all():
                if moment.sample.time - held.sample.time >= self.settle_s:
                    self.candidate = None
                    yield from self.adopt(held, score)
                return  # stable, or too soon to call it so
            self.candidate = None  # still changing: this moment is judged afresh
        if not usable.any():
            return  # everything moves (the speaker full screen): nothing to decide on
        cells = cell_similarity(self.reference, moment.denoised, self.grid)
        if (cells[usable] < self.threshold).any():
            self.candidate = (moment, round(float(cells[usable].min()), 4))

    def rebase(self, moment: _Moment) -> None:
        """Cells the reference was taken without knowing (they moved then) and that are still now take what they
        show now: an inset switched off, a playing video stopped."""
        learn = moment.still & ~self.known
        if not learn.any():
            return
        height, width = moment.denoised.pixels.shape
        rows = np.repeat(learn, np.diff(np.append(_edges(height, self.grid[0]), height)), axis=0)
        mask = np.repeat(rows, np.diff(np.append(_edges(width, self.grid[1]), width)), axis=1)
        self.reference = Gray(np.where(mask, moment.denoised.pixels, self.reference.pixels))
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

    def finish(self) -> Iterator[Keyframe]:
        if self.candidate is not None:
            yield from self.adopt(*self.candidate)
            self.candidate = None


def _frame_at(container, stream, start: float, moment: float, key_only: bool = False):
    """After a seek, the first frame shown at or after `moment` (the last one for a time past the end; None for
    none): key packets only with `key_only` (the moment is an I-frame's)."""
    container.seek(int((moment + start) / stream.time_base), stream=stream, backward=True)
    last = None
    for packet in container.demux(stream):
        if not key_only:
            decoded = packet.decode()
        elif packet.size and packet.pts is not None and packet.is_keyframe:
            # Drained at once: a decoder that reorders holds a frame back until later packets come, which here
            # would be the next I-frames, a GOP or more of demuxing and decoding away (16 ms a peek, not 5).
            decoded = packet.decode() + stream.decode(None)
            stream.codec_context.flush_buffers()
            for frame in decoded:
                frame.time_base = stream.time_base  # (a drained frame comes without it)
        else:
            continue
        for frame in decoded:
            last = frame
            if frame.time is not None and float(frame.time - start) >= moment - 1e-3:
                return frame
    return last


def frames_at(path: str, times: Sequence[float], max_side: int = 512) -> dict[float, np.ndarray]:
    """RGB frames, upright (at most `max_side` pixels on their longer side) at the given times: for each, the first
    frame
    shown at or after it (the last frame for a time past the end). One seek per time, so a few frames of a long
    video cost a few GOPs, not a full decode."""
    import av

    container, stream = open_video(path)
    width, height = stream.codec_context.width, stream.codec_context.height
    scale = min(1.0, max_side / max(width, height))
    size = {"width": max(2, round(width * scale)), "height": max(2, round(height * scale))}
    start = stream_start(stream)
    found: dict[float, np.ndarray] = {}
    with container:
        try:
            for moment in sorted(set(times)):
                frame = _frame_at(container, stream, start, moment)
                if frame is not None:
                    found[moment] = upright(frame, frame.reformat(format="rgb24", **size).to_ndarray())
        except av.error.FFmpegError as exc:
            raise CorruptMedia(f"decoding failed: {exc}".splitlines()[0]) from exc
    return found
