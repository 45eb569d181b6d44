"""ASR quality gates: measurements of a transcript, and the first gate it fails (a named reason with its value).

Whisper hallucinates in known ways: it loops (the same n-grams over and over), it emits more text than anyone can
speak (characters per second far above ~20; 40 is a generous bound), and over silence or music it produces stock
phrases from its training subtitles ("thank you for watching"). Videos with too little speech teach nothing, and
speech in a language outside the allowed set is not wanted.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from functools import lru_cache

FILLER_PHRASES = (
    "thank you for watching", "thanks for watching", "please subscribe", "subscribe to my channel",
    "like and subscribe", "see you in the next video", "subtitles by", "transcribed by", "amara org",
    "thank you", "thanks",
)
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?", re.UNICODE)
# A unit of one to eight characters six times or more in a row ("F.F.F.F.F.F.", "VVVVVV", "it's it's ..."): a
# loop inside one "word" or a few, which the word n-gram share of a whole transcript does not see.
_CHARACTER_LOOP = re.compile(r"(\S.{0,7}?)\1{5,}")


def compression_ratio(text: str) -> float:
    """Whisper's own loop measure: the text's bytes over their zlib-compressed bytes (above 2.4, Whisper decodes
    the window again)."""
    data = text.encode()
    return round(len(data) / len(zlib.compress(data)), 3) if data else 0.0


def character_loop(text: str) -> str | None:
    """The first run of a unit repeated six times or more that holds a letter or digit, or None."""
    for match in _CHARACTER_LOOP.finditer(text):
        if any(c.isalnum() for c in match.group(1)):
            return match.group(0)
    return None


def loops(text: str, max_compression_ratio: float) -> bool:
    """A segment Whisper looped on: compressible past the limit, or a character-level loop."""
    return compression_ratio(text) > max_compression_ratio or character_loop(text) is not None


@dataclass(frozen=True)
class Gates:
    min_duration_s: float = 10.0
    min_speech_ratio: float = 0.2
    max_repeated_ngrams: float = 0.5
    ngram: int = 3
    max_chars_per_second: float = 40.0
    max_filler_share: float = 0.5
    max_dropped_loops: float = 0.2  # largest share of segments dropped as loops (transcribe.run.LoopGuard)
    hallucination_checks: bool = True
    allowed_languages: tuple[str, ...] = ()  # empty: any language
    min_language_probability: float = 0.5  # an uncertain guess rejects nothing


def words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def repeated_ngram_ratio(tokens: list[str], n: int = 3) -> float:
    """Share of a transcript's n-grams that repeat an earlier one: 0 for varied speech, near 1 for a loop."""
    grams = [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]
    if len(grams) < 2:
        return 0.0
    return round(1 - len(set(grams)) / len(grams), 3)


def max_chars_per_second(segments: list[dict]) -> float:
    """The fastest segment's speaking rate (non-space characters per second)."""
    rates = [len(re.sub(r"\s", "", s["text"])) / (s["end"] - s["start"]) for s in segments if s["end"] > s["start"]]
    return round(max(rates, default=0.0), 1)


def filler_share(segments: list[dict]) -> float:
    """Share of segments that are nothing but stock phrases ("thank you for watching")."""
    if not segments:
        return 0.0
    fillers = sum(1 for s in segments if _only_filler(s["text"]))
    return round(fillers / len(segments), 3)


def _only_filler(text: str) -> bool:
    rest = " ".join(words(text))
    for phrase in sorted(FILLER_PHRASES, key=len, reverse=True):
        rest = rest.replace(phrase, " ")
    return bool(words(text)) and not rest.strip()


@lru_cache(maxsize=1)
def _language_identifier():
    from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_modelpath(MODEL_DIR / MODEL_FILE, norm_probs=True)


def text_language(text: str) -> tuple[str, float] | None:
    """The language a transcript's text is written in, with its probability (py3langid), or None for no text.
    English-only Whisper models write English whatever is spoken: garbled English for other speech reads as an
    uncertain guess, and a translation reads as English, which this check cannot catch."""
    if not words(text):
        return None
    language, probability = _language_identifier().classify(text)
    return language, round(float(probability), 3)


def measure(segments: list[dict], duration_s: float, speech_s: float, ngram: int = 3) -> dict:
    tokens = [w for s in segments for w in words(s["text"])]
    return {
        "duration_s": round(duration_s, 3),
        "speech_ratio": round(speech_s / duration_s, 3) if duration_s else 0.0,
        "repeated_ngram_ratio": repeated_ngram_ratio(tokens, ngram),
        "max_chars_per_second": max_chars_per_second(segments),
        "filler_share": filler_share(segments),
    }


def first_failure(metrics: dict, gates: Gates) -> str | None:
    """The reason a transcript is rejected, naming the gate and the measured value; None when it passes."""
    if metrics["duration_s"] < gates.min_duration_s:
        return f"duration {metrics['duration_s']:.1f}s < {gates.min_duration_s:.0f}s"
    if metrics["speech_ratio"] < gates.min_speech_ratio:
        return f"speech ratio {metrics['speech_ratio']:.2f} < {gates.min_speech_ratio:.2f}"
    detected, probability = metrics.get("detected_language"), metrics.get("language_probability", 0.0)
    if (gates.allowed_languages and detected and detected not in gates.allowed_languages
            and probability >= gates.min_language_probability):
        return f"language {detected} (p={probability:.2f}) not in {','.join(gates.allowed_languages)}"
    if not gates.hallucination_checks:
        return None
    if metrics["repeated_ngram_ratio"] > gates.max_repeated_ngrams:
        return (f"repetition: repeated {gates.ngram}-grams {metrics['repeated_ngram_ratio']:.2f} "
                f"> {gates.max_repeated_ngrams:.2f}")
    if metrics["max_chars_per_second"] > gates.max_chars_per_second:
        return (f"hallucination: {metrics['max_chars_per_second']:.1f} characters per second "
                f"> {gates.max_chars_per_second:.0f}")
    if metrics["filler_share"] > gates.max_filler_share:
        return f"hallucination: filler phrases in {metrics['filler_share']:.0%} of segments"
    looped, decoded = metrics.get("segments_dropped_looping", 0), metrics.get("segments_decoded", 0)
    if decoded and looped / decoded > gates.max_dropped_loops:
        return (f"repetition: {looped} of {decoded} segments still looped when decoded again "
                f"({looped / decoded:.0%} > {gates.max_dropped_loops:.0%})")
    return None
