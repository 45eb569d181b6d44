"""Frame sampling for SSIM keyframes, fast and exact.

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

The benchmarks compare with the naive exact method (lectern_dev.baselines.naive_keyframes: decord, every frame,
full-resolution scikit-image SSIM). PyAV does the decoding here instead of decord: it reads every codec (decord
fails on VP9 with threads and on AV1) and lets a GOP be skipped or read to its I-frame alone, which the fast paths
need (249x realtime against the naive method's 0.3x, docs/performance.md).
"""

from __future__ import annotations

import os
from typing import Iterator, NamedTuple, Sequence

import numpy as np

from lectern.errors import CorruptMedia
from lectern.stages.keyframes.selection import Sample, denoised_moments
from lectern.stages.keyframes.ssim import Gray, cell_similarity


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
    I-frame's time, grayscale and still cells (None for the last GOP, or one that does not change)."""
    start: float
    changes: bool
    until: tuple[float, Gray, np.ndarray] | None


def changing_gops(path: str, width: int, threshold: float, grid: tuple[int, int]) -> Iterator[GopVerdict]:
    """For each I-frame in order, whether the picture changes before the next one: some of its still cells
    (select_keyframes' motion mask, over the I-frames) differ in the next I-frame. A pointer moving over the
    slides differs in every GOP: such a video is decoded nearly in full. The last GOP always counts: nothing
    after it to compare with. A changing GOP's verdict carries the next I-frame's time, grayscale and still cells:
    a GOP whose frames come to show that I-frame is read no further (handed on, that grayscale is not decoded a
    second time: 13 ms a changing GOP on 1080p VP9). Each verdict comes MOTION_WINDOW I-frames after its own, and
    holds one small grayscale: memory stays flat."""
    previous, previous_gray = None, None
    # Over GOPs, slides that change every few I-frames look like motion: only what moves between every pair of
    # I-frames (a webcam, a playing video) is left out.
    for moment in denoised_moments(_decode(path, "iframes", 0.0, width), threshold, grid, moving_share=1.0):
        gray = Gray(moment.sample.gray)  # as it is, not denoised: a slide shown for one GOP only counts
        if previous is not None:
            changes = bool((cell_similarity(previous_gray, gray, grid) < threshold)[moment.still].any())
            until = (moment.sample.time, gray, moment.still) if changes else None
            yield GopVerdict(previous.sample.time, changes, until)
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
    # Where every frame of a GOP is decoded (VP9 at 1080p) its threads pay, one a core (FFmpeg's own count is one
    # more): fewer frames in flight when a GOP is left, less contention with the other two threads. On the 1080p
    # VP9 bench encode, sampling took 2.5 s on one thread, 2.0 on FFmpeg's count and 1.9 on one a core (2 cores).
    stream.thread_type = "NONE" if mode == "scan" and skip == "BIDIR" else "AUTO"
    if mode == "scan":
        stream.thread_count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 0
        stream.codec_context.skip_frame = skip
    reading = _Gops(container, stream, start, iter(verdicts))
    decoded = container.decode(stream) if mode == "interval" else reading
    next_time = -1.0
    with container:
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


def p_frames_stand_alone(path: str, frames: int = 16) -> bool:
    """Whether the stream's P-frames decode the same with its B-frames skipped (x264's B-frames are references
    for other B-frames only): the first `frames` frames decoded both ways (at x264's defaults, 8 P-frames), their
    pictures compared by CRC. A stream without B-frames (VP9) has nothing to skip. The scan waits on this check
    (it chooses the frames skipped): 40 ms on the bench's 720p H.264, 90 with 32 frames and BLAKE2 digests."""
    import zlib

    import av

    container, stream = open_video(path)
    with container:
        if not stream.codec_context.has_b_frames:
            return False

    def p_frames(skip: str, until: int | None = None) -> dict[int, int]:
        container, stream = open_video(path)
        stream.codec_context.skip_frame = skip  # one thread: a few frames do not pay for starting more
        found = {}
        with container:
            try:
                for n, frame in enumerate(container.decode(stream)):
                    if (n >= frames) if until is None else (frame.pts is None or frame.pts > until):
                        break
                    if frame.pict_type == av.video.frame.PictureType.P:
                        found[frame.pts] = zlib.crc32(frame.planes[0])
            except av.error.FFmpegError:
                return {}
        return found

    every = p_frames("NONREF")
    return bool(every) and every.items() <= p_frames("BIDIR", max(every)).items()


class _Gops:
    """Decoded frames of the I-frames, and of the frames of the GOPs `verdicts` says change while `whole`.
    Packets are chosen before the decoder sees them: FFmpeg's VP9 decoder ignores skip_frame."""

    def __init__(self, container, stream, start: float, verdicts: Iterator[GopVerdict]):
        self.container, self.stream, self.start, self.verdicts = container, stream, start, verdicts
        self.pending: GopVerdict | None = None  # the first verdict not yet passed
        self.whole = False
        self.until: tuple[Gray, np.ndarray] | None = None  # what the GOP being read comes to: grayscale, still cells

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
                    self.until = verdict.until[1:] if self.whole and verdict.until else None
                elif not self.whole:
                    continue
            for frame in packet.decode():
                if self.whole or frame.key_frame:
                    yield frame


def _frame_at(container, stream, start: float, moment: float):
    """After a seek, the first frame shown at or after `moment` (the last one for a time past the end; None for
    none)."""
    container.seek(int((moment + start) / stream.time_base), stream=stream, backward=True)
    last = None
    for packet in container.demux(stream):
        for frame in packet.decode():
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
