"""URL-manifest corpora: a CSV or JSONL file of videos to take as they are, instead of a taxonomy to search.

A subject's YAML names its manifest (a path relative to the YAML, or absolute), and, when its columns have other
names than Lectern's fields, how they map (``manifest_columns``: a mapping of field to column, or the name of a
built-in mapping, ``short_video_dataset`` for that dataset's ``multimodal_data_info.json`` as published)::

    subject: Short videos
    manifest: short_videos.csv
    manifest_columns: {url: video_url, label: category}

Each row is one video: ``url`` (required: the video file or page, http(s), or a local file's path, relative to
the manifest's folder or absolute, which must lie inside that folder: lectern/local_files.py), ``cover_url``
(optional: its cover image), ``description`` and ``label`` (its category), optionally ``id``, ``title`` and
``duration`` (seconds or [[H:]M:]S, the known duration for the pre-download filter). A CSV has a header row with
these column names (other columns are ignored); a JSON-lines file (.jsonl, or .json) has one object per line with
these keys, and a .json file may also be one array of them (at most 16 MB: a larger manifest is JSON lines).
Manifests are read line by line: a line over 1 MB is reported and never read, a field over 10,000 characters makes
its row malformed, and a file that is not UTF-8 is an error naming its line.

Every label becomes a knowledge point of the subject, and every row a video found by it, so downloads, probing,
state and releases work as for searched videos. Bad rows are reported with their line number and why, and skipped;
a row repeating an earlier one (the same video id) is reported as a duplicate and skipped. A video's id is the
row's ``id``, else the one yt-dlp gives the URL (a YouTube id, or the file name without its extension for a plain
file URL), so a video found both by a search and in a manifest is one video.
"""

from __future__ import annotations

import csv
import functools
import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit

from lectern.local_files import LOCAL_FILE, found_file
from lectern.stages.download.urls import inside, is_web_url
from lectern.state.catalog import FoundVideo
from lectern.store import safe_video_id

FIELDS = ("url", "cover_url", "description", "label", "id", "title", "duration")
# The short-video dataset's 31 categories, English -> Chinese, as its README maps them (its labels are the English
# names; a copy labelled in Chinese is read with the same mapping backwards).
SHORT_VIDEO_CATEGORIES = {
    "360VR": "VR", "4k": "4K", "Technology": "科技", "Sport": "运动", "Timelapse": "延时", "Aerial": "航拍",
    "Animals": "动物", "Sea": "大海", "Beach": "海滩", "space": "太空", "stars": "星空", "City": "城市",
    "Business": "商业", "Underwater": "水下摄影", "Wedding": "婚礼", "Archival": "档案", "Backgrounds": "背景",
    "Alpha Channel": "透明通道", "Intro": "开场", "Celebration": "庆典", "Clouds": "云彩", "Corporate": "企业",
    "Explosion": "爆炸", "Film": "电影镜头", "Green Screen": "绿幕", "Military": "军事", "Nature": "自然",
    "News": "新闻", "R3d": "R3d", "Romantic": "浪漫", "Abstract": "抽象",
}
# Label names built in with a column mapping: a manifest's label -> the category Lectern records.
BUILT_IN_LABELS = {"short_video_dataset": {chinese: english for english, chinese in SHORT_VIDEO_CATEGORIES.items()
                                           if chinese != english}}
# Column mappings built in (a subject's `manifest_columns: <name>`): Lectern's field -> the manifest's column.
BUILT_IN_COLUMNS = {
    # The short-video dataset's multimodal_data_info.json (31 categories, about 562K videos), JSON lines:
    # {"mp4_id", "mp4_download_url", "mp4_time": "0:16", "mp4_background_image_url", "mp4_txt_brief", "video_label"}
    "short_video_dataset": {"id": "mp4_id", "url": "mp4_download_url", "duration": "mp4_time",
                            "cover_url": "mp4_background_image_url", "description": "mp4_txt_brief",
                            "label": "video_label"},
}
UNLABELLED = "unlabelled"
MAX_LABEL = 200  # a label is a knowledge point's name
MAX_FIELD = 10_000  # characters of any other field (a platform's descriptions stop at 5,000)
MAX_LINE_BYTES = 1 << 20  # a longer line (a row with a field far over MAX_FIELD) is reported, never read
TOO_LONG = f"the line is longer than {MAX_LINE_BYTES // 1024} KB (not read)"
MAX_ARRAY_BYTES = 16 << 20  # a JSON array is parsed whole (~18 times its size in memory); larger: JSON lines
MEDIA_SUFFIXES = (".mp4", ".m4v", ".mov", ".webm", ".mkv", ".avi", ".flv", ".ts")
_EXTRA = "\0extra"  # where csv puts the fields of a row longer than the header


class ManifestError(ValueError):
    """A manifest that cannot be read at all (missing, empty, an unknown format, a CSV without a url column)."""


