"""The keyframes stage's work: run(video, store, settings) -> StageResult (what it does: its package's docstring)."""

from __future__ import annotations

import bisect
import io
import time
from dataclasses import dataclass, field

import numpy as np

from lectern.config import Settings
from lectern.errors import CorruptMedia, MissingInput
from lectern.pipeline import artifact_key
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
    """Cut the video into clips (cut_clips), extract their keyframes (extract_keyframes), document them
    (clip_documents: clips.json), then filter them against their text (filter_clips, with LECTERN_CLIP_FILTER_MODEL)."""
    source_key = video.artifact("download", "source")
    asr_key = video.artifact("transcribe", "asr")
    if not source_key:
        raise MissingInput(f"{video.id}: keyframes need the source video")
    # A video-text-pairs video has no transcript (its recipe skips transcribe): its clips are cut at scene changes.
    asr = store.get_json(asr_key) if asr_key else None
    refined_key = video.artifact("judge", "refined_asr")
    refined = store.get_json(refined_key)["segments"] if refined_key else None
    probe = store.get_json(artifact_key("download", "probe", video.id))
    started = time.monotonic()
    stale = set(store.list(Keys.video(video.id, "keyframes/")))
    with store.local_path(source_key) as path:
        if probe["duration_s"] is None:  # probe measured none: no packet with a timestamp, nothing to cut
            raise CorruptMedia(f"{video.id}: no frame with a timestamp (its duration is unknown)")
        clips, segmenting = cut_clips(str(path), asr["segments"] if asr else None, float(probe["duration_s"]),
                                      settings)
        extracted = extract_keyframes(str(path), clips, video.id, store, settings)
    seconds = time.monotonic() - started
    documents = clip_documents(clips, extracted, refined)
    dropped: set[str] = set()
    if settings.clip_filter_model:
        filter_clips(documents, store, settings)
        dropped = {f["key"] for d in documents for f in d.get("dropped_keyframes", [])}
    # Keys of a previous attempt are overwritten; stale extra ones are removed so a rerun never duplicates. A
    # dropped image is not kept in the store.
    for key in (stale | dropped) - (extracted.written - dropped):
        store.delete_prefix(key)
    duration = float(probe["duration_s"])
    keyframes = len(extracted.written) - len(dropped)
    metrics = {"clips": len(clips), "keyframes": keyframes, "seconds": round(seconds, 3),
               "realtime_factor": round(duration / seconds, 1) if seconds else None, "sampling": extracted.mode,
               "frames_compared": len(extracted.sampled_times), "ssim_threshold": settings.ssim_threshold,
               "ssim_grid": "x".join(map(str, settings.ssim_grid)), "interval_s": settings.keyframe_interval_s,
               **extracted.registration, **segmenting}
    if settings.face_max_area is not None:
        metrics["face_keyframes"] = extracted.faces
    if settings.clip_filter_model:
        metrics.update(clip_filter_dropped_keyframes=len(dropped),
                       clips_text_only=sum(1 for d in documents if d.get("dropped_keyframes")))
    key = store.put_json(artifact_key("keyframes", "clips", video.id), {"video_id": video.id, "clips": documents,
                                                 "metrics": without_timings(metrics)})
    if keyframes == 0:
        reason = (f"no keyframes left: the visual-text filter dropped all {len(extracted.written)}"
                  if extracted.written else "no keyframes extracted")
        return StageResult.rejected(reason, metrics)
    return StageResult.succeeded({"clips": key}, metrics)


@dataclass
class Extracted:
    """The keyframes of a video, per clip, as stored: each clip's images in time order, every frame compared,
    the sampling used, how many mostly show a face, and the keys written."""
    per_clip: list[list[dict]]
    sampled_times: list[float]
    mode: str
    faces: int
    written: set[str]
    registration: dict = field(default_factory=dict)  # whether the video was filmed, and the samples moved back


def extract_keyframes(path: str, clips: list[Clip], video_id: str, store: Store, settings: Settings) -> Extracted:
    """SSIM keyframes (Algorithm 1 over the sampled frames) written to the store as JPEGs, each under the clip
    its time falls in."""
    mode = settings.keyframe_sampling
    if mode == "auto":
        mode = decoding.choose_sampling(path, settings.keyframe_max_gop_s)
    found = Extracted([[] for _ in clips], [], mode, 0, set())
    starts = [clip.start for clip in clips]

    def counted(samples):
        for sample in samples:
            found.sampled_times.append(sample.time)
            yield sample

    samples = counted(decoding.sample_frames(path, mode, settings.keyframe_interval_s, settings.ssim_width,
                                             settings.ssim_threshold, settings.ssim_grid))
    for keyframe in selection.select_keyframes(samples, settings.ssim_threshold, settings.ssim_grid,
                                               settings.keyframe_dedup, metrics=found.registration):
        # A keyframe that mostly shows a face stays (as published), marked: a release's export writes the
        # face-filtered variant without it.
        face = settings.face_max_area is not None and face_area_ratio(keyframe.gray) > settings.face_max_area
        found.faces += face
        c = clip_index(starts, keyframe.time)
        n = len(found.per_clip[c]) + 1
        key = store.put_bytes(Keys.keyframe(video_id, clips[c].start, clips[c].end, n), _jpeg(keyframe.image))
        found.written.add(key)
        found.per_clip[c].append({"key": key, "time": round(keyframe.time, 3),
                                  "ssim": None if keyframe.ssim is None else round(keyframe.ssim, 4),
                                  **({"face": True} if face else {})})
    return found


def clip_documents(clips: list[Clip], extracted: Extracted, refined: list[dict] | None) -> list[dict]:
    """clips.json's clips: each one's span, transcript segments and text (refined where the judge rewrote it),
    the frames compared in it and its keyframes."""
    starts = [clip.start for clip in clips]
    times_per_clip: list[list[float]] = [[] for _ in clips]
    for moment in extracted.sampled_times:
        times_per_clip[clip_index(starts, moment)].append(moment)
    return [
        {"index": i, "start": round(clip.start, 3), "end": round(clip.end, 3), "segments": clip.segments,
         "asr": clip.text, "refined_asr": " ".join(refined[j]["text"] for j in clip.segments) if refined else None,
         "sampled_times": times_per_clip[i],
         "keyframes": extracted.per_clip[i]}
        for i, clip in enumerate(clips)
    ]


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
