"""Frame sampling and SSIM keyframe selection (the paper's Algorithm 1), fast and exact.

Algorithm 1: the first sampled frame is a keyframe and the reference; each later sampled frame whose SSIM with
the reference is below the threshold becomes a keyframe and the new reference.

Sampling (``sample_frames``), all through PyAV (FFmpeg's decoders: H.264, VP9, AV1 alike):
- ``iframes`` (the fast path): the decoder skips every non-key frame (``skip_frame=NONKEY``), so only the
  stream's I-frames are decoded, each reduced to grayscale at LECTERN_SSIM_WIDTH by swscale. Used when the
  stream's I-frames are at most LECTERN_KEYFRAME_MAX_GOP_S apart (typical web video: 1-5 s).
- ``interval``: every frame is decoded (threaded), one every LECTERN_KEYFRAME_INTERVAL_S is kept. The fallback for
  streams with sparse I-frames, and the reference the fast path is measured against.
A full-resolution RGB image is made only for the frames selected as keyframes.

``naive_keyframes`` is the method the benchmarks compare with: decord, every frame, full-resolution SSIM.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

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


def height_for(stream, width: int) -> int:
    """The frame height that keeps the stream's aspect ratio at `width` pixels wide."""
    return max(2, round(stream.codec_context.height * width / stream.codec_context.width))


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
    spacing = iframe_spacing(path)
    return "iframes" if spacing is not None and spacing <= max_gop_s else "interval"


def sample_frames(path: str, mode: str, interval_s: float, width: int) -> Iterator[Sample]:
    """Grayscale frames `width` pixels wide, with their times and a way to get the full frame. Decoding runs in
    a thread ahead of the caller (FFmpeg releases the GIL), so on two cores it overlaps the SSIM work."""
    return _prefetch(_decode(path, mode, interval_s, width))


def _prefetch(items: Iterator, depth: int = 16) -> Iterator:
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


def _decode(path: str, mode: str, interval_s: float, width: int) -> Iterator[Sample]:
    import av

    container, stream = open_video(path)
    height = height_for(stream, width)
    if mode == "iframes":
        stream.codec_context.skip_frame = "NONKEY"
    else:
        stream.thread_type = "AUTO"
    start = stream_start(stream)
    next_time = -1.0
    with container:
        try:
            for frame in container.decode(stream):
                if mode == "iframes" and not frame.key_frame:
                    continue  # a decoder that ignores skip_frame (FFmpeg's VP9) still decodes them: drop them here
                moment = float(frame.time - start) if frame.time is not None else 0.0
                if interval_s > 0:  # samples are never closer than interval_s, whatever the I-frames (0: all)
                    if moment < next_time:
                        continue
                    next_time = (next_time if next_time >= 0 else moment) + interval_s
                    while next_time <= moment:
                        next_time += interval_s
                gray = frame.reformat(width=width, height=height, format="gray").to_ndarray()
                yield Sample(round(moment, 3), gray, lambda f=frame: f.to_ndarray(format="rgb24"))
        except av.error.FFmpegError as exc:
            raise CorruptMedia(f"decoding failed: {exc}".splitlines()[0]) from exc


def similarity(a: np.ndarray, b: np.ndarray, grid: tuple[int, int] = (1, 1)) -> float:
    """SSIM of two grayscale frames: the mean of the SSIM map over the whole frame (grid 1x1, the paper's), or its
    lowest mean over the cells of a rows x columns grid. The grid makes a local change count (a bullet point
    revealed on an otherwise unchanged slide: global 0.96, lowest of 8x12 cells 0.42 at 320 px; one digit changed
    in a title: 0.96 and 0.85) while sensor noise, spread evenly, still scores high everywhere (0.99 global, 0.98
    lowest cell). Local motion (a cursor, a speaker inset) counts as change too: use a coarser grid for such video."""
    full = ssim_map(a, b)
    if grid == (1, 1):
        pad = 3  # as scikit-image's structural_similarity: the mean leaves out the filter's border
        return float(full[pad:-pad, pad:-pad].mean())
    return lowest_cell(full, grid)


def lowest_cell(full: np.ndarray, grid: tuple[int, int]) -> float:
    """The lowest mean of an SSIM map over the cells of a rows x columns grid."""
    rows, cols = grid
    height, width = full.shape
    row_edges, col_edges = np.arange(rows) * height // rows, np.arange(cols) * width // cols
    sums = np.add.reduceat(np.add.reduceat(full, row_edges, axis=0), col_edges, axis=1)
    counts = np.outer(np.diff(np.append(row_edges, height)), np.diff(np.append(col_edges, width)))
    return float((sums / counts).min())


def box_mean(image: np.ndarray, window: int) -> np.ndarray:
    """The mean over a window x window box around each pixel, edges mirrored: scipy.ndimage.uniform_filter's
    default ('reflect') without importing scipy.ndimage (0.4 s of every keyframes process on this machine). Sums
    of window shifted slices: exact in float32 for the integer frames, and their squares and products, SSIM
    filters."""
    half = window // 2
    padded = np.pad(image, ((half, window - 1 - half), (half, window - 1 - half)), mode="symmetric")
    height, width = image.shape
    rows = sum(padded[i:i + height] for i in range(window))
    return sum(rows[:, j:j + width] for j in range(window)) / np.float32(window * window)