@dataclass(frozen=True)
class ManifestRow:
    line: int
    video: FoundVideo
    label: str


@dataclass(frozen=True)
class RowProblem:
    line: int
    kind: str  # malformed | duplicate
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.kind}: {self.message}"


@dataclass
class Manifest:
    path: Path
    rows: list[ManifestRow] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)

    def labels(self) -> list[str]:
        return sorted({row.label for row in self.rows})

    def summary(self) -> dict:
        kinds = [p.kind for p in self.problems]
        return {"rows": len(self.rows) + len(self.problems), "videos": len(self.rows), "labels": len(self.labels()),
                "duplicates": kinds.count("duplicate"), "malformed": kinds.count("malformed")}


def manifest_columns(value: object, where: str) -> dict[str, str]:
    """A subject's `manifest_columns`: the name of a built-in mapping, or a mapping of Lectern's fields to the
    manifest's column names (fields it leaves out keep their own names)."""
    if value is None:
        return {}
    if isinstance(value, str):
        if value not in BUILT_IN_COLUMNS:
            raise ManifestError(f"{where}: manifest_columns {value!r} is not one of {', '.join(BUILT_IN_COLUMNS)}")
        return dict(BUILT_IN_COLUMNS[value])
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ManifestError(f"{where}: manifest_columns maps Lectern's fields to column names")
    unknown = sorted(set(value) - set(FIELDS))
    if unknown:
        raise ManifestError(f"{where}: manifest_columns: {', '.join(unknown)} not among {', '.join(FIELDS)}")
    return dict(value)


def label_names(columns: object, names: object, where: str) -> dict[str, str]:
    """A subject's `label_names` (a manifest's label -> the category recorded), over those its built-in column
    mapping brings (the short-video dataset's Chinese names -> English)."""
    if names is not None and (not isinstance(names, dict)
                              or not all(isinstance(k, str) and isinstance(v, str) for k, v in names.items())):
        raise ManifestError(f"{where}: label_names maps a manifest's labels to category names")
    built_in = BUILT_IN_LABELS.get(columns, {}) if isinstance(columns, str) else {}
    return {**built_in, **(names or {})}


def load_manifest(path: Path, allow_file_urls: bool = False, columns: dict[str, str] | None = None,
                  labels: dict[str, str] | None = None) -> Manifest:
    """Read and validate a manifest; good rows in file order, every bad or repeated row as a problem. `columns`
    names the manifest's column for each of Lectern's fields that it calls otherwise; `labels` renames labels."""
    if not path.is_file():
        raise ManifestError(f"{path}: no such manifest")
    suffix = path.suffix.lower()
    if suffix not in (".jsonl", ".ndjson", ".json", ".csv", ".tsv"):
        raise ManifestError(f"{path}: a manifest is .csv, .tsv, .json or .jsonl, not "
                            f"{suffix or 'a file without suffix'}")
    first = _first_character(path)
    if first is None:
        raise ManifestError(f"{path}: the manifest is empty")
    columns = {field: columns.get(field, field) for field in FIELDS} if columns else None
    if suffix in (".jsonl", ".ndjson", ".json"):  # .json: JSON lines (as the short-video dataset's), or an array
        records = _json_array(path) if first == "[" else _json_records(path)
    else:
        records = _csv_records(path, "\t" if suffix == ".tsv" else ",", (columns or {}).get("url", "url"))
    manifest = Manifest(path)
    seen: dict[str, tuple[int, str]] = {}  # video id -> (line, url)
    for line, record in records:
        if isinstance(record, str):
            manifest.problems.append(RowProblem(line, "malformed", record))
            continue
        if columns:  # a CSV's header is read lower-cased
            record = {field: record.get(column, record.get(column.lower())) for field, column in columns.items()}
        try:
            row = _row(line, record, allow_file_urls, path.parent)
            if labels and row.label in labels:
                row = replace(row, label=labels[row.label])
        except ValueError as exc:
            manifest.problems.append(RowProblem(line, "malformed", str(exc)))
            continue
        earlier = seen.get(row.video.id)
        if earlier is None:
            seen[row.video.id] = (line, row.video.url)
            manifest.rows.append(row)
        elif earlier[1] == row.video.url:
            manifest.problems.append(RowProblem(line, "duplicate", f"video {row.video.id} is line {earlier[0]} again"))
        elif row.video.extractor == LOCAL_FILE and not record.get("id"):
            manifest.rows.append(row)  # another file of the same name: the state DB gives it its own id
        else:
            manifest.problems.append(RowProblem(
                line, "malformed", f"video id {row.video.id} is taken by line {earlier[0]} for another URL "
                                   f"({earlier[1]}); give this row its own id"))
    return manifest


