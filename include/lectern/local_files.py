"""Local video files as a source: a knowledge point's ``videos_dir:`` (a folder, read with its sub-folders, or a
glob) and a manifest row whose ``url`` is a path. The files are read where they are: no HTTP server, no yt-dlp.
The download stage (lectern.stages.download.run.local_source) probes and stores them with the same ffprobe checks, error
classes and per-video state as a download, and reads a file only inside the folders the subject names (its points'
``videos_dir``, or the folder of its manifest): a path that leads elsewhere, through a symbolic link or ``..``, is
refused (urls.inside).

A file's video id is its file name without the extension (``safe_video_id``); a second file of the same name, in
another folder, gets a short hash of its path added (lectern.state.catalog.record_search), so both stay videos."""

from __future__ import annotations

import glob
import logging
import os
from pathlib import Path

from lectern.stages.download.urls import glob_base, is_glob
from lectern.state.catalog import FoundVideo
from lectern.store import safe_video_id

log = logging.getLogger("lectern")
LOCAL_FILE = "local file"  # the extractor of a found video that is a file read where it is
# What a folder's files are taken as videos by: containers of video or sound (an audio-only file is rejected by the
# download stage, with why). Other files (slides, subtitles, notes) are left out, and logged.
MEDIA_SUFFIXES = frozenset(".mp4 .m4v .mov .webm .mkv .avi .flv .ts .mts .mpg .mpeg .wmv .3gp .ogv "
                           ".m4a .mp3 .wav .aac .ogg .opus .flac".split())


def resolve_root(value: str, base: Path) -> str:
    """A `videos_dir` as written in a subject YAML (``~`` expanded, relative to the YAML's folder), absolute."""
    return os.path.abspath(base / Path(value).expanduser())  # an absolute value stays itself


def media_files(root: str) -> list[Path]:
    """The media files of a folder (its sub-folders too, hidden ones left out) or of a glob, sorted; others are
    logged as left out, and so are links that lead outside the folder (or the glob's base folder): the download
    stage would refuse them (urls.inside). A folder that does not exist is an error the user sees at
    discovery."""
    if is_glob(root):
        candidates = [Path(p) for p in glob.glob(root, recursive=True)]
        base = glob_base(root).resolve()
    elif Path(root).is_dir():
        candidates = [p for p in Path(root).rglob("*")
                      if not any(part.startswith(".") for part in p.relative_to(root).parts)]
        base = Path(root).resolve()
    else:
        raise FileNotFoundError(f"videos_dir {root}: no such folder")
    files, outside = [], []
    for path in sorted(p for p in candidates if p.is_file()):
        (files if path.resolve().is_relative_to(base) else outside).append(path)
    if outside:
        log.warning("videos_dir %s: %d files left out, links that lead outside %s: %s%s", root, len(outside), base,
                    ", ".join(p.name for p in outside[:10]), " ..." if len(outside) > 10 else "")
    media = [p for p in files if p.suffix.lower() in MEDIA_SUFFIXES]
    others = [p.name for p in files if p.suffix.lower() not in MEDIA_SUFFIXES]
    if others:
        log.info("videos_dir %s: %d files left out (not video or audio by their extension): %s%s", root, len(others),
                 ", ".join(others[:10]), " ..." if len(others) > 10 else "")
    return media


def found_file(path: Path, video_id: str | None = None, title: str = "", description: str = "",
               cover_url: str | None = None) -> FoundVideo:
    """A local file as a found video. With no title, its title is its file name: unknown metadata, which the
    pre-download filter never rejects on (lectern.stages.download.prefilter.known_title)."""
    path = path.absolute()
    return FoundVideo(id=video_id or safe_video_id(path.stem), url=path.as_uri(), title=title or path.stem,
                      description=description, extractor=LOCAL_FILE, cover_url=cover_url)


def list_folder(root: str) -> list[FoundVideo]:
    return [found_file(path) for path in media_files(root)]
