"""LLM judges of a transcript, as in the paper: three criteria, a score of 0-10 each, two judges, a policy.

Each judge answers one prompt per criterion and ends its answer with ``###Score: N###``. A judge rejects the
video when a criterion it scored is below the minimum; it abstains when none of its answers could be parsed
(an unparseable answer is recorded, never fatal). The policy combines the judges: ``all`` drops a video only if
every judge rejects it (the paper's rule), ``any`` drops it if one does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from lectern.stages.judge import llm

ACCEPT, REJECT, ABSTAIN = "accept", "reject", "abstain"

SYSTEM = "You are a careful reviewer of educational video transcripts for a textbook corpus."
ANSWER_FORMAT = ("Explain your judgement in one or two sentences, then give a score from 0 to 10 on the last line "
                 "in exactly this format: ###Score: N###")
CRITERIA: dict[str, str] = {
    "relevance": (
        "Knowledge point: {point}\nVideo title: {title}\n\nTranscript:\n{transcript}\n\n"
        "How relevant is this video to teaching the knowledge point? 10: it teaches exactly this point; "
        "5: it touches on it; 0: it is about something else (advertising, entertainment, another subject)."
    ),
    "knowledge_density": (
        "Video title: {title}\n\nTranscript:\n{transcript}\n\n"
        "How much real knowledge does this transcript teach per minute? 10: dense explanations, definitions, "
        "worked examples; 5: some teaching mixed with chatter; 0: no teaching (greetings, promotion, small talk)."
    ),
    "transcription_quality": (
        "Transcript:\n{transcript}\n\n"
        "How good is this automatic transcription as text? 10: fluent, coherent sentences; 5: understandable with "
        "errors; 0: garbled, repetitive or meaningless text."
    ),
}


METADATA_PROMPT = (
    "Knowledge point: {point}\nVideo title: {title}\nVideo description: {description}\n\n"
    "Judging only from the title and description, is this video a lecture or tutorial that teaches the knowledge "
    "point? 10: certainly; 5: possibly; 0: certainly not (another topic, a trailer, a reaction video, a song)."
)


def metadata_prompt(point: str, title: str, description: str) -> str:
    return f"{METADATA_PROMPT.format(point=point, title=title, description=description[:1000])}\n\n{ANSWER_FORMAT}"


def prompts(point: str, title: str, transcript: str) -> dict[str, str]:
    """criterion -> the prompt a judge answers."""
    return {name: f"{template.format(point=point, title=title, transcript=transcript)}\n\n{ANSWER_FORMAT}"
            for name, template in CRITERIA.items()}


@dataclass
class Verdict:
    """One judge's answers, scores and decision on one video."""

    model: str
    field: str  # metadata field prefix, e.g. qwen2_5_7b_instruct
    responses: dict[str, str]
    scores: dict[str, float | None]
    decision: str = ABSTAIN
    failed: list[str] = field(default_factory=list)  # criteria scored below the minimum

    def describe(self) -> str:
        if self.decision == ABSTAIN:
            return f"{self.field} abstained (no parseable score)"
        if self.decision == ACCEPT:
            return f"{self.field} accepted"
        return f"{self.field} rejected ({', '.join(f'{c} {self.scores[c]:g}' for c in self.failed)})"


def decide(model: str, field_name: str, responses: dict[str, str], min_score: float) -> Verdict:
    scores = {criterion: llm.parse_score(answer) for criterion, answer in responses.items()}
    verdict = Verdict(model, field_name, dict(responses), scores)
    scored = {c: s for c, s in scores.items() if s is not None}
    verdict.failed = [c for c, s in scored.items() if s < min_score]
    verdict.decision = ABSTAIN if not scored else REJECT if verdict.failed else ACCEPT
    return verdict


def combine(verdicts: Sequence[Verdict], policy: str) -> str | None:
    """The reason to drop the video under `policy`, or None to keep it. No judge, or only abstaining judges,
    keep it: the embedding relevance gate has already passed."""
    rejecting = [v for v in verdicts if v.decision == REJECT]
    if not rejecting:
        return None
    if policy == "any" or len(rejecting) == len(verdicts):
        return f"LLM judges ({policy} must reject): " + "; ".join(v.describe() for v in verdicts)
    return None


def judge_transcript(models_: Sequence[str], point: str, title: str, transcript: str, *, min_score: float,
                     serving: llm.Serving, max_new_tokens: int, usage: llm.Usage | None = None) -> list[Verdict]:
    """Every judge's verdict; the criteria of one judge go through generate() as one batch."""
    asked = prompts(point, title, transcript)
    names = llm.field_names(models_)
    verdicts = []
    for model in models_:
        answers = llm.generate(model, list(asked.values()), serving, max_new_tokens=max_new_tokens, system=SYSTEM,
                               usage=usage)
        verdicts.append(decide(model, names[model], dict(zip(asked, answers)), min_score))
    return verdicts


def metadata_fields(verdicts: Sequence[Verdict], policy: str) -> dict:
    """The judges as fields of the published ``video_meta_data``: ``llm_response`` per model, and a
    ``<model>_score`` per judge (the published corpus had ``deepseek_score``)."""
    fields: dict = {"llm_response": {v.field: v.responses for v in verdicts}, "judge_policy": policy}
    for v in verdicts:
        fields[f"{v.field}_score"] = v.scores
        fields[f"{v.field}_decision"] = v.decision
    return fields