def ssim_map(a: np.ndarray, b: np.ndarray, window: int = 7) -> np.ndarray:
    """The SSIM map exactly as scikit-image computes it by default (7x7 uniform window, sample covariance,
    K1 0.01, K2 0.03, data range 255), in float32: equal to it within 1e-3."""
    a, b = a.astype(np.float32), b.astype(np.float32)
    norm = window * window / (window * window - 1)
    mean_a, mean_b = box_mean(a, window), box_mean(b, window)
    var_a = norm * (box_mean(a * a, window) - mean_a * mean_a)
    var_b = norm * (box_mean(b * b, window) - mean_b * mean_b)
    cov = norm * (box_mean(a * b, window) - mean_a * mean_b)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    return ((2 * mean_a * mean_b + c1) * (2 * cov + c2)) / ((mean_a ** 2 + mean_b ** 2 + c1) * (var_a + var_b + c2))


def _thumb(gray: np.ndarray) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(gray).resize((64, 36), Image.BILINEAR), dtype=np.float32)


def select_keyframes(samples: Iterator[Sample], threshold: float, grid: tuple[int, int] = (1, 1),
                     dedup: bool = True, settle_s: float = 0.5) -> Iterator[Keyframe]:
    """Algorithm 1 over the samples, with two refinements:
    - a changed frame is a *candidate* until a sample at least `settle_s` later confirms it is stable (similar to
      it); a candidate that keeps changing is replaced (a cross-fade yields its settled end, not its middle), and
      one that reverts to the reference is dropped (a flash);
    - with `dedup`, a confirmed frame that matches an earlier keyframe (the same slide shown again) becomes the
      reference without yielding a second image."""
    reference: np.ndarray | None = None
    candidate: tuple[Sample, float] | None = None
    kept: list[tuple[np.ndarray, np.ndarray]] = []  # (64 x 36 thumbnail, frame) of every keyframe so far

    def confirm(sample: Sample, score: float | None) -> Keyframe | None:
        thumb = _thumb(sample.gray)
        # Only keyframes whose thumbnails nearly match are compared in full: cheap for long videos.
        if dedup and any(np.abs(thumb - t).mean() < DEDUP_THUMB_DIFF and similarity(sample.gray, g, grid) >= threshold
                         for t, g in kept):
            return None
        kept.append((thumb, sample.gray))
        return Keyframe(sample.time, sample.rgb(), score, sample.gray)

    for sample in samples:
        if reference is None:
            reference = sample.gray
            yield confirm(sample, None)
            continue
        if candidate is not None:
            if similarity(candidate[0].gray, sample.gray, grid) >= threshold:
                if sample.time - candidate[0].time < settle_s:
                    continue  # too soon to call it stable
                reference = candidate[0].gray
                keyframe = confirm(*candidate)
                candidate = None
                if keyframe:
                    yield keyframe
                continue
            candidate = None  # still changing: this sample is judged afresh below
        score = similarity(reference, sample.gray, grid)
        if score < threshold:
            candidate = (sample, round(score, 4))
    if candidate is not None:
        keyframe = confirm(*candidate)
        if keyframe:
            yield keyframe


def naive_keyframes(path: str, threshold: float, grid: tuple[int, int] = (1, 1)) -> Iterator[tuple[float, float | None]]:
    """The exact method, naively: decord decodes every frame at full resolution, scikit-image's SSIM on full-size
    grayscale, the same grid. Yields (time, ssim) of each keyframe. For benchmarks and tests; it runs under
    realtime on 2 cores."""
    import decord
    from skimage.metrics import structural_similarity

    def score(a: np.ndarray, b: np.ndarray) -> float:
        value, full = structural_similarity(a, b, data_range=255, full=True)
        return float(value) if grid == (1, 1) else lowest_cell(full, grid)

    reader = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=1)
    fps = reader.get_avg_fps() or 25.0
    reference = None
    for index in range(len(reader)):
        frame = reader[index].asnumpy()
        gray = (frame @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)
        if reference is None:
            reference = gray
            yield 0.0, None
            continue
        value = score(reference, gray)
        if value < threshold:
            reference = gray
            yield round(index / fps, 3), round(value, 4)


def frames_at(path: str, times: Sequence[float], max_side: int = 512) -> dict[float, np.ndarray]:
    """RGB frames (at most `max_side` pixels on their longer side) at the given times: for each, the first frame
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
                container.seek(int((moment + start) / stream.time_base), stream=stream, backward=True)
                last = None
                for frame in container.decode(stream):
                    last = frame
                    if frame.time is not None and float(frame.time - start) >= moment - 1e-3:
                        break
                if last is not None:
                    found[moment] = last.reformat(format="rgb24", **size).to_ndarray()
        except av.error.FFmpegError as exc:
            raise CorruptMedia(f"decoding failed: {exc}".splitlines()[0]) from exc
    return found