def _first_character(path: Path) -> str | None:
    """The manifest's first character that is not white space (None: there is none), read in blocks."""
    with open(path, "rb") as handle:
        while block := handle.read(1 << 16):
            stripped = block.removeprefix(b"\xef\xbb\xbf").lstrip()
            if stripped:
                return chr(stripped[0])
    return None


def _lines(path: Path) -> Iterator[tuple[int, str | None]]:
    """The manifest's lines, numbered from 1, read as a stream: a line longer than MAX_LINE_BYTES is skipped
    unread (None); text that is not UTF-8 is a ManifestError naming the line."""
    with open(path, "rb") as handle:
        number = 0
        while raw := handle.readline(MAX_LINE_BYTES + 1):
            number += 1
            if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                while (rest := handle.readline(1 << 20)) and not rest.endswith(b"\n"):
                    pass
                yield number, None
                continue
            if number == 1:
                raw = raw.removeprefix(b"\xef\xbb\xbf")
            yield number, _decoded(path, raw, number)


def _decoded(path: Path, raw: bytes, line: int) -> str:
    """`raw` (the manifest from line `line` on) as text; a ManifestError naming the line and column of the first
    byte that is not UTF-8."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line += raw.count(b"\n", 0, exc.start)
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1)
        raise ManifestError(f"{path}: line {line} is not UTF-8 text (byte "
                            f"0x{raw[exc.start]:02x} at column {column + 1}); save the manifest as UTF-8") from None


def _json_array(path: Path):
    """One JSON array of objects (its items numbered as lines), at most MAX_ARRAY_BYTES: it is read whole."""
    size = path.stat().st_size
    if size > MAX_ARRAY_BYTES:
        raise ManifestError(f"{path}: a JSON array of {size / 1e6:.0f} MB; a manifest over "
                            f"{MAX_ARRAY_BYTES / 1e6:.0f} MB is read as a stream only as JSON lines (one object "
                            "a line)")
    text = _decoded(path, path.read_bytes().removeprefix(b"\xef\xbb\xbf"), 1)
    try:
        items = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{path}: not a valid JSON array ({exc.msg} at line {exc.lineno})") from None
    for n, record in enumerate(items, start=1):
        yield n, record if isinstance(record, dict) else f"a row is a JSON object, not {type(record).__name__}"



def _json_records(path: Path):
    """JSON lines."""
    for line, raw in _lines(path):
        if raw is None:
            yield line, TOO_LONG
            continue
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as exc:
            yield line, f"not valid JSON ({exc.msg} at column {exc.colno})"
            continue
        yield line, record if isinstance(record, dict) else f"a row is a JSON object, not {type(record).__name__}"


def _csv_records(path: Path, delimiter: str, url_column: str = "url"):
    skipped: list[int] = []  # lines too long to read: csv sees them as blank lines, and they are reported

    def lines() -> Iterator[str]:
        for line, raw in _lines(path):
            if raw is None:
                skipped.append(line)
            yield "\n" if raw is None else raw

    reader = csv.DictReader(lines(), delimiter=delimiter, restkey=_EXTRA)
    try:
        header = [name.strip().lower() for name in reader.fieldnames or []]
        if url_column.lower() not in header:
            raise ManifestError(f"{path}: the header row needs a {url_column!r} column (has: "
                                f"{', '.join(header) or 'nothing'})")
        reader.fieldnames = header
        for record in reader:
            while skipped:
                line = skipped.pop(0)
                yield line, TOO_LONG
            line = reader.line_num
            if record.get(_EXTRA):
                yield line, f"{len(header) + len(record[_EXTRA])} fields where the header has {len(header)}"
            elif any(value is None for value in record.values()):
                yield line, f"{sum(v is not None for v in record.values())} fields where the header has {len(header)}"
            else:
                yield line, record
    except csv.Error as exc:
        raise ManifestError(f"{path}: line {reader.line_num}: not valid CSV ({exc})") from None
    for line in skipped:
        yield line, TOO_LONG


def _text(record: dict, name: str) -> str:
    value = record.get(name)
    if value is None:
        return ""
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise ValueError(f"{name} must be text, not {type(value).__name__}")
    if isinstance(value, str) and len(value) > MAX_FIELD:
        raise ValueError(f"{name} is {len(value):,} characters long (at most {MAX_FIELD:,})")
    return " ".join(str(value).split())


def _check_url(name: str, url: str, allow_file_urls: bool) -> None:
    if not is_web_url(url, allow_file_urls):
        schemes = ("http", "https", "file") if allow_file_urls else ("http", "https")
        raise ValueError(f"{name} {url!r} is not an {'/'.join(schemes)} URL")


def _local_path(url: str, folder: Path) -> Path | None:
    """The local file a row's url names (None for a URL with a scheme); a path outside the manifest's folder is
    a bad row."""
    if urlsplit(url).scheme:
        return None
    path = Path(url).expanduser()
    path = path if path.is_absolute() else folder / path
    if not inside(path, str(folder)):
        raise ValueError(f"url {url!r} is a local path outside the manifest's folder {folder.absolute()}")
    return path


def has_local_rows(manifest: Manifest) -> bool:
    return any(row.video.extractor == LOCAL_FILE for row in manifest.rows)


def _row(line: int, record: dict, allow_file_urls: bool, folder: Path) -> ManifestRow:
    url = _text(record, "url")
    if not url:
        raise ValueError("no url")
    local = _local_path(url, folder)
    if local is None:
        _check_url("url", url, allow_file_urls)
    cover_url = _text(record, "cover_url") or None
    if cover_url:
        _check_url("cover_url", cover_url, allow_file_urls)
    label = _text(record, "label") or UNLABELLED
    if len(label) > MAX_LABEL:
        raise ValueError(f"label is {len(label)} characters long (at most {MAX_LABEL})")
    given = _text(record, "id")
    description = _text(record, "description")
    duration = _duration(record.get("duration"))
    if local is not None:
        video = found_file(local, safe_video_id(given) if given else None, _text(record, "title"), description,
                           cover_url)
        return ManifestRow(line, replace(video, duration_s=duration), label)
    video_id = safe_video_id(given) if given else url_video_id(url)
    if not video_id:
        raise ValueError(f"no video id: give the row an id (none follows from {url!r})")
    title = _text(record, "title") or description[:120] or video_id
    return ManifestRow(line, FoundVideo(id=video_id, url=url, title=title, description=description,
                                        duration_s=duration, cover_url=cover_url), label)


def _duration(value: object) -> float | None:
    """A row's known duration, for the pre-download filter: seconds, or [[H:]M:]S as the short-video dataset's
    `mp4_time` ("0:16", "1:02:03"); none is unknown."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
        return float(value)
    if isinstance(value, str) and re.fullmatch(r"\d+(:[0-5]?\d){0,2}(\.\d+)?", value.strip()):
        seconds = 0.0
        for part in value.strip().split(":"):
            seconds = seconds * 60 + float(part)
        return seconds
    raise ValueError(f"duration {value!r} is not seconds or [[H:]M:]S")


