"""What the state DB knows before any stage runs: subjects and their knowledge points, the videos their searches
found (a new one gets its first stage through lectern.state.transitions) and the metadata scores of each link."""


from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Sequence

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from lectern.state.models import (
    KnowledgePoint,
    Subject,
    Video,
    VideoSource,
    utcnow,
)
from lectern.state.queries import missing_scores
from lectern.state.transitions import open_first_stage
from lectern.store import hashed_id


@dataclass(frozen=True)
class PointSpec:
    path: str
    name: str
    query: str
    urls: tuple[str, ...] = ()
    vocabulary: tuple[str, ...] = ()  # words of the point's lectures (jargon), given to Whisper as its prompt
    videos_dir: str | None = None  # a local folder (or glob), absolute: its files are the point's videos


def sync_subject(session: Session, subject: str, points: Sequence[PointSpec], recipe: str = "textbook",
                 prefilter: bool | None = None) -> list[int]:
    """Create or update a subject, its recipe, its `prefilter` choice and its knowledge points; returns the ids of
    all its points."""
    row = session.scalar(select(Subject).where(Subject.name == subject))
    if row is None:
        row = Subject(name=subject, recipe=recipe)
        session.add(row)
        session.flush()
    row.recipe, row.prefilter = recipe, prefilter
    existing = {p.path: p for p in session.scalars(select(KnowledgePoint).where(KnowledgePoint.subject_id == row.id))}
    ids = []
    for spec in points:
        point = existing.get(spec.path)
        if point is None:
            point = KnowledgePoint(subject_id=row.id, path=spec.path, name=spec.name, query=spec.query,
                                   urls=list(spec.urls), vocabulary=list(spec.vocabulary), videos_dir=spec.videos_dir,
                                   search_metrics={})
            session.add(point)
            session.flush()
        point.vocabulary = list(spec.vocabulary)  # not a different search: nothing to run again
        if (point.query, list(point.urls or []), point.videos_dir) != (spec.query, list(spec.urls), spec.videos_dir):
            # A changed query is a different search: run it again.
            point.query, point.urls, point.name, point.searched_at = spec.query, list(spec.urls), spec.name, None
            point.videos_dir = spec.videos_dir
        ids.append(point.id)
    return ids


def points_to_search(session: Session, subject: str, force: bool = False) -> list[tuple[int, str]]:
    """(id, path) of the subject's knowledge points not searched yet (all of them with `force`). A point with a
    local folder is listed every time, so files added to the folder are found; those already known stay as they are."""
    query = (select(KnowledgePoint.id, KnowledgePoint.path).join(Subject).where(Subject.name == subject)
             .order_by(KnowledgePoint.id))
    if not force:
        query = query.where(or_(KnowledgePoint.searched_at.is_(None), KnowledgePoint.videos_dir.is_not(None)))
    return [(point_id, path) for point_id, path in session.execute(query)]


@dataclass(frozen=True)
class FoundVideo:
    id: str
    url: str
    title: str = ""
    description: str = ""
    duration_s: float | None = None
    language: str | None = None
    extractor: str | None = None
    live_status: str | None = None
    license: str | None = None
    cover_url: str | None = None
    height: int | None = None  # the picture's, in pixels, where the metadata says


def _own_id(session: Session, item: FoundVideo, taken: dict[str, tuple[int, FoundVideo]]) -> FoundVideo:
    """A local file (a file: URL) whose id, its file name, is already another file's, in this search or in the
    state DB, gets the id with a short hash of its URL added, so two lectures named intro.mp4 stay two videos. The
    first file keeps the plain name, and a file found again keeps the id it got."""
    earlier = taken.get(item.id)
    url = earlier[1].url if earlier else session.scalar(select(Video.url).where(Video.id == item.id))
    if url is None or url == item.url:
        return item
    return replace(item, id=hashed_id(item.id, item.url))


def _insert_if_new(session: Session, model, values: dict[str, Any]) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING: True when the row is new. Concurrent searches may find the same video;
    the second waits for the first's commit and then finds the row there, instead of failing on the key."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:  # pragma: no cover - Lectern's state DB is Postgres or SQLite
        raise NotImplementedError(f"state DB dialect {dialect!r}")
    return session.execute(insert(model).values(**values).on_conflict_do_nothing()).rowcount == 1


def record_search(session: Session, point_id: int, found: Sequence[FoundVideo],
                  metrics: dict[str, Any]) -> dict[str, int]:
    """Store a point's search results: new videos get a pending download; known ones just gain a link."""
    first: dict[str, tuple[int, FoundVideo]] = {}
    for rank, item in enumerate(found, start=1):
        if item.url.startswith("file:"):
            item = _own_id(session, item, first)
        first.setdefault(item.id, (rank, item))
    new = linked = 0
    # One order for every search, so two searches sharing videos wait on each other instead of deadlocking.
    for video_id in sorted(first):
        rank, item = first[video_id]
        if _insert_if_new(session, Video, {
                "id": item.id, "url": item.url, "title": item.title, "description": item.description,
                "duration_s": item.duration_s, "language": item.language, "extractor": item.extractor,
                "live_status": item.live_status, "license": item.license, "cover_url": item.cover_url,
                "height": item.height}):
            open_first_stage(session, item.id)
            new += 1
        elif session.get(Video, video_id).forgotten_at is not None:
            continue  # taken down: found again, but neither revived nor linked
        if session.get(VideoSource, (video_id, point_id)) is None:
            session.add(VideoSource(video_id=video_id, point_id=point_id, rank=rank))
            linked += 1
        session.flush()
    point = session.get(KnowledgePoint, point_id)
    point.searched_at = utcnow()
    point.search_metrics = {**metrics, "found": len(found), "new_videos": new, "new_links": linked}
    return {"found": len(found), "new_videos": new, "new_links": linked}


@dataclass(frozen=True)
class Link:
    """One (video, knowledge point) search result to score on metadata."""

    video_id: str
    point_id: int
    point: str  # "subject: point", as the judge phrases it
    title: str
    description: str


def links_to_score(session: Session, subject: str | None = None, relevance: bool = True,
                   llm: bool = False) -> list[Link]:
    """Search results missing a score asked for: a relevance, or an LLM metadata answer."""
    missing = missing_scores(relevance, llm)
    if missing is None:
        return []
    query = (select(VideoSource.video_id, VideoSource.point_id, Subject.name, KnowledgePoint.name, Video.title,
                    Video.description)
             .join(KnowledgePoint, VideoSource.point_id == KnowledgePoint.id)
             .join(Subject, KnowledgePoint.subject_id == Subject.id)
             .join(Video, VideoSource.video_id == Video.id)
             .where(missing).order_by(VideoSource.video_id, VideoSource.point_id))
    if subject:
        query = query.where(Subject.name == subject)
    return [Link(vid, pid, f"{subj}: {point}", title or "", desc or "")
            for vid, pid, subj, point, title, desc in session.execute(query)]


def record_link_scores(session: Session, scores: Sequence[tuple[Link, float | None, float | None, str | None]]) -> None:
    """Store (link, relevance, llm score, llm answer); a None leaves that value as it was."""
    for link, relevance, llm_score, llm_response in scores:
        row = session.get(VideoSource, (link.video_id, link.point_id))
        if relevance is not None:
            row.relevance = relevance
        if llm_response is not None:
            row.llm_score, row.llm_response = llm_score, llm_response


def update_video(session: Session, video_id: str, **fields: Any) -> None:
    video = session.get(Video, video_id)
    for name, value in fields.items():
        setattr(video, name, value)
