"""The download stage's facts: what the rest of Lectern knows about it (lectern.pipeline reads them)."""

from lectern.stage_types import StageSpec

SPEC = StageSpec(
    name="download",
    version="3",  # 2: the size cap, and no audio stream rejects; 3: the cover image and the resolution filter
    settings=("min_duration_s", "max_duration_s", "min_height", "max_height", "download_format", "allowed_languages",
              "required_license", "metadata_min_relevance", "metadata_judge_model", "judge_min_score",
              "max_download_mb", "max_cover_mb"),
    produces={"source": "source.mp4", "probe": "probe.json", "cover": "cover.{extension}"},
    retries=4,
    pool="lectern_download",
    timeout_s=1800,
)
