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
