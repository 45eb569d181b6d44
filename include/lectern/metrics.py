"""Lectern's metrics for Prometheus, read from the state DB when scraped: the DB already holds every video's state
per stage, so the figures are the same whichever pod or worker did the work, and no short-lived stage process has
to push anything. `lectern metrics --port 9464` serves them (an exporter beside Airflow; compose runs one).

    lectern_videos{stage, status}               videos per stage and state (pending: the queue)
    lectern_videos_rejected{stage, reason}      rejections by filter (the reason without its measured values)
    lectern_videos_failed{stage, error_class}   failures by error class
    lectern_stage_seconds{stage}                seconds the stage spent, over every video it ran on
    lectern_gpu_seconds                         the same over the GPU stages
    lectern_video_hours{stage}                  hours of video the stage finished
"""

from __future__ import annotations

from collections import Counter

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry
from sqlalchemy import func, select

from lectern.config import Settings
from lectern.pipeline import GPU_STAGES
from lectern.state.db import session_scope
from lectern.state.models import FAILED, REJECTED, SUCCEEDED, Video, VideoStage
from lectern.stats import reason_kind


class StateCollector(Collector):
    """Four grouped queries over the state DB a scrape."""

    def __init__(self, settings: Settings):
        self.settings = settings

    def collect(self):
        videos = GaugeMetricFamily("lectern_videos", "Videos per stage and state (pending: the queue)",
                                   labels=["stage", "status"])
        rejected = GaugeMetricFamily("lectern_videos_rejected", "Rejected videos per stage and filter",
                                     labels=["stage", "reason"])
        failed = GaugeMetricFamily("lectern_videos_failed", "Failed videos per stage and error class",
                                   labels=["stage", "error_class"])
        seconds = GaugeMetricFamily("lectern_stage_seconds", "Seconds each stage spent, over every video it ran on",
                                    labels=["stage"])
        gpu = GaugeMetricFamily("lectern_gpu_seconds", "Seconds the GPU stages spent")
        hours = GaugeMetricFamily("lectern_video_hours", "Hours of video each stage finished", labels=["stage"])
        spent: Counter = Counter()
        reasons: Counter = Counter()
        with session_scope(self.settings.db_url) as session:
            for stage, status, count, total in session.execute(
                    select(VideoStage.stage, VideoStage.status, func.count(), func.sum(VideoStage.seconds))
                    .group_by(VideoStage.stage, VideoStage.status)):
                videos.add_metric([stage, status], count)
                spent[stage] += total or 0.0
            for stage, reason, count in session.execute(
                    select(VideoStage.stage, VideoStage.reason, func.count()).where(VideoStage.status == REJECTED)
                    .group_by(VideoStage.stage, VideoStage.reason)):
                reasons[stage, reason_kind(reason or "rejected")] += count
            for stage, error_class, count in session.execute(
                    select(VideoStage.stage, VideoStage.error_class, func.count()).where(VideoStage.status == FAILED)
                    .group_by(VideoStage.stage, VideoStage.error_class)):
                failed.add_metric([stage, error_class or "unknown"], count)
            for stage, duration in session.execute(
                    select(VideoStage.stage, func.sum(Video.duration_s)).join(Video, Video.id == VideoStage.video_id)
                    .where(VideoStage.status == SUCCEEDED).group_by(VideoStage.stage)):
                hours.add_metric([stage], (duration or 0.0) / 3600)
        for (stage, reason), count in sorted(reasons.items()):
            rejected.add_metric([stage, reason], count)
        for stage, total in sorted(spent.items()):
            seconds.add_metric([stage], total)
        gpu.add_metric([], sum(total for stage, total in spent.items() if stage in GPU_STAGES))
        yield from (videos, rejected, failed, seconds, gpu, hours)


def registry(settings: Settings) -> CollectorRegistry:
    """A registry holding only Lectern's collector (not this process's own Python metrics)."""
    collecting = CollectorRegistry(auto_describe=False)
    collecting.register(StateCollector(settings))
    return collecting


def serve(settings: Settings, port: int, address: str = "0.0.0.0") -> None:
    """The exporter: GET /metrics on `port`, until stopped."""
    import threading

    from prometheus_client import start_http_server

    server, thread = start_http_server(port, address, registry=registry(settings))
    print(f"Lectern's metrics on http://{address}:{port}/metrics (from {settings.db_url.split('@')[-1]})",
          flush=True)
    try:
        threading.Event().wait()
    finally:
        server.shutdown()
