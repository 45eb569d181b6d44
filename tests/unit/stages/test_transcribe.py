"""The real WhisperX code path (VAD, batched faster-whisper, wav2vec2 alignment) with tiny local models."""

import pytest

from lectern.stages import transcribe
from lectern.store import Keys
from tests.unit.stages.conftest import record


def test_transcribe_produces_timed_segments(downloaded, store, settings):
    video = downloaded("photosynthesis")
    result = transcribe.run(video, store, settings)
    assert result.status == "succeeded"
    asr = store.get_json(Keys.asr("photosynthesis"))
    assert asr["language"] == "en" and asr["model"] == settings.whisper_model
    assert asr["segments"]
    previous_end = 0.0
    for segment in asr["segments"]:
        assert previous_end <= segment["start"] < segment["end"] <= 24.5
        assert segment["text"]
        for word in segment["words"]:
            assert segment["start"] - 0.5 <= word["start"] <= word["end"] <= segment["end"] + 0.5
        previous_end = segment["end"]
    # VAD finds the three narrated slides (speech starts 0.5 s into each 8 s slide)
    assert len(asr["segments"]) == 3
    assert 0.3 < result.metrics["speech_ratio"] < 1.0
    assert 0.0 <= result.metrics["alignment_failure_rate"] <= 1.0


def test_no_audio_stream_is_rejected(store, settings):
    store.put_bytes(Keys.source("silent"), b"x")
    store.put_json(Keys.probe("silent"), {"has_audio": False, "duration_s": 30})
    result = transcribe.run(record("silent", artifacts={"download": {"source": Keys.source("silent")}}), store, settings)
    assert result.status == "rejected" and result.reason == "no audio stream"


def test_pure_noise_is_rejected_for_too_little_speech(synthetic_video, store, settings):
    result = transcribe.run(synthetic_video("noise", 15, "noise"), store, settings)
    assert result.status == "rejected"
    assert result.reason == "speech ratio 0.00 < 0.20"
    assert result.metrics["segments"] == 0
    assert store.exists(result.artifacts["asr"])  # the evidence is kept


def test_too_short_is_rejected(synthetic_video, store, settings):
    result = transcribe.run(synthetic_video("short", 6, "speech"), store, settings)
    assert result.status == "rejected" and result.reason == "duration 6.0s < 10s"


def test_video_without_audio_is_rejected(synthetic_video, store, settings):
    result = transcribe.run(synthetic_video("mute", 12, "none"), store, settings)
    assert result.status == "rejected" and result.reason == "no audio stream"


def test_the_random_models_loops_fail_the_repetition_gate(downloaded, store, settings):
    """With the hallucination checks on (production default), the tiny random Whisper's babble is caught."""
    import dataclasses

    strict = dataclasses.replace(settings, asr_hallucination_checks=True)
    result = transcribe.run(downloaded("photosynthesis"), store, strict)
    assert result.status == "rejected"
    assert result.reason.startswith(("repetition: repeated 3-grams", "hallucination: "))


def test_alignment_falls_back_to_segment_times(settings):
    """No alignment model for the language: every segment keeps its own times, and the failure is recorded."""
    import dataclasses

    import numpy as np

    segments = [{"start": 0.5, "end": 4.0, "text": "Mitosis has 4 phases."}, {"start": 5.0, "end": 9.0, "text": "42"}]
    no_model = dataclasses.replace(settings, align_model=None)
    aligned, error = transcribe.align_segments(segments, np.zeros(16000 * 10, dtype=np.float32), "xx", no_model)
    assert [(s["start"], s["end"], s["text"], s["words"]) for s in aligned] == [
        (0.5, 4.0, "Mitosis has 4 phases.", []), (5.0, 9.0, "42", [])]
    assert error.startswith("ValueError")


def test_aligned_words_stay_inside_their_segment(settings):
    import numpy as np

    audio = np.random.default_rng(0).normal(0, 0.1, 16000 * 10).astype(np.float32)
    segments = [{"start": 1.0, "end": 4.0, "text": "cells divide"}]
    aligned, error = transcribe.align_segments(segments, audio, "en", settings)
    assert error is None and len(aligned) == 1
    for word in aligned[0]["words"]:
        assert 1.0 <= word["start"] <= word["end"] <= 4.0 + 1e-3 and word["word"] in ("cells", "divide")


def test_spoken_language_is_detected_and_gated(downloaded, store, settings):
    """The real detection path: the language guess and its probability are recorded, and a language outside the
    allowed set is rejected by name (the tiny model's guess is arbitrary, so nothing is allowed but 'zz')."""
    import dataclasses

    from faster_whisper.tokenizer import _LANGUAGE_CODES

    video = downloaded("photosynthesis")
    gated = dataclasses.replace(settings, allowed_languages=("zz",), asr_min_language_probability=0.0)
    result = transcribe.run(video, store, gated)
    detected, probability = result.metrics["detected_language"], result.metrics["language_probability"]
    assert detected in _LANGUAGE_CODES and 0.0 < probability <= 1.0
    assert result.status == "rejected" and result.reason == f"language {detected} (p={probability:.2f}) not in zz"
    assert result.metrics["language"] == "en"  # transcribed in the configured language all the same


def test_windows_meet_at_speech_boundaries(downloaded, store, settings):
    """Decoding 7 s at a time (cutting through the narration) gives the same segments as one window."""
    import dataclasses

    video = downloaded("photosynthesis")
    whole = transcribe.run(video, store, settings)
    whole_segments = store.get_json(Keys.asr(video.id))["segments"]
    windowed = transcribe.run(video, store, dataclasses.replace(settings, asr_window_s=7.0))
    windowed_segments = store.get_json(Keys.asr(video.id))["segments"]
    assert whole.status == windowed.status == "succeeded"
    assert len(windowed_segments) == len(whole_segments) == 3
    for a, b in zip(whole_segments, windowed_segments):
        assert abs(a["start"] - b["start"]) < 0.3 and abs(a["end"] - b["end"]) < 0.3
    assert windowed.metrics["duration_s"] == pytest.approx(whole.metrics["duration_s"], abs=0.05)


def test_window_decoding_is_streamed(demo_corpus):
    """Every window but the last has exactly the window's length; together they are the whole audio."""
    import numpy as np
    import whisperx

    path = demo_corpus[0] / "cell_division.mp4"
    windows = list(transcribe.audio_windows(path, 5.0))
    assert [last for _, last in windows] == [False] * (len(windows) - 1) + [True]
    assert all(len(w) == 5 * 16000 for w, _ in windows[:-1])
    whole = whisperx.load_audio(str(path))  # WhisperX's own all-at-once decoding
    assert np.allclose(np.concatenate([w for w, _ in windows]), whole, atol=1e-4)
