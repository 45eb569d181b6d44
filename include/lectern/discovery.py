"""Discovery: a subject's taxonomy (YAML) and the search of each knowledge point with yt-dlp.

Taxonomy format (``<subjects dir>/<subject>.yaml``), four levels as in the paper
(subject -> course -> sub-course -> knowledge point); sub-courses are optional::

    subject: Biology
    query_template: "{point} {course} lecture"   # optional; this is the default
    prefilter: true                              # optional: judge listed videos' titles too (default: only searched)
    courses:
      - name: Cell Biology
        subcourses:
          - name: Energy
            points:
              - Photosynthesis                     # a point is a name...
              - name: Cellular respiration         # ...or a mapping
                query: cellular respiration explained
                urls: [https://example.org/v.mp4]  # explicit videos instead of a search
                vocabulary: [glycolysis, NADH]     # its jargon: Whisper's prompt spells it so
              - name: Mitochondria
                videos_dir: ~/lectures/mito        # local files, read where they are (or a glob: ~/l/*.mp4)
        points: [Mitosis]                          # points directly under a course

Or, instead of courses, ``queries:`` (a list of phrases, or a text file of one a line), each one knowledge point
searched as written, as InternVid searched with action phrases.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import yaml

from lectern.config import Settings
from lectern.errors import BlockedURL, PermanentError, TransientError
from lectern.local_files import list_folder, resolve_root
from lectern.manifest import (
    Manifest,
    ManifestError,
    has_local_rows,
    label_names,
    load_manifest,
    manifest_columns,
    manifest_path,
)
from lectern.recipes import DEFAULT_RECIPE, RECIPES
from lectern.stages.download.urls import (
    BLOCKED_MARK,
    PAGE_MARK,
    capped_pages,
    check_url,
    fetch_bytes,
    guarded_connections,
    is_web_url,
)
from lectern.state.catalog import FoundVideo, PointSpec, links_to_score, record_link_scores, record_search
from lectern.state.db import session_scope
from lectern.state.models import KnowledgePoint
from lectern.store import safe_video_id

DEFAULT_QUERY_TEMPLATE = "{point} {course} lecture"
log = logging.getLogger("lectern")


class TaxonomyError(ValueError):
    """A subject YAML that does not follow the documented format."""


def subject_slug(subject: str) -> str:
    """A subject's name as a file name ("Organic Chemistry" -> organic_chemistry): its YAML's, its release's."""
    return re.sub(r"[^a-z0-9]+", "_", subject.lower()).strip("_")


def subject_file(settings: Settings, subject: str) -> Path:
    return settings.subjects_dir / f"{subject_slug(subject)}.yaml"


@dataclass
class SubjectSpec:
    name: str
    points: list[PointSpec]
    recipe: str = DEFAULT_RECIPE  # a key of lectern.recipes.RECIPES
    manifest: Manifest | None = None  # a URL-manifest corpus's rows, read and validated
    # Whether the metadata relevance filter judges videos listed by hand (None: only search results are judged).
    prefilter: bool | None = None


def load_taxonomy(path: Path) -> tuple[str, list[PointSpec]]:
    """Parse and validate a subject YAML; errors name the file and the offending entry. A manifest subject's
    knowledge points are its manifest's labels."""
    definition = load_subject(path)
    return definition.name, definition.points


