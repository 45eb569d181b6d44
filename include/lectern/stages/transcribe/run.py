"""The transcribe stage's work: run(video, store, settings) -> StageResult (what it does: its package's docstring)."""

from __future__ import annotations

import subprocess
import time
from contextlib import closing
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

from lectern import models
from lectern.config import Settings
from lectern.errors import CorruptMedia, MissingInput, PermanentError
from lectern.pipeline import artifact_key
from lectern.stage_types import StageResult, VideoRecord, without_timings
from lectern.stages.transcribe import asr_quality
from lectern.store import Store

SAMPLE_RATE = 16000
WINDOW_EDGE_S = 0.5  # a segment ending this close to a window's end was cut by the window
LANGUAGE_WINDOW_S = 30.0  # Whisper guesses the language from one 30 s window
REDO_TEMPERATURES = (0.2, 0.4, 0.6, 0.8, 1.0)  # a looping segment's second decoding: Whisper's fallback, above 0


@dataclass
class LoopGuard:
    """Whisper's own fallback, which WhisperX's batched decoding drops: a segment that loops
    (asr_quality.loops) is decoded again on its own by Whisper's sequential decoder, without the initial prompt and
    at REDO_TEMPERATURES with the compression-ratio check; one that still loops is dropped. Counts what it did."""

    pipeline: Any
    language: str
    max_compression_ratio: float
    decoded: int = 0
    redone: int = 0
    dropped: int = 0

    def __call__(self, segments: list[dict], audio: np.ndarray) -> list[dict]:
        kept = []
        for segment in segments:
            self.decoded += 1
            if not asr_quality.loops(segment["text"], self.max_compression_ratio):
                kept.append(segment)
                continue
            self.redone += 1
            text = self.decode_again(audio[int(segment["start"] * SAMPLE_RATE):int(segment["end"] * SAMPLE_RATE)])
            if text and not asr_quality.loops(text, self.max_compression_ratio):
                kept.append({**segment, "text": text})
            else:
                self.dropped += 1
        return kept

    def decode_again(self, audio: np.ndarray) -> str:
        found, _ = self.pipeline.model.transcribe(
            audio, language=self.language, temperature=REDO_TEMPERATURES, initial_prompt=None,
            compression_ratio_threshold=self.max_compression_ratio, condition_on_previous_text=False,
            vad_filter=False, without_timestamps=True)
        return " ".join(part.text.strip() for part in found).strip()

    @property
    def metrics(self) -> dict:
        return {"segments_decoded": self.decoded, "segments_redone_looping": self.redone,
                "segments_dropped_looping": self.dropped}


def align_segments(segments: list[dict], audio, language: str, settings: Settings) -> tuple[list[dict], str | None]:
    """Word times for each segment where alignment works; segment times (no words) where it does not.
    Returns the segments and, when no alignment model could be loaded, why."""
    import whisperx

    if settings.nltk_data:
        import nltk

        if settings.nltk_data not in nltk.data.path:
            nltk.data.path.insert(0, settings.nltk_data)
    try:
        model, metadata = models.aligner(language, settings.align_model, settings.asr_device)
    except Exception as exc:  # no alignment model for this language: keep segment times
        return [dict(s, words=[]) for s in segments], f"{type(exc).__name__}: {exc}"[:300]
    aligned = []
    for segment in segments:
        try:
            result = whisperx.align([segment], model, metadata, audio, settings.asr_device)
            words = [w for s in result["segments"] for w in s.get("words", []) if "start" in w]
        except Exception:  # one bad segment must not lose the others
            words = []
        aligned.append({**segment, "words": [
            {"word": w["word"], "start": round(float(w["start"]), 3), "end": round(float(w["end"]), 3),
             "score": round(float(w.get("score", 0.0)), 3)} for w in words
        ]})
    return aligned, None


