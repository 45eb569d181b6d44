"""The pre-download filter: decisions on search metadata alone, before a byte of video is fetched.

Each check returns the reason for a rejection (naming the filter and the value) or None. The relevance of
title + description to the knowledge points (and the optional LLM metadata score) are computed once per search
at discovery (lectern.discovery.score_metadata), so no model is loaded here. Unknown metadata never rejects: the
later stages measure the real thing (ffprobe duration, detected spoken language, the judge's transcript relevance).
A title that is only the file name (what yt-dlp's generic extractor gives a plain video file) or the video id is
unknown. The scores reject only search results: a video the user listed by hand (a point's URLs, a manifest row)
is their choice, unless the subject says `prefilter: true`.
"""

from __future__ import annotations

import posixpath
import unicodedata
from urllib.parse import unquote, urlsplit

from lectern.config import Settings
from lectern.stage_types import VideoRecord

LIVE_STATUSES = ("is_live", "is_upcoming", "post_live")  # still streaming, not yet aired, or not yet processed
# Languages written in the Latin alphabet: a title mostly in another script is not in one of them.
LATIN_SCRIPT_LANGUAGES = frozenset(
    "af ca cs cy da de en es et eu fi fr ga gl hr hu id is it lt lv ms mt nl no pl pt ro sk sl sq sv sw tl tr "
    "vi".split()
)
MIN_TITLE_LETTERS = 8


def duration_reason(duration: float | None, settings: Settings) -> str | None:
    if duration is None:
        return None
    if duration < settings.min_duration_s:
        return f"duration {duration:.1f}s < {settings.min_duration_s:.0f}s"
    if duration > settings.max_duration_s:
        return f"duration {duration:.1f}s > {settings.max_duration_s:.0f}s"
    return None


def height_reason(height: int | None, settings: Settings) -> str | None:
    """The resolution filter (LECTERN_MIN_HEIGHT / LECTERN_MAX_HEIGHT); an unknown height never rejects."""
    if height is None:
        return None
    if settings.min_height and height < settings.min_height:
        return f"height {height}p < {settings.min_height}p"
    if settings.max_height and height > settings.max_height:
        return f"height {height}p > {settings.max_height}p"
    return None


def non_latin_share(text: str) -> float:
    letters = [c for c in text if c.isalpha()]
    if len(letters) < MIN_TITLE_LETTERS:
        return 0.0
    return sum(1 for c in letters if not unicodedata.name(c, "").startswith("LATIN")) / len(letters)


def known_title(video: VideoRecord) -> bool:
    """Whether the title says something: not missing, not the video id, not the URL's file name."""
    title = video.title.strip().casefold()
    file_name = posixpath.basename(unquote(urlsplit(video.url).path)).casefold()
    return bool(title) and title not in {video.id.casefold(), file_name, posixpath.splitext(file_name)[0]}


def awaited_scores(settings: Settings) -> tuple[bool, bool]:
    """The metadata scores (relevance, LLM) this filter uses: a download waits for discovery to compute them."""
    return settings.metadata_min_relevance > 0, bool(settings.metadata_judge_model)


def metadata_rejection(video: VideoRecord, settings: Settings) -> str | None:
    """The first pre-download filter the video fails, or None."""
    reason = duration_reason(video.duration_s, settings) or height_reason(video.height, settings)
    if reason:
        return reason
    if video.live_status in LIVE_STATUSES:
        return f"live stream ({video.live_status})"
    allowed = settings.allowed_languages
    if allowed and video.language and video.language.split("-")[0].lower() not in allowed:
        return f"metadata language {video.language} not in {','.join(allowed)}"
    if allowed and set(allowed) <= LATIN_SCRIPT_LANGUAGES:
        share = non_latin_share(video.title)
        if share > 0.5:
            return f"title language: {share:.0%} of its letters are not Latin ({','.join(allowed)} expected)"
    required = settings.required_license
    if required and required.lower() not in (video.license or "").lower():
        return f"license {video.license or 'unknown'!r} does not match {required!r}"
    if not video.metadata_judged or not (known_title(video) or video.description.strip()):
        return None
    relevance, minimum = video.metadata_relevance, settings.metadata_min_relevance
    if minimum > 0 and relevance is not None and relevance < minimum:
        return f"title/description relevance {relevance:.2f} < {minimum:.2f}"
    score = video.metadata_llm_score
    if settings.metadata_judge_model and score is not None and score < settings.judge_min_score:
        return f"LLM metadata score {score:g} < {settings.judge_min_score:g}"
    return None