def load_subject(path: Path, allow_file_urls: bool = False) -> SubjectSpec:
    """A subject YAML: its name, knowledge points and recipe, and for a URL-manifest corpus the manifest, read and
    validated (lectern/manifest.py)."""
    if not path.is_file():
        raise TaxonomyError(f"{path}: no such subject file")
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise TaxonomyError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("subject"), str) or not doc["subject"].strip():
        raise TaxonomyError(f"{path}: needs a top-level 'subject: <name>'")
    recipe = doc.get("recipe", DEFAULT_RECIPE)
    if recipe not in RECIPES:
        raise TaxonomyError(f"{path}: recipe {recipe!r} is not one of {', '.join(RECIPES)}")
    prefilter = doc.get("prefilter")
    if prefilter is not None and not isinstance(prefilter, bool):
        raise TaxonomyError(f"{path}: 'prefilter' must be true or false, not {prefilter!r}")
    try:
        source = manifest_path(path, doc)
        if source is not None:
            if "courses" in doc:
                raise TaxonomyError(f"{path}: a subject has either 'courses' to search or a 'manifest', not both")
            columns = doc.get("manifest_columns")
            manifest = load_manifest(source, allow_file_urls, manifest_columns(columns, str(path)),
                                     label_names(columns, doc.get("label_names"), str(path)))
            # local rows are read inside the manifest's folder only (the download stage checks it again)
            folder = str(manifest.path.parent.absolute()) if has_local_rows(manifest) else None
            points = [PointSpec(path=label, name=label, query=label, videos_dir=folder) for label in manifest.labels()]
            return SubjectSpec(doc["subject"].strip(), points, recipe, manifest, prefilter)
    except ManifestError as exc:
        raise TaxonomyError(str(exc)) from exc
    if "queries" in doc:
        if "courses" in doc:
            raise TaxonomyError(f"{path}: a subject has either 'courses' or 'queries', not both")
        return SubjectSpec(doc["subject"].strip(), _query_points(path, doc["queries"]), recipe, prefilter=prefilter)
    return SubjectSpec(*_searched_subject(path, doc), recipe, prefilter=prefilter)


def _query_points(path: Path, queries: Any) -> list[PointSpec]:
    """`queries:` instead of a course taxonomy (InternVid searched with some 6.1K action phrases): a list, or a
    text file of one query a line (relative to the YAML; blank lines and # comments skipped). Each query is one
    knowledge point, searched as it is written."""
    if isinstance(queries, str):
        source = Path(queries).expanduser()
        source = source if source.is_absolute() else path.parent / source
        if not source.is_file():
            raise TaxonomyError(f"{path}: queries file {source}: no such file")
        queries = [line.strip() for line in source.read_text(encoding="utf-8").splitlines()
                   if line.strip() and not line.lstrip().startswith("#")]
    if not isinstance(queries, list) or not queries or not all(isinstance(q, str) and q.strip() for q in queries):
        raise TaxonomyError(f"{path}: 'queries' must be a non-empty list of phrases, or a file of them")
    phrases = list(dict.fromkeys(" ".join(q.split()) for q in queries))  # a repeated phrase is one point
    return [PointSpec(path=phrase, name=phrase, query=phrase) for phrase in phrases]


def _searched_subject(path: Path, doc: dict) -> tuple[str, list[PointSpec]]:
    courses = doc.get("courses")
    if not isinstance(courses, list) or not courses:
        raise TaxonomyError(f"{path}: needs a non-empty 'courses' list")
    template = doc.get("query_template", DEFAULT_QUERY_TEMPLATE)
    subject = doc["subject"].strip()
    points: list[PointSpec] = []
    for i, course in enumerate(courses):
        where = f"{path}: courses[{i}]"
        if not isinstance(course, dict) or not isinstance(course.get("name"), str):
            raise TaxonomyError(f"{where}: each course needs a 'name'")
        groups = [(None, course.get("points") or [])]
        for j, sub in enumerate(course.get("subcourses") or []):
            if not isinstance(sub, dict) or not isinstance(sub.get("name"), str):
                raise TaxonomyError(f"{where}.subcourses[{j}]: each sub-course needs a 'name'")
            groups.append((sub["name"], sub.get("points") or []))
        for subcourse, entries in groups:
            if not isinstance(entries, list):
                raise TaxonomyError(f"{where}: 'points' must be a list")
            for k, entry in enumerate(entries):
                points.append(_point(entry, subject, course["name"], subcourse, template, f"{where} point {k}",
                                     path.parent))
    if not points:
        raise TaxonomyError(f"{path}: no knowledge points")
    paths = [p.path for p in points]
    duplicates = sorted({p for p in paths if paths.count(p) > 1})
    if duplicates:
        raise TaxonomyError(f"{path}: duplicate knowledge points: {', '.join(duplicates)}")
    return subject, points


