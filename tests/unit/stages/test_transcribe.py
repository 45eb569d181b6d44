"""The real WhisperX code path (VAD, batched faster-whisper, wav2vec2 alignment) with tiny local models."""

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