def url_video_id(url: str) -> str:
    """The id yt-dlp gives a URL without fetching it: a site's own id where an extractor knows the URL, else, as
    yt-dlp's generic extractor does, the file name without its extension."""
    import os
    import urllib.parse

    from yt_dlp.utils import url_basename

    stem, suffix = os.path.splitext(urllib.parse.unquote(url_basename(url)))
    if suffix.lower() not in MEDIA_SUFFIXES:  # a page: a site's extractor may know its id (a direct file: no need)
        netloc = urllib.parse.urlsplit(url).netloc
        for extractor in _extractors_for(url[:url.find(netloc) + len(netloc)] if netloc else url):
            if extractor.suitable(url):
                temp_id = extractor.get_temp_id(url)
                if temp_id:
                    return safe_video_id(str(temp_id))
                break
    return safe_video_id(stem)


@functools.lru_cache(maxsize=1)
def _site_extractors() -> tuple:
    from yt_dlp.extractor import gen_extractor_classes

    return tuple(e for e in gen_extractor_classes() if e.ie_key() != "Generic")


@functools.lru_cache(maxsize=1024)
def _extractors_for(origin: str) -> tuple:
    """The site extractors that may know a URL beginning with `origin` (scheme://host[:port]): those whose URL
    pattern matches the origin at least partially (the `regex` module's partial matching: the origin could begin
    a match), and those that decide by code of their own. Asking all ~1,750 of every page URL took 5-20 ms a row;
    asked once per host, a row costs the few that remain."""
    import regex
    from yt_dlp.extractor.common import InfoExtractor
    from yt_dlp.extractor.lazy_extractors import LazyLoadExtractor

    plain = {InfoExtractor.suitable.__func__, LazyLoadExtractor.suitable.__func__}
    candidates = []
    for extractor in _site_extractors():
        patterns = extractor._VALID_URL
        patterns = [patterns] if isinstance(patterns, str) else list(patterns or [])
        try:
            possible = any(regex.match(p, origin, partial=True) for p in patterns)
        except regex.error:  # a pattern only Python's re reads: asked
            possible = True
        if possible or extractor.suitable.__func__ not in plain:
            candidates.append(extractor)
    return tuple(candidates)


def manifest_path(subject_yaml: Path, doc: dict) -> Path | None:
    """The manifest a subject YAML names, resolved against the YAML's folder; None for a searched subject."""
    value = doc.get("manifest")
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ManifestError(f"{subject_yaml}: 'manifest' must be a file path")
    path = Path(value.strip()).expanduser()
    return path if path.is_absolute() else subject_yaml.parent / path