def _point(entry: Any, subject: str, course: str, subcourse: str | None, template: str, where: str,
           base: Path) -> PointSpec:
    if isinstance(entry, str):
        entry = {"name": entry}
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry["name"].strip():
        raise TaxonomyError(f"{where}: a point is a name or a mapping with 'name'")
    urls = entry.get("urls") or []
    if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
        raise TaxonomyError(f"{where}: 'urls' must be a list of strings")
    vocabulary = entry.get("vocabulary") or []
    if not isinstance(vocabulary, list) or not all(isinstance(w, str) and w.strip() for w in vocabulary):
        raise TaxonomyError(f"{where}: 'vocabulary' must be a list of words")
    videos_dir = entry.get("videos_dir")
    if videos_dir is not None and (not isinstance(videos_dir, str) or not videos_dir.strip()):
        raise TaxonomyError(f"{where}: 'videos_dir' must be a folder path (or a glob), not {videos_dir!r}")
    name = entry["name"].strip()
    query = entry.get("query")
    if query is not None and not isinstance(query, str):
        raise TaxonomyError(f"{where}: 'query' must be text, not {query!r}")
    if not query:
        if not isinstance(template, str):
            raise TaxonomyError(f"query_template must be text, not {template!r}")
        try:
            query = template.format(point=name, course=course, subcourse=subcourse or "", subject=subject)
        except (KeyError, IndexError, ValueError) as exc:
            raise TaxonomyError(f"query_template {template!r}: {exc!r} is not one of {{point}}, {{course}}, "
                                "{subcourse}, {subject}") from None
    path = " / ".join(part for part in (course, subcourse, name) if part)
    return PointSpec(path=path, name=name, query=" ".join(query.split()), urls=tuple(urls),
                     vocabulary=tuple(w.strip() for w in vocabulary),
                     videos_dir=resolve_root(videos_dir.strip(), base) if videos_dir else None)


def search_point(query: str, urls: Sequence[str], settings: Settings) -> list[FoundVideo]:
    """Videos for one knowledge point: its explicit URLs, else a search with the configured backend
    (``youtube``: ``ytsearchN:<query>`` through yt-dlp; ``catalog``: a JSON catalog served over HTTP)."""
    if not urls and settings.search_backend == "catalog":
        return search_catalog(query, settings)
    return _extract(list(urls) or [f"ytsearch{settings.search_results}:{query}"], settings)


STOPWORDS = frozenset("a an and the of in on to for with by is are how what lecture lectures explained".split())


def search_catalog(query: str, settings: Settings) -> list[FoundVideo]:
    """Rank a catalog's videos by how many of the query's words their title and description contain.

    The catalog is a JSON list of yt-dlp-like entries ({id, url, title, description, duration, ...}) at
    LECTERN_SEARCH_CATALOG_URL: a site's own index, or a loopback page in tests and demos."""
    import json
    import urllib.error

    if not settings.search_catalog_url:
        raise PermanentError("LECTERN_SEARCH_BACKEND=catalog needs LECTERN_SEARCH_CATALOG_URL")
    where = settings.search_catalog_url
    try:
        catalog = json.loads(fetch_bytes(where, settings.download_allow_networks, settings.allow_file_urls))
    except urllib.error.HTTPError as exc:
        error = PermanentError if exc.code in (404, 410) else TransientError
        raise error(f"catalog {where}: HTTP {exc.code}") from exc
    except (urllib.error.URLError, TimeoutError) as exc:
        if BLOCKED_MARK in str(exc):
            raise BlockedURL(f"catalog {where}: {exc}") from exc
        raise TransientError(f"catalog {where}: {exc}") from exc
    except ValueError as exc:  # not JSON
        raise PermanentError(f"catalog {where}: not a JSON list of videos ({exc})") from exc
    entries = catalog_entries(catalog, where, settings.allow_file_urls)
    terms = set(re.findall(r"\w+", query.lower())) - STOPWORDS
    scored = []
    for entry in entries:
        text = set(re.findall(r"\w+", f"{entry.get('title', '')} {entry.get('description', '')}".lower()))
        score = len(terms & text)
        if score:
            scored.append((-score, str(entry["id"]), entry))
    return [_found(entry, where) for _, _, entry in sorted(scored)[: settings.search_results]]


