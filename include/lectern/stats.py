"""A release's statistics, recomputed from the state DB and the samples: the funnel per stage (in, out, rejected by
reason, failed by error class), a per-subject table like the paper's Table 7, per-video cost per stage, and plots.
"""

from __future__ import annotations

import html
import io
import re
from collections import Counter, defaultdict
from typing import Iterable, Sequence

from lectern.pipeline import GPU_STAGES
from lectern.recipes import STAGES
from lectern.state.models import FAILED, REJECTED, SUCCEEDED, VideoStage


def cell(text: object) -> str:
    """Untrusted text (a subject's name, a manifest's label, a reason) as one Markdown table cell: HTML escaped,
    pipes escaped, on one line."""
    return " ".join(html.escape(str(text)).replace("|", "\\|").split())


def reason_kind(reason: str) -> str:
    """A rejection reason without its measured values, so equal filters count together."""
    return re.sub(r"-?\d+(?:\.\d+)?", "N", reason.split(" (best point")[0]).strip()


def format_funnel(counts: dict[str, dict[str, int]]) -> str:
    """Videos per stage and status (lectern.state.reports.funnel), as the CLI and the demo print them."""
    statuses = ("pending", "running", "succeeded", "rejected", "failed")
    if any(stage_counts.get("forgotten") for stage_counts in counts.values()):
        statuses += ("forgotten",)  # only once something was taken down
    lines = [f"{'stage':<11}" + "".join(f"{s:>11}" for s in statuses)]
    for stage in STAGES:
        lines.append(f"{stage:<11}" + "".join(f"{counts.get(stage, {}).get(s, 0):>11}" for s in statuses))
    return "\n".join(lines)


def funnel_table(rows: Iterable[VideoStage], stages: Sequence[str] = STAGES) -> dict[str, dict]:
    """Per stage of `stages`: videos in and out, rejections by filter, failures by error class."""
    table: dict[str, dict] = {stage: {"in": 0, "out": 0, "rejected": Counter(), "failed": Counter(), "other": 0}
                              for stage in stages}
    for row in rows:
        entry = table.get(row.stage)
        if entry is None:
            continue
        entry["in"] += 1
        if row.status == SUCCEEDED:
            entry["out"] += 1
        elif row.status == REJECTED:
            entry["rejected"][reason_kind(row.reason or "rejected")] += 1
        elif row.status == FAILED:
            entry["failed"][row.error_class or "Error"] += 1
        else:
            entry["other"] += 1
    return {stage: {**e, "rejected": dict(e["rejected"]), "failed": dict(e["failed"])} for stage, e in table.items()}


def subject_table(video_subjects: dict[str, list[str]], assembled: dict[str, dict],
                  durations: dict[str, float | None], samples_per_video: dict[str, int]) -> dict[str, dict]:
    """Per subject, over the released videos: videos, hours, clips, keyframes, ASR and OCR tokens, samples
    (`assembled`: each video's assemble metrics)."""
    table: dict[str, dict] = defaultdict(lambda: {"videos": 0, "hours": 0.0, "clips": 0, "keyframes": 0,
                                                  "asr_tokens": 0, "ocr_tokens": 0, "samples": 0})
    for video_id, subjects in video_subjects.items():
        assemble = assembled.get(video_id) or {}
        for subject in subjects:
            entry = table[subject]
            entry["videos"] += 1
            entry["hours"] += (durations.get(video_id) or 0.0) / 3600
            entry["clips"] += assemble.get("clips", 0)
            entry["keyframes"] += assemble.get("images", 0)
            entry["asr_tokens"] += assemble.get("asr_tokens", 0)
            entry["ocr_tokens"] += assemble.get("ocr_tokens", 0)
            entry["samples"] += samples_per_video.get(video_id, 0)
    return {subject: {**e, "hours": round(e["hours"], 4)} for subject, e in sorted(table.items())}


def category_table(labels: dict[str, str | None], durations: dict[str, float | None],
                   sizes: dict[str, int | None]) -> dict[str, dict]:
    """Per category (a manifest's label), over the released videos: videos, hours and disk (their source files),
    most videos first, as the short-video dataset's own analysis tabulates its 31 categories."""
    table: dict[str, dict] = defaultdict(lambda: {"videos": 0, "hours": 0.0, "disk_gb": 0.0})
    for video_id, label in labels.items():
        entry = table[label or "unlabelled"]
        entry["videos"] += 1
        entry["hours"] += (durations.get(video_id) or 0.0) / 3600
        entry["disk_gb"] += (sizes.get(video_id) or 0) / 1e9
    ordered = sorted(table.items(), key=lambda item: (-item[1]["videos"], item[0]))
    return {label: {"videos": e["videos"], "hours": round(e["hours"], 4), "disk_gb": round(e["disk_gb"], 6)}
            for label, e in ordered}


def category_markdown(categories: dict[str, dict]) -> list[str]:
    lines = ["## Per category", "", "| category | videos | hours | disk (GB) |", "| --- | --- | --- | --- |"]
    lines += [f"| {cell(label)} | {e['videos']} | {e['hours']:.2f} | {e['disk_gb']:.3f} |"
              for label, e in categories.items()]
    total = {key: sum(e[key] for e in categories.values()) for key in ("videos", "hours", "disk_gb")}
    return lines + [f"| all | {total['videos']} | {total['hours']:.2f} | {total['disk_gb']:.3f} |", ""]