def audio_windows(path, window_s: float) -> Iterator[tuple[np.ndarray, bool]]:
    """16 kHz mono audio decoded by ffmpeg as a stream, `window_s` seconds at a time: (samples, is_last).
    Memory stays bounded by one window whatever the video's length."""
    size = int(window_s * SAMPLE_RATE) * 2  # s16le
    command = ["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(path), "-vn", "-f", "s16le", "-ac", "1",
               "-ar", str(SAMPLE_RATE), "-"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        current = proc.stdout.read(size)
        while current:
            following = proc.stdout.read(size)
            yield np.frombuffer(current, np.int16).astype(np.float32) / 32768.0, not following
            current = following
        error = proc.stderr.read().decode(errors="replace").strip()
    if proc.returncode:
        raise CorruptMedia(f"ffmpeg could not decode the audio: {error.splitlines()[-1] if error else proc.returncode}")


def vocabulary_prompt(video: VideoRecord) -> str | None:
    """Whisper's initial prompt: the subject and the knowledge points that found the video, so that their words
    (a course's jargon) are spelled as the course spells them."""
    words = list(dict.fromkeys([*video.subjects, *video.points, *video.vocabulary]))
    return ", ".join(words) + "." if words else None


def transcribe_windows(pipeline, path, language: str, settings: Settings, prompt: str | None = None,
                       guard: LoopGuard | None = None) -> tuple[list[dict], float, str | None]:
    """Transcribe and align window by window. A segment running into a window's end was cut mid-speech: it is
    dropped and its audio carried into the next window, so windows meet at VAD boundaries. `prompt` is Whisper's
    initial prompt for every window (the pipeline is shared: it is set for this video only); `guard` decodes
    looping segments again (LoopGuard)."""
    from dataclasses import replace

    options = pipeline.options
    pipeline.options = replace(options, initial_prompt=prompt)
    try:
        return _transcribe_windows(pipeline, path, language, settings, guard or (lambda found, audio: found))
    finally:
        pipeline.options = options


def _transcribe_windows(pipeline, path, language: str, settings: Settings,
                        guard) -> tuple[list[dict], float, str | None]:
    segments: list[dict] = []
    carry, carry_start, position, align_error = np.zeros(0, np.float32), 0.0, 0.0, None
    for window, is_last in audio_windows(path, settings.asr_window_s):
        start = carry_start if carry.size else position
        position += len(window) / SAMPLE_RATE
        audio = np.concatenate([carry, window]) if carry.size else window
        result = pipeline.transcribe(audio, batch_size=settings.asr_batch_size, language=language,
                                     chunk_size=int(settings.vad_chunk_s))
        found = [{"start": float(s["start"]), "end": float(s["end"]), "text": s["text"].strip()}
                 for s in result["segments"] if s.get("text", "").strip()]
        carry = np.zeros(0, np.float32)
        length = len(audio) / SAMPLE_RATE
        if not is_last and found and found[-1]["end"] >= length - WINDOW_EDGE_S and found[-1]["start"] > 1.0:
            cut = found.pop()
            carry, carry_start = audio[int(cut["start"] * SAMPLE_RATE):], start + cut["start"]
        found = guard(found, audio)
        if found:
            aligned, error = align_segments(found, audio, language, settings)
            align_error = align_error or error
            segments.extend(_shifted(segment, start) for segment in aligned)
    return segments, position, align_error


def _shifted(segment: dict, offset: float) -> dict:
    return {
        **segment,
        "start": round(segment["start"] + offset, 3), "end": round(segment["end"] + offset, 3),
        "words": [{**w, "start": round(w["start"] + offset, 3), "end": round(w["end"] + offset, 3)}
                  for w in segment["words"]],
    }


def detect_language(model, audio) -> tuple[str, float]:
    """A multilingual Whisper's (faster-whisper model's) language guess on the first 30 s, with its probability
    (WhisperX's own keeps only the guess)."""
    from whisperx.audio import N_SAMPLES, log_mel_spectrogram

    n_mels = model.feat_kwargs.get("feature_size") or 80
    window = audio[:N_SAMPLES]
    features = log_mel_spectrogram(window, n_mels=n_mels, padding=max(0, N_SAMPLES - window.shape[0]))
    token, probability = model.model.detect_language(model.encode(features))[0][0]
    return token[2:-2], round(float(probability), 3)


def gates(settings: Settings) -> asr_quality.Gates:
    return asr_quality.Gates(
        min_duration_s=settings.min_duration_s, min_speech_ratio=settings.asr_min_speech_ratio,
        max_repeated_ngrams=settings.asr_max_repeated_ngrams, max_chars_per_second=settings.asr_max_chars_per_second,
        max_filler_share=settings.asr_max_filler_share, max_dropped_loops=settings.asr_max_dropped_loops,
        hallucination_checks=settings.asr_hallucination_checks,
        allowed_languages=settings.allowed_languages,
        min_language_probability=settings.asr_min_language_probability,
    )


def run(video: VideoRecord, store: Store, settings: Settings) -> StageResult:
    started = time.monotonic()
    import whisperx  # noqa: F401 - counted as model loading: torch, pyannote, lightning dominate a cold start

    import_seconds = time.monotonic() - started

    source_key = video.artifact("download", "source")
    if not source_key or not store.exists(source_key):
        raise MissingInput(f"{video.id}: no downloaded source in the store")
    probe = store.get_json(artifact_key("download", "probe", video.id))
    if not probe.get("has_audio"):
        return StageResult.rejected("no audio stream", {"duration_s": probe.get("duration_s")})

    started = time.monotonic()
    pipeline = models.asr_pipeline(settings.whisper_model, settings.asr_device, settings.asr_compute_type,
                                   settings.asr_language, settings.asr_max_new_tokens, settings.vad_onset,
                                   settings.vad_offset, settings.vad_chunk_s)
    load_seconds = import_seconds + time.monotonic() - started
    english_only = not models.is_multilingual(pipeline)
    if english_only and settings.asr_language not in (None, "en"):
        raise PermanentError(f"{settings.whisper_model} is an English-only model: it cannot transcribe "
                             f"{settings.asr_language!r} (LECTERN_ASR_LANGUAGE)")
    prompt = vocabulary_prompt(video) if settings.asr_vocabulary_prompt else None
    # Detect even when the language is fixed: speech in another language is rejected, not mistranscribed. An
    # English-only model cannot detect: LECTERN_LANGUAGE_ID_MODEL does, or its transcript's text is checked (below).
    identifier = None
    if not english_only and (settings.allowed_languages or not settings.asr_language):
        identifier = pipeline.model
    elif english_only and settings.allowed_languages and settings.language_id_model:
        started = time.monotonic()
        identifier = models.language_identifier(settings.language_id_model, settings.asr_device,
                                                settings.asr_compute_type, settings.models_dir)
        load_seconds += time.monotonic() - started
    asr_started = time.monotonic()
    with store.local_path(source_key) as path:
        detected, language_check = None, None
        if identifier is not None:
            with closing(audio_windows(path, LANGUAGE_WINDOW_S)) as windows:
                first = next(windows, None)
            detected = detect_language(identifier, first[0]) if first else None
            language_check = "speech" if detected else None
        language = "en" if english_only else settings.asr_language or (detected[0] if detected else "en")
        guard = LoopGuard(pipeline, language, settings.asr_max_compression_ratio)
        segments, duration, align_error = transcribe_windows(pipeline, path, language, settings, prompt, guard)
    if english_only and settings.allowed_languages and identifier is None:
        detected = asr_quality.text_language(" ".join(s["text"] for s in segments))
        language_check = "transcript" if detected else None
    asr_seconds = time.monotonic() - asr_started
    unaligned = sum(1 for s in segments if not s["words"])
    align_metrics = {"alignment_failure_rate": round(unaligned / len(segments), 3) if segments else 0.0,
                     **({"align_error": align_error} if align_error else {})}
    # Speech is measured on the VAD chunks WhisperX transcribed (pauses inside a chunk count as speech).
    speech = sum(s["end"] - s["start"] for s in segments)
    metrics = {
        **asr_quality.measure(segments, duration, speech),
        "segments": len(segments),
        **guard.metrics,
        "words": sum(len(s["text"].split()) for s in segments),
        "language": language, "english_only_model": english_only, "language_check": language_check,
        **({"detected_language": detected[0], "language_probability": detected[1]} if detected else {}),
        "model_load_seconds": round(load_seconds, 3),
        "asr_seconds": round(asr_seconds, 3),
        "realtime_factor": round(duration / asr_seconds, 2) if asr_seconds else None,
        **align_metrics,
    }
    asr = {"video_id": video.id, "language": language, "model": settings.whisper_model,
           "language_check": {"method": language_check, "english_only_model": english_only,
                              "model": settings.language_id_model if english_only and identifier is not None else None,
                              "language": detected[0] if detected else None,
                              "probability": detected[1] if detected else None},
           "initial_prompt": prompt, "segments": segments, "metrics": without_timings(metrics)}
    # Written for rejected videos too: the transcript is the evidence for the rejection.
    key = store.put_json(artifact_key("transcribe", "asr", video.id), asr)
    reason = asr_quality.first_failure(metrics, gates(settings))
    if reason:
        return StageResult.rejected(reason, metrics, artifacts={"asr": key}, language=language)
    return StageResult.succeeded({"asr": key}, metrics, language=language)
