"""SQLAlchemy 2.0 models of Lectern's state. The schema itself is created by Alembic migrations only."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from lectern.safe_text import db_safe, printable

PENDING, RUNNING, SUCCEEDED, REJECTED, FAILED = "pending", "running", "succeeded", "rejected", "failed"
FORGOTTEN = "forgotten"  # taken down: artifacts removed, never claimed again
STATUSES = (PENDING, RUNNING, SUCCEEDED, REJECTED, FAILED, FORGOTTEN)
TERMINAL = (SUCCEEDED, REJECTED, FAILED, FORGOTTEN)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


# Every text that reaches the DB passes one of these: a NUL character (a manifest's title, a server's message)
# would fail the whole statement on Postgres, and a message shown to people loses its terminal escapes.
class SafeString(TypeDecorator):
    impl, cache_ok = String, True

    def process_bind_param(self, value, dialect):
        return db_safe(value)


class SafeText(SafeString):
    impl, cache_ok = Text, True


class Message(SafeText):
    """Text people read in `lectern status`, logs and pages (a reason, an error message, a title)."""

    cache_ok = True

    def process_bind_param(self, value, dialect):
        return db_safe(printable(value)) if isinstance(value, str) else value


class SafeJSON(TypeDecorator):
    impl, cache_ok = JSON, True

    def process_bind_param(self, value, dialect):
        return db_safe(value)


class Base(DeclarativeBase):
    pass


class Subject(Base):
    __tablename__ = "subjects"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(SafeString(200), unique=True)
    recipe: Mapped[str] = mapped_column(SafeString(32), default="textbook", server_default="textbook")
    # The YAML's `prefilter`: does the metadata relevance filter judge the videos it lists by hand (URLs, a
    # manifest, a folder)? None: the default, only search results are judged.
    prefilter: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    points: Mapped[list["KnowledgePoint"]] = relationship(back_populates="subject")


class KnowledgePoint(Base):
    __tablename__ = "knowledge_points"
    __table_args__ = (UniqueConstraint("subject_id", "path", name="uq_point_subject_path"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject_id: Mapped[int] = mapped_column(ForeignKey("subjects.id", ondelete="CASCADE"), index=True)
    # course / sub-course / point, joined with " / ": unique within a subject.
    path: Mapped[str] = mapped_column(SafeString(1000))
    name: Mapped[str] = mapped_column(SafeString(500))
    query: Mapped[str] = mapped_column(SafeText)
    urls: Mapped[list[str]] = mapped_column(SafeJSON, default=list)
    vocabulary: Mapped[list[str] | None] = mapped_column(SafeJSON, nullable=True)  # its words, for Whisper's prompt
    # A local folder (or glob) its videos are read from: a `videos_dir` point, or a manifest with local rows.
    videos_dir: Mapped[str | None] = mapped_column(SafeText, nullable=True)
    searched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    search_metrics: Mapped[dict[str, Any]] = mapped_column(SafeJSON, default=dict)
    subject: Mapped[Subject] = relationship(back_populates="points")


class Video(Base):
    __tablename__ = "videos"
    id: Mapped[str] = mapped_column(SafeString(64), primary_key=True)
    url: Mapped[str] = mapped_column(SafeText)
    title: Mapped[str] = mapped_column(Message, default="")
    description: Mapped[str] = mapped_column(Message, default="")
    duration_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    height: Mapped[int | None] = mapped_column(Integer, nullable=True)  # pixels, as its metadata gives it
    language: Mapped[str | None] = mapped_column(SafeString(16), nullable=True)
    extractor: Mapped[str | None] = mapped_column(SafeString(64), nullable=True)
    live_status: Mapped[str | None] = mapped_column(SafeString(32), nullable=True)  # yt-dlp: is_live, was_live, ...
    license: Mapped[str | None] = mapped_column(SafeText, nullable=True)
    cover_url: Mapped[str | None] = mapped_column(SafeText, nullable=True)  # a manifest row's cover image
    discovered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    forgotten_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)  # takedown
    forgotten_reason: Mapped[str | None] = mapped_column(Message, nullable=True)
    sources: Mapped[list["VideoSource"]] = relationship(back_populates="video")


class VideoSource(Base):
    """Which knowledge point's search found a video, at which rank. A video found by several points has several rows."""

    __tablename__ = "video_sources"
    video_id: Mapped[str] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"), primary_key=True)
    # indexed on its own too: a subject's videos are found from its points
    point_id: Mapped[int] = mapped_column(ForeignKey("knowledge_points.id", ondelete="CASCADE"), primary_key=True,
                                          index=True)
    rank: Mapped[int] = mapped_column(Integer)
    # Scored once per search at discovery, for the pre-download filter (None: not scored).
    relevance: Mapped[float | None] = mapped_column(Float, nullable=True)  # title + description vs the point
    llm_score: Mapped[float | None] = mapped_column(Float, nullable=True)  # optional LLM metadata judge, 0-10
    llm_response: Mapped[str | None] = mapped_column(Message, nullable=True)
    video: Mapped[Video] = relationship(back_populates="sources")
    point: Mapped[KnowledgePoint] = relationship()


class VideoStage(Base):
    """One row per (video, stage): where that video stands in that stage, and why."""

    __tablename__ = "video_stages"
    # A claim's rows in the order it takes them (lectern.state.transitions.claim_videos)
    __table_args__ = (Index("ix_video_stages_claim", "stage", "status", "created_at", "video_id"),)
    video_id: Mapped[str] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"), primary_key=True)
    stage: Mapped[str] = mapped_column(SafeString(32), primary_key=True)
    status: Mapped[str] = mapped_column(SafeString(16), default=PENDING, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(SafeString(250), nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # Each claim's own token: a run that lost its lease (expired, or taken by a retry of the same task) no
    # longer holds it, so its late writes and its result are refused.
    lease_token: Mapped[str | None] = mapped_column(SafeString(32), nullable=True)
    retry_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True, index=True)
    error_class: Mapped[str | None] = mapped_column(SafeString(200), nullable=True)
    error_kind: Mapped[str | None] = mapped_column(SafeString(16), nullable=True)  # transient | permanent
    error_message: Mapped[str | None] = mapped_column(Message, nullable=True)
    reason: Mapped[str | None] = mapped_column(Message, nullable=True)  # why a video was rejected
    metrics: Mapped[dict[str, Any]] = mapped_column(SafeJSON, default=dict)
    artifacts: Mapped[dict[str, str]] = mapped_column(SafeJSON, default=dict)
    version: Mapped[str | None] = mapped_column(SafeString(64), nullable=True)
    # The settings behind `version` (its hash is of these), recorded with the result: a release's lineage.
    config: Mapped[dict[str, Any] | None] = mapped_column(SafeJSON, nullable=True)
    run_id: Mapped[str | None] = mapped_column(SafeString(250), nullable=True)
    map_index: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