def catalog_entries(catalog: Any, where: str, allow_file_urls: bool = False) -> list[dict]:
    """The catalog's usable entries: objects with an id and an http(s) URL (a `javascript:` or other URL would end
    up as a link on the video's page). Each one left out is logged with why."""
    if not isinstance(catalog, list):
        raise PermanentError(f"catalog {where}: not a JSON list of videos")
    usable = []
    for n, entry in enumerate(catalog, start=1):
        url = entry.get("url") or entry.get("webpage_url") if isinstance(entry, dict) else None
        why = ("not an object" if not isinstance(entry, dict) else "no id" if not entry.get("id")
               else "" if is_web_url(url, allow_file_urls) else f"url {url!r} is not http(s)")
        if why:
            log.warning("catalog %s: entry %d left out: %s", where, n, why)
        else:
            usable.append(entry)
    return usable


def _extract(targets: list[str], settings: Settings) -> list[FoundVideo]:
    import yt_dlp

    options = {
        "quiet": True,
        "no_warnings": True,
        "skip_download": True,
        "extract_flat": "in_playlist",
        "enable_file_urls": settings.allow_file_urls,
        "socket_timeout": 30,
    }
    found: dict[str, FoundVideo] = {}
    with (guarded_connections(settings.download_allow_networks),
          capped_pages(settings.max_page_mb, settings.page_timeout_s), yt_dlp.YoutubeDL(options) as ydl):
        for target in targets:
            if not target.startswith("ytsearch"):  # a URL: where discovery may connect, as downloads may
                check_url(target, settings.download_allow_networks, settings.allow_file_urls)
            try:
                info = ydl.extract_info(target, download=False)
            except yt_dlp.utils.DownloadError as exc:
                message = str(exc)
                if BLOCKED_MARK in message:
                    raise BlockedURL(f"search target {target}: {message}") from exc
                if re.search(r"HTTP Error (404|410)|Unsupported URL|not a valid URL", message) or (
                        PAGE_MARK in message and "larger than" in message):
                    raise PermanentError(f"search target {target}: {message}") from exc
                raise TransientError(f"search target {target}: {message}") from exc
            for entry in info.get("entries") or [info]:
                if not entry or not entry.get("id"):
                    continue
                video = _found(entry, target)
                found.setdefault(video.id, video)
    return list(found.values())


def _found(entry: dict[str, Any], target: str) -> FoundVideo:
    video_id = safe_video_id(str(entry["id"]))
    url = entry.get("webpage_url") or entry.get("url") or target
    if entry.get("ie_key") == "Youtube" or entry.get("extractor_key") == "Youtube":
        url = f"https://www.youtube.com/watch?v={entry['id']}"
    duration = entry.get("duration")
    return FoundVideo(
        id=video_id, url=url, title=entry.get("title") or video_id, description=entry.get("description") or "",
        duration_s=float(duration) if duration else None, language=entry.get("language"),
        extractor=entry.get("extractor_key") or entry.get("ie_key"),
        live_status=entry.get("live_status") or ("is_live" if entry.get("is_live") else None),
        license=entry.get("license"),
        height=int(entry["height"]) if isinstance(entry.get("height"), (int, float)) and entry["height"] > 0 else None,
    )


