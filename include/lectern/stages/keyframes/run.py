"""The keyframes stage's work: run(video, store, settings) -> StageResult (what it does: its package's docstring)."""

from __future__ import annotations

import bisect
import io
import time
from dataclasses import dataclass

import numpy as np

from lectern.config import Settings
from lectern.errors import CorruptMedia, MissingInput
from lectern.stage_types import StageResult, VideoRecord, without_timings
from lectern.stages.keyframes import decoding, selection
from lectern.stages.keyframes.faces import face_area_ratio
from lectern.store import Keys, Store

SENTENCE_END = (".", "!", "?", "。", "！", "？")


@dataclass
class Clip:
    start: float
    end: float
    segments: list[int]
    text: str


def segment_clips(segments: list[dict], duration: float, min_s: float, max_s: float) -> list[Clip]:
    """Merge ASR segments into contiguous clips covering [0, duration]. Once a clip is `min_s` long it closes
    at a sentence end, or before the next segment would take it past `max_s` (never inside a segment)."""
    clips: list[Clip] = []
    start, members = 0.0, []
    for i, segment in enumerate(segments):
        members.append(i)
        length = segment["end"] - start
        ends_sentence = segment["text"].rstrip().endswith(SENTENCE_END)
        following = segments[i + 1]["end"] - start if i + 1 < len(segments) else 0.0
        if length >= max_s or (length >= min_s and (ends_sentence or following > max_s)):
            clips.append(Clip(start, segment["end"], members, " ".join(segments[j]["text"] for j in members)))
            start, members = segment["end"], []
    if members:
        clips.append(Clip(start, max(duration, segments[members[-1]]["end"]), members,
                          " ".join(segments[j]["text"] for j in members)))
    elif clips:
        clips[-1].end = max(clips[-1].end, duration)
    if not clips:
        clips.append(Clip(0.0, duration, [], ""))
    return clips


def scene_clips(segments: list[dict], spans: list[tuple[float, float]]) -> list[Clip]:
    """Clips cut at scene changes (scenes.py): each span a clip, with the ASR segments whose middle falls in
    it (a sentence across a cut goes with the scene where most of it is said)."""
    members: list[list[int]] = [[] for _ in spans]
    for i, segment in enumerate(segments):
        middle = (segment["start"] + segment["end"]) / 2
        c = next((k for k, (start, end) in enumerate(spans) if start <= middle < end), len(spans) - 1)
        members[c].append(i)
    return [Clip(start, end, ids, " ".join(segments[j]["text"] for j in ids))
            for (start, end), ids in zip(spans, members)]


def cut_clips(path: str, segments: list[dict] | None, duration: float, settings: Settings) -> tuple[list[Clip], dict]:
    """The video's clips by LECTERN_CLIP_SEGMENTER (at scene changes when there is no transcript, `segments`
    None), and what segmenting measured."""
    if settings.clip_segmenter == "asr" and segments is not None:
        return segment_clips(segments, duration, settings.clip_min_s, settings.clip_max_s), {"clip_segmenter": "asr"}
    segments = segments or []
    from lectern.stages.keyframes import scenes

    cuts, measured = scenes.scene_cuts(path, settings.scene_method, settings.scene_threshold, settings.scene_min_s,
                                       settings.scene_fps)
    spans = scenes.scene_spans(cuts, duration, settings.clip_max_s)
    return scene_clips(segments, spans), {"clip_segmenter": "scene", "scene_method": settings.scene_method,
                                          "scene_cuts": len(cuts), **measured}


def clip_index(starts: list[float], moment: float) -> int:
    """The clip a moment falls in, given the clips' starts (clips are contiguous from 0; past the last clip's end:
    the last)."""
    return max(0, min(bisect.bisect_right(starts, moment) - 1, len(starts) - 1))