def pairs_markdown(stats: dict) -> str:
    """A pairs release's stats.md: its counts, then the per-category table."""
    counts = stats["pairs"]
    lines = [f"# Release {cell(stats['release'])} (video-text pairs)", "",
             f"{counts['videos']} videos, {counts['clips']} clips, {counts['pairs']} pairs kept "
             f"({counts['filtered_clips']} filtered; mean clip similarity {counts['mean_clip_similarity']})", ""]
    return "\n".join(lines + category_markdown(stats["categories"]))


def cost_table(seconds_by_video: dict[str, dict[str, float | None]], durations: dict[str, float | None],
               stages: Sequence[str] = STAGES, spent_seconds: dict[str, float] | None = None,
               gpu_hour_price: float = 0.0, cpu_hour_price: float = 0.0) -> dict:
    """Seconds per stage of `stages` (GPU stages apart) over the released videos (video -> stage -> seconds): in
    all, per video-hour and per video. And what the release cost: the seconds spent on every video the stages ran
    on, kept or not (`spent_seconds`, stage -> seconds), at the GPU-phase and CPU-phase pods' hourly prices, in all
    and per kept video-hour."""
    hours = sum((durations.get(v) or 0.0) for v in seconds_by_video) / 3600
    per_stage = {stage: round(sum(seconds.get(stage) or 0.0 for seconds in seconds_by_video.values()), 3)
                 for stage in stages}
    spent = {stage: round((spent_seconds or {}).get(stage, 0.0), 3) for stage in stages}
    price = {stage: gpu_hour_price if stage in GPU_STAGES else cpu_hour_price for stage in stages}
    cost = sum(spent[stage] / 3600 * price[stage] for stage in stages)
    return {
        "spent_seconds": spent,
        "hour_prices": {"gpu": gpu_hour_price, "cpu": cpu_hour_price},
        "cost": round(cost, 4),
        "cost_per_kept_video_hour": round(cost / hours, 4) if hours else None,
        "video_hours": round(hours, 4),
        "seconds": per_stage,
        "gpu_seconds": round(sum(per_stage[s] for s in stages if s in GPU_STAGES), 3),
        "cpu_seconds": round(sum(per_stage[s] for s in stages if s not in GPU_STAGES), 3),
        "seconds_per_video_hour": {s: round(v / hours, 1) if hours else None for s, v in per_stage.items()},
        "per_video": dict(sorted(seconds_by_video.items())),
    }


def histogram_png(values: list[float], title: str, xlabel: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(5, 3.2), dpi=100)
    axes.hist(values or [0], bins=min(30, max(5, len(set(values)))), color="#4a6fa5")
    axes.set_title(title)
    axes.set_xlabel(xlabel)
    axes.set_ylabel("samples")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def markdown(stats: dict) -> str:
    lines = [f"# Release {cell(stats['release'])}", "", "## Funnel", "",
             "| stage | in | out | rejected | failed |", "| --- | --- | --- | --- | --- |"]
    for stage, e in stats["funnel"].items():
        rejected = "; ".join(f"{n} {cell(r)}" for r, n in e["rejected"].items()) or "0"
        failed = "; ".join(f"{n} {cell(c)}" for c, n in e["failed"].items()) or "0"
        lines.append(f"| {stage} | {e['in']} | {e['out']} | {rejected} | {failed} |")
    lines += ["", "## Per subject", "",
              "| subject | videos | hours | clips | keyframes | ASR tokens | OCR tokens | samples |",
              "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for subject, e in stats["subjects"].items():
        lines.append(f"| {cell(subject)} | {e['videos']} | {e['hours']:.2f} | {e['clips']} | {e['keyframes']} | "
                     f"{e['asr_tokens']} | {e['ocr_tokens']} | {e['samples']} |")
    cost = stats["cost"]
    lines += ["", f"## Cost ({cost['video_hours']:.3f} video-hours; CPU {cost['cpu_seconds']:.0f} s, "
              f"GPU-phase {cost['gpu_seconds']:.0f} s)", "", "| stage | seconds | seconds per video-hour |",
              "| --- | --- | --- |"]
    for stage, seconds in cost["seconds"].items():
        lines.append(f"| {stage} | {seconds} | {cost['seconds_per_video_hour'][stage]} |")
    if "cost" in cost:
        per_hour = cost["cost_per_kept_video_hour"]
        kept = "no kept video-hours" if per_hour is None else f"{per_hour:.2f} per kept video-hour"
        spent, prices = sum(cost["spent_seconds"].values()), cost["hour_prices"]
        lines += ["", f"Cost {cost['cost']:.2f} ({kept}): the seconds spent on every video the stages ran on, kept "
                  f"or not ({spent:.0f} s), at {prices['gpu']:g} an hour of a GPU-phase pod and {prices['cpu']:g} of "
                  "a CPU-phase one."]
    asr = stats.get("asr") or {}
    if asr:
        lines += ["", f"ASR: {asr.get('segments_decoded', 0)} segments decoded; "
                  f"{asr.get('segments_redone_looping', 0)} looped and were decoded again, "
                  f"{asr.get('segments_dropped_looping', 0)} still looped and were dropped."]
    lines += ["", "![images per sample](images_per_sample.png) ![tokens per sample](tokens_per_sample.png)", ""]
    return "\n".join(lines)