def import_manifest(settings: Settings, subject: str, manifest: Manifest, point_ids: dict[str, int]) -> dict:
    """Record a manifest's rows as videos found by their label's knowledge point (`point_ids`: label -> id), as a
    search records what it found: a new video gets a pending download, a known one a link; importing the same
    manifest again adds nothing. Every bad or repeated row is logged with its line number and why."""
    import logging

    log = logging.getLogger("lectern")
    started = time.monotonic()
    new = 0
    by_label: dict[str, list[FoundVideo]] = {}
    for row in manifest.rows:
        by_label.setdefault(row.label, []).append(row.video)
    for label, found in sorted(by_label.items()):
        with session_scope(settings.db_url) as session:
            result = record_search(session, point_ids[label], found, {"manifest": str(manifest.path)})
        new += result["new_videos"]
    for problem in manifest.problems[:100]:
        log.warning("manifest %s: %s", manifest.path.name, problem)
    if len(manifest.problems) > 100:
        log.warning("manifest %s: %d more problems (`lectern taxonomy check %s` lists them all)", manifest.path.name,
                    len(manifest.problems) - 100, subject)
    summary = {**manifest.summary(), "new_videos": new, "seconds": round(time.monotonic() - started, 3)}
    log.info("subject %s: manifest %s: %s", subject, manifest.path.name, summary)
    return summary


def discover_point(point_id: int, settings: Settings) -> dict[str, int]:
    """Search one knowledge point and record what it found (the unit of the discover phase)."""
    with session_scope(settings.db_url) as session:
        point = session.get(KnowledgePoint, point_id)
        if point is None:
            raise PermanentError(f"unknown knowledge point {point_id}")
        query, urls, videos_dir = point.query, list(point.urls or []), point.videos_dir
    started = time.monotonic()
    found = search_point(query, urls, settings) if urls or not videos_dir else []
    if videos_dir:  # a local folder instead of (or besides) a search
        try:
            found += list_folder(videos_dir)
        except FileNotFoundError as exc:
            raise PermanentError(str(exc)) from None
    metrics = {"seconds": round(time.monotonic() - started, 3), "query": query,
               **({"videos_dir": videos_dir} if videos_dir else {})}
    with session_scope(settings.db_url) as session:
        return record_search(session, point_id, found, metrics)


def score_metadata(settings: Settings, subject: str | None = None) -> dict[str, int]:
    """Score every new (video, knowledge point) search result on its metadata, for the pre-download filter:
    the sentence-embedding similarity of title + description to the point and, when LECTERN_METADATA_JUDGE_MODEL
    is set, an LLM's 0-10 score. One model load serves the whole subject; results already scored are skipped."""
    from lectern import models
    from lectern.stages.judge import judging, llm

    want_relevance, judge_model = settings.metadata_min_relevance > 0, settings.metadata_judge_model
    with session_scope(settings.db_url) as session:
        links = links_to_score(session, subject, relevance=want_relevance, llm=bool(judge_model))
    if not links:
        return {"scored": 0}
    relevance: list[float | None] = [None] * len(links)
    if want_relevance:
        texts = sorted({link.point for link in links} | {_metadata_text(link) for link in links})
        vectors = dict(zip(texts, models.embedder(settings.embedding_model).encode(texts, normalize_embeddings=True)))
        relevance = [round(float(vectors[link.point] @ vectors[_metadata_text(link)]), 4) for link in links]
    answers: list[str | None] = [None] * len(links)
    if judge_model:
        answers = llm.generate(judge_model, [judging.metadata_prompt(link.point, link.title, link.description)
                                             for link in links], llm.Serving.from_settings(settings),
                               max_new_tokens=settings.llm_max_new_tokens, system=judging.SYSTEM)
    scores = [llm.parse_score(answer) if answer is not None else None for answer in answers]
    with session_scope(settings.db_url) as session:
        record_link_scores(session, list(zip(links, relevance, scores, answers)))
    return {
        "scored": len(links),
        "below_relevance": sum(r is not None and r < settings.metadata_min_relevance for r in relevance),
        "llm_unparseable": sum(a is not None and s is None for a, s in zip(answers, scores)),
    }


def _metadata_text(link) -> str:
    return f"{link.title}. {link.description[:1000]}"
