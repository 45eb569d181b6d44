"""A release as a folder laid out like the published dataset, which the paper's training loader reads as it is.

    lectern export demo /data/textbook            # from the store of LECTERN_STORE_URL (local or S3)
    lectern export demo /data/textbook --layout shards
    lectern reroot /data/textbook                  # after moving the folder: image paths follow it

writes::

    multimodal_textbook.json                       a JSON array of samples (--layout json, the default), or
    multimodal_textbook/                           JSONL shards + length.json + shard_id_range.json (--layout shards)
    dataset_images_interval_7/{vid}/{vid}@{start}_{end}#{n}.jpg
    video_meta_data/video_meta_data1.json          a JSON array of per-video records
    multimodal_textbook_meta_data.json             the clip-level records, one per sample, with End-of-a-Video markers
    multimodal_textbook_face_v1_th{T}.json         the samples without face keyframes (with a face filter)
    export.json                                    what was written, and the image root the paths start with
    export-images.txt                              every image an export wrote here (what a later export may remove)

An export writes only into an empty folder or one an earlier export wrote (it has ``export.json``); ``--force``
writes into another folder beside what is there. Exporting again removes only what an earlier export recorded
(images the release no longer holds, shards it no longer has), never a file of anyone else's. It refuses ``/`` and
the home folder, and a second export into a folder while one is writing there.

Image paths are absolute (the loader joins them to a folder of its own, which an absolute path overrides).

``--layout webdataset`` writes WebDataset tar shards instead (``{release}-NNNNN.tar``): each sample as
``{key}.json`` with its keyframes beside it as ``{key}.{n}.jpg`` (n: the image's position in the sample).
``--layout parquet`` writes Parquet shards with each image's bytes inside (``{release}-NNNNN.parquet``) and a
dataset card: one folder that moves as it is, which ``datasets.load_dataset(<folder>)`` reads with the images
decoded.

A pairs release exports in InternVid's column layout instead (``--layout internvid``): ``internvid.jsonl``, one
clip a line, ``{"YoutubeID", "Start_timestamp", "End_timestamp", "Caption", "Aesthetic_Score", "<Model>_Score"}``
with timestamps as ``HH:MM:SS.mmm``; the similarity column is named for the model that scored it (``UMT_Score``
only for a UMT; ``CLIP_Score`` for a CLIP).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Iterable, Iterator

from lectern.arrays import ArrayWriter, read_values, write_array
from lectern.release import CLIP_LEVEL, dataset_card, shard_index
from lectern.store import Keys, Store, replace_atomically

IMAGES = "dataset_images_interval_7"
SAMPLES = "multimodal_textbook"
VIDEO_META = "video_meta_data/video_meta_data1.json"
EXPORT_INFO = "export.json"
WEBDATASET = "webdataset"
PARQUET = "parquet"
LAYOUTS = ("json", "shards", WEBDATASET, PARQUET)  # of a textbook release; a pairs release exports as INTERNVID
INTERNVID = "internvid"
INTERNVID_FILE = "internvid.jsonl"
INDEX_FILES = ("length.json", "shard_id_range.json")
IMAGE_FIELDS = ("keyframe_ssim", "ocr_image", "face_keyframes")  # a clip-level record's image paths
IMAGE_LIST = "export-images.txt"
LOCK = ".export.lock"
ROW_GROUP_SAMPLES = 100  # samples a Parquet row group holds: their images' bytes are in memory together
# The Parquet layout's columns as Hugging Face `datasets` features (kept in the file's schema metadata): `images`
# decode to pictures.
PARQUET_FEATURES = {
    "images": {"feature": {"_type": "Image"}, "_type": "Sequence"},
    **{name: {"feature": {"dtype": "string", "_type": "Value"}, "_type": "Sequence"}
       for name in ("texts", "text_ocr_list")},
    "metadata": {"dtype": "string", "_type": "Value"},
    **{name: {"dtype": dtype, "_type": "Value"}
       for name, dtype in (("image_num", "int32"), ("text_num", "int32"), ("token_num", "int64"))},
}


class ExportRefused(ValueError):
    """The folder is not one to export into (/, the home folder, someone else's files, another export at work)."""


@contextlib.contextmanager
def export_folder(destination: str | Path, force: bool = False) -> Iterator[Path]:
    """The export's folder, resolved, created, and locked against a second export while this one writes. Refused:
    `/`, the home folder, and (unless `force`) a folder that holds files but no export.json of an earlier export."""
    root = Path(destination).expanduser().resolve()
    if root == Path(root.anchor) or root == Path.home().resolve():
        raise ExportRefused(f"{root} is {'the root folder' if root == Path(root.anchor) else 'your home folder'}: "
                            "export into a folder of its own")
    if root.exists() and not root.is_dir():
        raise ExportRefused(f"{root} is a file, not a folder")
    if (not force and root.is_dir() and not (root / EXPORT_INFO).exists()
            and any(p.name != LOCK for p in root.iterdir())):
        raise ExportRefused(f"{root} holds files that no export of Lectern's wrote (no {EXPORT_INFO}); export into an "
                            "empty folder, or pass --force to write beside them (none of them is removed; files of "
                            "the same name are replaced)")
    root.mkdir(parents=True, exist_ok=True)
    with open(root / LOCK, "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ExportRefused(f"another export is writing into {root}; wait for it to end") from None
        if not (root / EXPORT_INFO).exists():  # the folder is an export's from now on, even if this one is killed
            _write(root / EXPORT_INFO, json.dumps({"files": [], "writing": True}, indent=1).encode())
        yield root


def recorded(root: Path) -> dict:
    """What the export in `root` recorded (export.json; {"files": []} where there is none), its file names kept
    only where they lie inside."""
    try:
        info = json.loads((root / EXPORT_INFO).read_text())
    except (OSError, ValueError):
        return {"files": []}
    info["files"] = [name for name in info.get("files", []) if _within(root, name)]
    return info


def _images_of(root: Path) -> set[str]:
    """The images an export made before export-images.txt existed recorded in its sample files (export.json names
    them): what a re-export may remove."""
    info = recorded(root)
    images_root = info.get("images_root")
    found: set[str] = set()
    for name in info["files"]:
        if not images_root or not name.startswith(SAMPLES) or not (root / name).is_file():
            continue
        found.update(path[len(images_root) + 1:] for sample in read_values(root / name)
                     for path in sample.get("images", [])
                     if isinstance(path, str) and path.startswith(images_root + "/"))
    return {f"{IMAGES}/{path}" for path in found}


def _within(root: Path, name: object) -> bool:
    return isinstance(name, str) and not Path(name).is_absolute() and (root / name).resolve().is_relative_to(root)


class _ImageJournal:
    """export-images.txt: every image an export wrote here and no export removed yet. Images are added as they are
    written (so a killed export's are known too); `finish` removes the recorded ones this export did not write.
    Both sets live in a temporary SQLite file, not in memory: an export of the paper's 6.5M keyframes holds them."""

    def __init__(self, root: Path):
        self.root, self.path = root, root / IMAGE_LIST
        self.sets = sqlite3.connect("")  # "": a private database on disk, deleted when closed
        self.sets.executescript("CREATE TABLE before (name TEXT PRIMARY KEY) WITHOUT ROWID;"
                                "CREATE TABLE written (name TEXT PRIMARY KEY) WITHOUT ROWID;")
        before = _text_lines(self.path) if self.path.exists() else _images_of(root)
        self.sets.executemany("INSERT OR IGNORE INTO before VALUES (?)", ((name,) for name in before))
        self.handle = open(self.path, "a", encoding="utf-8")

    def add(self, names: Iterable[str]) -> None:
        """Images about to be written (relative names)."""
        for name in names:
            new = self.sets.execute("INSERT OR IGNORE INTO written VALUES (?)", (name,)).rowcount
            if new and self.sets.execute("SELECT 1 FROM before WHERE name = ?", (name,)).fetchone() is None:
                self.handle.write(name + "\n")
        self.handle.flush()

    @property
    def count(self) -> int:
        return self.sets.execute("SELECT count(*) FROM written").fetchone()[0]

    def finish(self) -> int:
        self.handle.close()
        stale = 0
        for (name,) in self.sets.execute("SELECT name FROM before WHERE name NOT IN (SELECT name FROM written)"):
            if _within(self.root, name):
                (self.root / name).unlink(missing_ok=True)
                with contextlib.suppress(OSError):  # the video's folder, once empty
                    (self.root / name).parent.rmdir()
                stale += 1
        with _AtomicFile(self.path) as handle:
            handle.writelines(name + "\n" for (name,) in self.sets.execute("SELECT name FROM written ORDER BY name"))
        self.sets.close()
        return stale


def _text_lines(path: Path) -> Iterator[str]:
    with open(path, encoding="utf-8") as handle:
        yield from (line.rstrip("\n") for line in handle if line.strip())


def image_name(key: str) -> str:
    """A keyframe's path in the image folder, as published: `{vid}/{vid}@{start}_{end}#{n}.jpg` (video ids hold
    no '@')."""
    name = key.rsplit("/", 1)[-1]
    return f"{name.split('@', 1)[0]}/{name}"


class _AtomicFile:
    """Written in full or not at all: a reader never sees half a file, an interrupted export leaves the old one."""

    def __init__(self, path: Path):
        self.path = path
        self.temporary = path.with_name(f".{path.name}.{os.getpid()}.partial")

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.handle = open(self.temporary, "w", encoding="utf-8")
        return self.handle

    def __exit__(self, kind, *_):
        self.handle.close()
        if kind is None:
            os.replace(self.temporary, self.path)
        else:
            self.temporary.unlink(missing_ok=True)


def _write(path: Path, data: bytes) -> None:
    replace_atomically(path, lambda temporary: temporary.write_bytes(data))


def _write_array(path: Path, values) -> int:
    """A JSON array, one value a line (lectern.arrays), streamed; returns how many values."""
    with _AtomicFile(path) as handle:
        return write_array(handle, values)


def _write_jsonl(path: Path, values) -> int:
    count = 0
    with _AtomicFile(path) as handle:
        for value in values:
            handle.write(json.dumps(value, ensure_ascii=False) + "\n")
            count += 1
    return count


def _lines(store: Store, key: str) -> list[dict]:
    return [json.loads(line) for line in store.get_bytes(key).decode().splitlines() if line.strip()]


def timestamp(seconds: float) -> str:
    """Seconds as InternVid writes a clip's bounds: HH:MM:SS.mmm."""
    millis = round(seconds * 1000)
    return f"{millis // 3_600_000:02d}:{millis // 60_000 % 60:02d}:{millis // 1000 % 60:02d}.{millis % 1000:03d}"


def score_column(model: str | None) -> str:
    """The similarity column's name, for the model family that computed it (its id or path says which)."""
    name = Path(model or "").name.lower()
    for family, column in (("umt", "UMT_Score"), ("viclip", "ViCLIP_Score"), ("siglip", "SigLIP_Score"),
                           ("clip", "CLIP_Score")):
        if family in name:
            return column
    return "Similarity_Score"


def export_internvid(store: Store, release: str, destination: str | Path, force: bool = False) -> dict:
    """A pairs release as InternVid's JSON lines at `destination`/internvid.jsonl; returns what export.json records."""
    manifest = _manifest(store, release)
    if manifest.get("kind") != "pairs":
        raise ValueError(f"release {release!r} is a {manifest.get('kind', 'textbook')} release: the internvid layout "
                         "is for pairs releases")
    model = _score_model(manifest)
    score = score_column(model)
    with export_folder(destination, force) as root:
        return _export_internvid(store, release, manifest, root, model, score)


def _export_internvid(store: Store, release: str, manifest: dict, root: Path, model: str | None, score: str) -> dict:

    def rows() -> Iterator[dict]:
        for key in manifest["shards"]:
            for pair in _lines(store, key):
                yield {"YoutubeID": pair["video_id"], "Start_timestamp": timestamp(pair["clip_start"]),
                       "End_timestamp": timestamp(pair["clip_end"]), "Caption": pair["caption"],
                       "Aesthetic_Score": pair["aesthetic"], score: pair["clip_similarity"]}

    count = _write_jsonl(root / INTERNVID_FILE, rows())
    info = {"release": release, "store": store.url, "layout": INTERNVID, "pairs": count, "score_column": score,
            "score_model": model, "files": [INTERNVID_FILE]}
    _finish(store, root, info)
    return info


def _score_model(manifest: dict) -> str | None:
    """The model that scored the release's pairs, from the settings behind its captions' versions (a manifest
    written before releases recorded each version's settings has one {"version", "settings"})."""
    configs = manifest["stage_configs"]["caption"]
    if set(configs) == {"version", "settings"}:
        configs = {configs["version"]: configs["settings"]}
    models = sorted({(config or {}).get("caption_score_model") for config in configs.values()} - {None})
    if len(models) > 1:
        raise ValueError(f"release {manifest['release']!r} holds pairs scored by {', '.join(models)}: one score "
                         "column cannot name them; rerun caption (stale_only) and release again")
    return models[0] if models else None


def _manifest(store: Store, release: str) -> dict:
    key = Keys.release(release, "manifest.json")
    if not store.exists(key):
        raise FileNotFoundError(f"no release {release!r} in {store.url}")
    return store.get_json(key)


def export_release(store: Store, release: str, destination: str | Path, layout: str = "json",
                   progress=print, force: bool = False) -> dict:
    """Write the release's loader folder at `destination`; returns what export.json records. Exporting again into
    the same folder refreshes it: every image is copied anew, and what an earlier export wrote that the release no
    longer holds (a video taken down, say) is removed."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, not {layout!r}")
    manifest = _manifest(store, release)
    if manifest.get("kind", "textbook") != "textbook":
        raise ValueError(f"release {release!r} is a {manifest['kind']} release: it exports with --layout "
                         f"{INTERNVID}")
    with export_folder(destination, force) as root, \
            ThreadPoolExecutor(store.parallel_reads, thread_name_prefix="lectern-export") as pool:
        if layout == WEBDATASET:
            return _export_webdataset(store, release, manifest, root, progress, pool)
        if layout == PARQUET:
            return _export_parquet(store, release, manifest, root, progress, pool)
        return _export_release(store, release, manifest, root, layout, progress, pool)


def _export_webdataset(store: Store, release: str, manifest: dict, root: Path, progress,
                       pool: ThreadPoolExecutor) -> dict:
    """WebDataset tar shards, one per release shard, as OBELICS, MINT-1T and video2dataset ship: each sample is
    ``{key}.json`` (the sample, each image position naming its member, ``{n}.jpg``) and ``{key}.{n}.jpg`` for the
    image at position n. Nothing outside the tars refers to a path: the folder moves as it is."""
    files, images, total = [], 0, 0
    for n, shard_key in enumerate(manifest["shards"]):
        name = f"{release}-{n:05d}.tar"
        with _AtomicTar(root / name) as tar:
            for sample in _lines(store, shard_key):
                key = f"{release}_{total:09d}"
                total += 1
                members = [f"{i}.jpg" if image else None for i, image in enumerate(sample["images"])]
                for member, data in zip([m for m in members if m], pool.map(store.get_bytes, filter(None,
                                                                                                   sample["images"]))):
                    _add_member(tar, f"{key}.{member}", data)
                    images += 1
                _add_member(tar, f"{key}.json", json.dumps({**sample, "images": members}, ensure_ascii=False).encode())
        files.append(name)
        progress(f"export {release}: shard {n + 1}/{len(manifest['shards'])}, {images} images")
    info = {"release": release, "store": store.url, "layout": WEBDATASET, "samples": total, "images": images,
            "packing": manifest.get("packing"), "files": files}
    _finish(store, root, info)
    return info


def _export_parquet(store: Store, release: str, manifest: dict, root: Path, progress,
                    pool: ThreadPoolExecutor) -> dict:
    """Parquet shards, one per release shard, each image as {bytes, path} (Hugging Face's Image) in the `images`
    column, written ROW_GROUP_SAMPLES samples a row group; and a dataset card naming them."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from lectern.release import samples_table

    image_type = pa.list_(pa.struct([("bytes", pa.binary()), ("path", pa.string())]))
    features = {b"huggingface": json.dumps({"info": {"features": PARQUET_FEATURES}}).encode()}
    files, images, total = [], 0, 0

    def row_groups(shard: list[dict]) -> Iterator:
        nonlocal images
        for begin in range(0, max(len(shard), 1), ROW_GROUP_SAMPLES):
            samples = shard[begin:begin + ROW_GROUP_SAMPLES]
            keys = [k for sample in samples for k in sample["images"] if k]
            data = dict(zip(keys, pool.map(store.get_bytes, keys)))
            column = pa.array([[{"bytes": data[k], "path": image_name(k)} if k else None for k in sample["images"]]
                               for sample in samples], image_type)
            images += len(keys)
            yield samples_table(samples, column).replace_schema_metadata(features)

    def write_shard(path: Path, *, shard: list[dict]) -> None:
        with contextlib.ExitStack() as closing:
            writer = None
            for table in row_groups(shard):
                writer = writer or closing.enter_context(pq.ParquetWriter(path, table.schema))
                writer.write_table(table)

    for n, shard_key in enumerate(manifest["shards"]):
        files.append(f"{release}-{n:05d}.parquet")
        shard = _lines(store, shard_key)
        replace_atomically(root / files[-1], partial(write_shard, shard=shard))
        total += len(shard)
        progress(f"export {release}: shard {n + 1}/{len(manifest['shards'])}, {images} images")
    _write(root / "README.md", dataset_card(manifest, f"{release}-*.parquet", (
        "Each sample's images are inside its row, as Hugging Face Image values (bytes and a path): this folder "
        f"moves as it is. Exported from {manifest['store']} by `lectern export --layout parquet`.")))
    info = {"release": release, "store": store.url, "layout": PARQUET, "samples": total, "images": images,
            "packing": manifest.get("packing"), "files": [*files, "README.md"]}
    _finish(store, root, info)
    return info


class _AtomicTar(_AtomicFile):
    def __enter__(self):
        import tarfile

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.handle = tarfile.open(self.temporary, "w", format=tarfile.PAX_FORMAT)
        return self.handle


def _add_member(tar, name: str, data: bytes) -> None:
    import io
    import tarfile

    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), 0o644  # mtime 0: the same release exports to the same bytes
    tar.addfile(info, io.BytesIO(data))


def _export_release(store: Store, release: str, manifest: dict, root: Path, layout: str, progress,
                    pool: ThreadPoolExecutor) -> dict:
    """One pass over the release's shards, each sample shard with its clip-level shard (line for line): their
    images copied out, then the samples, their clip-level records and (with a face filter) the samples without
    face keyframes written on, each shard dropped before the next is read."""
    images_root = root / IMAGES
    journal = _ImageJournal(root)
    threshold = (manifest.get("packing") or {}).get("face_max_area")
    face_file = f"{SAMPLES}_face_v1_th{threshold:g}.json" if threshold is not None else None
    faces = 0

    prefix = f"{images_root}/"  # paths as strings, not Paths: four an image at 75K videos added up to minutes

    def copied(samples: list[dict], records: list[dict]) -> None:
        """The shard's paths made local, and its images copied out, the store's parallel_reads at a time (hard links
        from a local store)."""
        names: dict[str, str] = {}  # key -> its name in the image folder, worked out once

        def noted(key: str) -> str:
            name = names.get(key) or names.setdefault(key, image_name(key))
            return prefix + name

        for value in (*samples, *records):
            _rewrite_images(value, noted)
        journal.add(f"{IMAGES}/{name}" for name in names.values())
        keys = list(names)
        # A few tasks a thread, not one an image: a future an image cost more than a hard link does.
        size = max(1, -(-len(keys) // (store.parallel_reads * 4)))

        def copy_out(chunk: list[str]) -> None:
            for key in chunk:
                store.copy_out(key, Path(prefix + names[key]))

        list(pool.map(copy_out, (keys[begin:begin + size] for begin in range(0, len(keys), size))))

    with contextlib.ExitStack() as files_open:
        clip_level = files_open.enter_context(ArrayWriter(files_open.enter_context(
            _AtomicFile(root / f"{CLIP_LEVEL}.json"))))
        without_faces = (files_open.enter_context(ArrayWriter(files_open.enter_context(_AtomicFile(root / face_file))))
                         if face_file else None)

        def shards() -> Iterator[list[dict]]:
            nonlocal faces
            shard_pairs = zip(manifest["shards"], manifest["clip_level_shards"], strict=True)
            for n, (samples_key, records_key) in enumerate(shard_pairs):
                samples, records = _lines(store, samples_key), _lines(store, records_key)
                copied(samples, records)
                for record in records:
                    clip_level.add(record)
                if without_faces is not None:
                    dropped = {p for record in records for clip in record["conversations"]
                               for p in clip.get("face_keyframes", [])}
                    faces += len(dropped)
                    for sample in samples:
                        if (kept := without_images(sample, dropped))["image_num"]:
                            without_faces.add(kept)
                yield samples
                progress(f"export {release}: shard {n + 1}/{len(manifest['shards'])}, {journal.count} images")

        files = write_samples(root, shards(), layout)
    store.copy_out(manifest["video_meta_data"], root / VIDEO_META)  # one value a line already (lectern.arrays)
    files += [f"{CLIP_LEVEL}.json", VIDEO_META, *([face_file] if face_file else [])]
    images = journal.count
    removed = journal.finish()
    if removed:
        progress(f"export {release}: {removed} images an earlier export wrote, no longer in the release, removed")
    info = {"release": release, "store": store.url, "layout": layout, "images_root": str(images_root),
            "samples": manifest["stats"]["samples"], "images": images, "clip_level_records": clip_level.count,
            "face_keyframes": faces, "packing": manifest.get("packing"), "files": files}
    _finish(store, root, info)
    return info


def _rewrite_images(value: dict, change) -> dict:
    """A sample's or a clip-level record's image paths, each passed through `change` (a sample's text positions,
    None, kept as they are)."""
    if "images" in value:
        value["images"] = [change(p) if p else p for p in value["images"]]
    for clip in value.get("conversations", []):
        for field in IMAGE_FIELDS:
            if field in clip:
                clip[field] = [change(p) for p in clip[field]]
    return value


def _finish(store: Store, root: Path, info: dict) -> None:
    """Record the export (export.json), after removing the files the earlier one wrote that this one did not, and
    note the folder in the store, where a takedown finds every export of the release (lectern.takedown)."""
    for name in set(recorded(root)["files"]) - set(info["files"]):
        (root / name).unlink(missing_ok=True)
    _write(root / EXPORT_INFO, json.dumps(info, indent=1).encode())
    known = recorded_exports(store, info["release"])
    entry = {"host": socket.gethostname(), "folder": str(root), "layout": info["layout"]}
    if entry not in known:
        store.put_json(Keys.exports(info["release"]), [*known, entry])


def recorded_exports(store: Store, release: str) -> list[dict]:
    """The exports of a release noted in the store: {"host", "folder", "layout"} each."""
    key = Keys.exports(release)
    return store.get_json(key) if store.exists(key) else []


def write_samples(root: Path, shards, layout: str) -> list[str]:
    """The samples as one JSON array, or as JSONL shards indexed by length.json and shard_id_range.json."""
    if layout == "json":
        _write_array(root / f"{SAMPLES}.json", (s for shard in shards for s in shard))
        return [f"{SAMPLES}.json"]
    folder = root / SAMPLES
    names, sizes = [], []
    for n, shard in enumerate(shards):
        names.append(f"{n:05d}.jsonl")
        sizes.append(_write_jsonl(folder / names[-1], shard))
    for name, index in zip(INDEX_FILES, shard_index(names, sizes)):
        _write(folder / name, json.dumps(index, indent=1).encode())
    return [f"{SAMPLES}/{name}" for name in (*names, *INDEX_FILES)]


def without_images(sample: dict, dropped: set[str]) -> dict:
    """The sample less the image positions in `dropped` (the face-filtered variant); counts follow."""
    keep = [i for i, image in enumerate(sample["images"]) if image not in dropped]
    out = {field: [sample[field][i] for i in keep] for field in ("images", "texts", "text_ocr_list", "metadata")}
    removed = len(sample["images"]) - len(keep)
    image_tokens = (sample["token_num"] - sample["text_num"]) // max(sample["image_num"], 1)
    return {**sample, **out, "image_num": sample["image_num"] - removed,
            "token_num": sample["token_num"] - removed * image_tokens}


def reroot(root: str | Path) -> dict:
    """After the folder moved: every image path now starts at this folder's own image directory."""
    root = Path(root).resolve()
    info = json.loads((root / EXPORT_INFO).read_text())
    old, new = info["images_root"], str(root / IMAGES)
    if old == new:
        return info

    def moved(path):
        return new + path[len(old):] if isinstance(path, str) and path.startswith(old + "/") else path

    for name in info["files"]:
        if not _within(root, name):
            raise ValueError(f"{root / EXPORT_INFO} names {name!r}, which is not inside {root}: nothing rewritten")
    for name in info["files"]:
        path = root / name
        if path.name in INDEX_FILES:
            continue
        if not name.endswith(".jsonl") and not (name.endswith(".json") and name.startswith(SAMPLES)):
            continue
        (_write_jsonl if name.endswith(".jsonl") else _write_array)(
            path, (_rewrite_images(value, moved) for value in read_values(path)))
    info["images_root"] = new
    _write(root / EXPORT_INFO, json.dumps(info, indent=1).encode())
    return info
