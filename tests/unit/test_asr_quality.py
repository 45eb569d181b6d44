"""The ASR quality gates on crafted transcripts."""

import pytest

from lectern.stages.transcribe.asr_quality import (
    Gates,
    filler_share,
    first_failure,
    max_chars_per_second,
    measure,
    repeated_ngram_ratio,
    words,
)

LECTURE = [
    {"start": 0.0, "end": 6.0, "text": "Photosynthesis is how plants turn light into chemical energy."},
    {"start": 6.5, "end": 12.0, "text": "It happens in the chloroplast, inside the thylakoid membranes."},
    {"start": 12.5, "end": 19.0, "text": "The Calvin cycle then fixes carbon dioxide into sugar."},
]


def test_a_real_lecture_passes():
    metrics = measure(LECTURE, 20.0, 17.0)
    assert metrics["repeated_ngram_ratio"] == 0.0 and metrics["filler_share"] == 0.0
    assert 5 < metrics["max_chars_per_second"] < 20
    assert first_failure(metrics, Gates()) is None


def test_a_loop_is_repetition():
    loop = [{"start": 0.0, "end": 20.0, "text": "and then the and then the " * 20}]
    assert repeated_ngram_ratio(words(loop[0]["text"])) > 0.9
    reason = first_failure(measure(loop, 30.0, 20.0), Gates())
    assert reason.startswith("repetition: repeated 3-grams 0.9") and reason.endswith("> 0.50")


def test_impossible_speaking_rate_is_hallucination():
    fast = [{"start": 0.0, "end": 2.0, "text": " ".join(f"word{i}" for i in range(30))}]
    assert max_chars_per_second(fast) == 85.0  # 170 characters in 2 s
    reason = first_failure(measure(fast, 30.0, 20.0), Gates())
    assert reason.startswith("hallucination: ") and reason.endswith("characters per second > 40")


def test_stock_phrases_are_hallucination():
    filler = [{"start": 0.0, "end": 3.0, "text": "Thank you for watching!"},
              {"start": 10.0, "end": 12.0, "text": "Please subscribe."},
              {"start": 20.0, "end": 26.0, "text": "Mitosis has four phases and ends in two cells."}]
    assert filler_share(filler) == pytest.approx(0.667, abs=0.001)
    assert first_failure(measure(filler, 30.0, 15.0), Gates()) == "hallucination: filler phrases in 67% of segments"
    # one closing "thank you" in a real lecture is fine
    assert filler_share(LECTURE + [{"start": 19.5, "end": 20.0, "text": "Thank you."}]) == 0.25


@pytest.mark.parametrize("duration,speech,reason", [
    (8.0, 7.0, "duration 8.0s < 10s"),
    (100.0, 4.0, "speech ratio 0.04 < 0.20"),
])
def test_length_and_speech_gates(duration, speech, reason):
    assert first_failure(measure(LECTURE, duration, speech), Gates()) == reason


def test_hallucination_checks_can_be_turned_off():
    loop = [{"start": 0.0, "end": 20.0, "text": "and then the " * 40}]
    assert first_failure(measure(loop, 30.0, 20.0), Gates(hallucination_checks=False)) is None


@pytest.mark.parametrize("detected,probability,allowed,reason", [
    ("de", 0.93, ("en",), "language de (p=0.93) not in en"),
    ("de", 0.30, ("en",), None),  # too unsure to reject
    ("en", 0.99, ("en",), None),
    ("de", 0.93, (), None),  # any language allowed
    ("fr", 0.80, ("en", "es"), "language fr (p=0.80) not in en,es"),
])
def test_language_gate(detected, probability, allowed, reason):
    metrics = {**measure(LECTURE, 20.0, 17.0), "detected_language": detected, "language_probability": probability}
    assert first_failure(metrics, Gates(allowed_languages=allowed)) == reason