def _jpeg(frame: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def run(video: VideoRecord, store: Store, settings: Settings) -> StageResult:
    source_key = video.artifact("download", "source")
    asr_key = video.artifact("transcribe", "asr")
    if not source_key:
        raise MissingInput(f"{video.id}: keyframes need the source video")
    # A video-text-pairs video has no transcript (its recipe skips transcribe): its clips are cut at scene changes.
    asr = store.get_json(asr_key) if asr_key else None
    refined_key = video.artifact("judge", "refined_asr")
    refined = store.get_json(refined_key)["segments"] if refined_key else None
    probe = store.get_json(Keys.probe(video.id))
    started = time.monotonic()
    # Keys of a previous attempt are overwritten; stale extra ones are removed so a rerun never duplicates.
    stale = set(store.list(Keys.video(video.id, "keyframes/")))
    written = set()
    faces = 0
    sampled_times: list[float] = []  # every frame compared (the clip-level file's `extracted_frames`)
    with store.local_path(source_key) as path:
        if probe["duration_s"] is None:  # probe measured none: no packet with a timestamp, nothing to cut
            raise CorruptMedia(f"{video.id}: no frame with a timestamp (its duration is unknown)")
        clips, segmenting = cut_clips(str(path), asr["segments"] if asr else None, float(probe["duration_s"]),
                                      settings)
        starts = [clip.start for clip in clips]
        per_clip: list[list[dict]] = [[] for _ in clips]
        mode = settings.keyframe_sampling
        if mode == "auto":
            mode = decoding.choose_sampling(str(path), settings.keyframe_max_gop_s)

        def counted(samples):
            for sample in samples:
                sampled_times.append(sample.time)
                yield sample

        samples = counted(decoding.sample_frames(str(path), mode, settings.keyframe_interval_s, settings.ssim_width,
                                               settings.ssim_threshold, settings.ssim_grid))
        for keyframe in selection.select_keyframes(samples, settings.ssim_threshold, settings.ssim_grid,
                                                settings.keyframe_dedup):
            # A keyframe that mostly shows a face stays (as published), marked: a release's export writes the
            # face-filtered variant without it.
            face = settings.face_max_area is not None and face_area_ratio(keyframe.gray) > settings.face_max_area
            faces += face
            moment, frame, ssim = keyframe.time, keyframe.image, keyframe.ssim
            c = clip_index(starts, moment)
            n = len(per_clip[c]) + 1
            key = store.put_bytes(Keys.keyframe(video.id, clips[c].start, clips[c].end, n), _jpeg(frame))
            written.add(key)
            per_clip[c].append({"key": key, "time": round(moment, 3), "ssim": None if ssim is None else round(ssim, 4),
                                **({"face": True} if face else {})})
    seconds = time.monotonic() - started
    times_per_clip: list[list[float]] = [[] for _ in clips]
    for moment in sampled_times:
        times_per_clip[clip_index(starts, moment)].append(moment)
    documents = [
        {"index": i, "start": round(clip.start, 3), "end": round(clip.end, 3), "segments": clip.segments,
              "asr": clip.text, "refined_asr": " ".join(refined[j]["text"] for j in clip.segments) if refined else None,
              "sampled_times": times_per_clip[i],
              "keyframes": per_clip[i]}
        for i, clip in enumerate(clips)
    ]
    extracted = sum(len(k) for k in per_clip)
    dropped: set[str] = set()
    if settings.clip_filter_model:
        filter_clips(documents, store, settings)
        dropped = {f["key"] for d in documents for f in d.get("dropped_keyframes", [])}
    for key in (stale | dropped) - (written - dropped):  # a dropped image is not kept in the store
        store.delete_prefix(key)
    duration = float(probe["duration_s"])
    keyframes = extracted - len(dropped)
    metrics = {"clips": len(clips), "keyframes": keyframes, "seconds": round(seconds, 3),
               "realtime_factor": round(duration / seconds, 1) if seconds else None, "sampling": mode,
               "frames_compared": len(sampled_times), "ssim_threshold": settings.ssim_threshold,
               "ssim_grid": "x".join(map(str, settings.ssim_grid)), "interval_s": settings.keyframe_interval_s,
               **segmenting}
    if settings.face_max_area is not None:
        metrics["face_keyframes"] = faces
    if settings.clip_filter_model:
        metrics.update(clip_filter_dropped_keyframes=len(dropped),
                       clips_text_only=sum(1 for d in documents if d.get("dropped_keyframes")))
    key = store.put_json(Keys.clips(video.id), {"video_id": video.id, "clips": documents,
                                                 "metrics": without_timings(metrics)})
    if keyframes == 0:
        reason = (f"no keyframes left: the visual-text filter dropped all {extracted}" if extracted
                  else "no keyframes extracted")
        return StageResult.rejected(reason, metrics)
    return StageResult.succeeded({"clips": key}, metrics)


def filter_clips(documents: list[dict], store: Store, settings: Settings) -> None:
    """The visual-text filter (lectern.clip_filter): a clip whose keyframes don't match its transcript keeps its
    text and loses its images (moved to ``dropped_keyframes``). Images are read back from the store a clip at a
    time."""
    from lectern.clip_filter import clip_similarities

    clips = [([f["key"] for f in d["keyframes"]], d["refined_asr"] or d["asr"]) for d in documents]
    similarities = clip_similarities(settings.clip_filter_model, clips, store.get_bytes)
    for document, similarity in zip(documents, similarities):
        document["visual_text_similarity"] = similarity
        if similarity is not None and similarity < settings.clip_filter_min_similarity:
            document["dropped_keyframes"], document["keyframes"] = document["keyframes"], []
