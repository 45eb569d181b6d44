"""Releases: every assembled video's clips packed into samples, in shards under ``releases/{name}/`` (JSONL in the
published layout with the loader's ``length.json`` / ``shard_id_range.json``, the clip-level records beside them, and
the same samples as Parquet under ``parquet/``, which ``datasets.load_dataset`` reads), every video's metadata, and
a manifest (stats, packing, per-video lineage, the settings behind each stage version, the diff against the previous
release). ``lectern.export`` lays a release out as a folder the paper's training loader reads."""

from __future__ import annotations

import dataclasses
import json
import logging
import tempfile
from datetime import datetime, timezone
from itertools import accumulate, groupby
from operator import attrgetter
from pathlib import Path
from typing import Iterable

from sqlalchemy import select

from lectern.arrays import write_array
from lectern.config import Settings
from lectern.packing import END_OF_VIDEO, clip_level_record, pack, tokenizer_name
from lectern.packing import sample as packed_sample
from lectern.pipeline import artifact_key, stage_config, stage_version
from lectern.recipes import RECIPES
from lectern.state.db import session_scope
from lectern.state.models import SUCCEEDED, KnowledgePoint, Subject, Video, VideoSource, VideoStage
from lectern.state.queries import scoped
from lectern.state.reports import (
    funnel,
    in_stage_order,
    iter_stage_rows,
    stage_rows,
    subject_recipe,
    video_record,
)
from lectern.stats import (
    category_table,
    cost_table,
    funnel_table,
    histogram_png,
    markdown,
    pairs_markdown,
    subject_table,
)
from lectern.store import Keys, store_from_settings
from lectern.viewer import render_samples

log = logging.getLogger("lectern")
SHARD_SAMPLES = 1000
TEXTBOOK, PAIRS = RECIPES["textbook"], RECIPES["pairs"]  # the recipes behind the two kinds of release
VIEWER_SAMPLES = 50  # the first samples of a release, in viewer.html
CLIP_LEVEL = "multimodal_textbook_meta_data"  # the clip-level shards' name, as published
# A manifest's `packing` -> the setting behind it (and `tokenizer`, the one its tokens were counted with).
PACKING = {"mode": "sample_packing", "token_budget": "sample_token_budget", "max_images": "sample_max_images",
           "image_tokens": "image_tokens", "face_max_area": "face_max_area"}


def default_release_name() -> str:
    return datetime.now(timezone.utc).strftime("r%Y%m%d-%H%M%S")


def build_release(settings: Settings, name: str | None = None, subject: str | None = None,
                  only: set[str] | None = None, taken_down: list[str] | None = None) -> dict:
    """Write shards, manifest, stats and viewer for the videos whose assemble succeeded; returns the manifest.

    Samples are packed from the videos' clip-level records (LECTERN_SAMPLE_PACKING: across videos, as published,
    or each video alone). Beside each JSONL shard of samples lies the shard of their clip-level records
    (``multimodal_textbook_meta_data-NNNNN.jsonl``, line for line); ``length.json`` and ``shard_id_range.json``
    index the sample shards as the paper's loader reads them, and ``video_meta_data.json`` holds every video's
    record. Image paths are store keys (relative to the manifest's `images_relative_to`); ``lectern export``
    writes the loader's folder with absolute paths. A rebuild (rebuild_release) releases `only` its own videos and
    names those `taken_down` since it was first built."""
    name = name or default_release_name()
    store = store_from_settings(settings)
    released = _gather(settings, subject, only)
    writer = _ShardWriter(store, name)
    left_out: dict = {"text_only_groups": 0, "text_only_tokens": 0}
    for group in _packed_groups(store, released.video_ids, settings, left_out):
        writer.add(packed_sample(group), clip_level_record(group))
    writer.close()
    manifest = _textbook_manifest(store, name, subject, settings, released, writer, left_out)
    manifest["diff"] = release_diff(store, name, subject, released.video_ids, settings)
    if taken_down:
        manifest["taken_down"] = taken_down
    manifest["stats_files"] = _textbook_stats(settings, store, name, released, writer, manifest["stats"])
    manifest["viewer"] = store.put_bytes(Keys.release(name, "viewer.html"),
                                         render_samples(name, writer.viewer_samples).encode())
    manifest["card"] = store.put_bytes(Keys.release(name, "README.md"), dataset_card(manifest, "samples-*.jsonl"))
    return _publish(store, name, manifest)


@dataclasses.dataclass
class _Released:
    """What the state DB says of the videos a textbook release takes (those whose assemble succeeded), in a few
    small values per video: no ORM row outlives the pass over them."""
    video_ids: list[str]
    versions: dict[str, dict[str, str | None]]  # video -> stage -> the version of its result
    seconds: dict[str, dict[str, float | None]]  # video -> stage -> seconds
    spent_seconds: dict[str, float]  # stage -> seconds over every video it ran on, released or not
    assembled: dict[str, dict]  # video -> its assemble metrics
    lineage: dict  # stage -> version -> settings
    counts: dict  # the subject's funnel
    funnel_rows: dict
    durations: dict[str, float | None]
    video_subjects: dict[str, list[str]]
    asr_loops: dict[str, int]  # ASR_LOOP_COUNTS, summed


GATHER_BATCH = 5000  # rows fetched at a time in a release's pass over the state DB


def _gather(settings: Settings, subject: str | None, only: set[str] | None) -> _Released:
    """One pass over the subject's stage rows in video order (columns, not ORM rows, fetched GATHER_BATCH at a
    time), and one query each for assemble metrics, durations and subjects, limited to the released videos by a
    join: no query per video, and no list of video ids bound into a query (SQLite takes at most 32,766)."""
    last = TEXTBOOK.last
    assembled = (VideoStage.stage == last) & (VideoStage.status == SUCCEEDED)

    wanted = (lambda v: True) if only is None else only.__contains__
    with session_scope(settings.db_url) as session:
        columns = scoped(select(VideoStage.video_id, VideoStage.stage, VideoStage.status, VideoStage.version,
                                VideoStage.seconds, VideoStage.reason, VideoStage.error_class), None, subject)
        rows = session.execute(columns.order_by(VideoStage.video_id).execution_options(yield_per=GATHER_BATCH))
        versions: dict[str, dict] = {}
        seconds: dict[str, dict] = {}
        spent: dict[str, float] = {}

        def noting_released(rows):
            for video_id, group in groupby(rows, key=attrgetter("video_id")):
                group = in_stage_order(group)
                yield from group
                for r in group:
                    spent[r.stage] = spent.get(r.stage, 0.0) + (r.seconds or 0.0)
                if wanted(video_id) and any(r.stage == last and r.status == SUCCEEDED for r in group):
                    versions[video_id] = {r.stage: r.version for r in group}
                    seconds[video_id] = {r.stage: r.seconds for r in group}

        funnel_rows = funnel_table(noting_released(rows), TEXTBOOK.stages)
        video_ids = sorted(versions)
        metrics: dict[str, dict] = {}  # what the stats sum: assemble's counts, transcribe's loop guard's
        loops = dict.fromkeys(ASR_LOOP_COUNTS, 0)
        for video_id, stage, measured in session.execute(scoped(
                select(VideoStage.video_id, VideoStage.stage, VideoStage.metrics)
                .where(VideoStage.stage.in_([last, "transcribe"])), None, subject)):
            if video_id not in versions:
                continue
            if stage == last:
                metrics[video_id] = {k: (measured or {}).get(k, 0) for k in ASSEMBLE_COUNTS}
            else:
                for key in ASR_LOOP_COUNTS:
                    loops[key] += (measured or {}).get(key, 0)
        durations = {v: d for v, d in session.execute(scoped(
            select(Video.id, Video.duration_s).join(VideoStage, VideoStage.video_id == Video.id).where(assembled),
            None, subject)) if v in versions}
        subjects: dict[str, dict[str, None]] = {v: {} for v in video_ids}
        links = scoped(select(VideoSource.video_id, Subject.name)
                       .join(KnowledgePoint, VideoSource.point_id == KnowledgePoint.id)
                       .join(Subject, KnowledgePoint.subject_id == Subject.id)
                       .join(VideoStage, VideoStage.video_id == VideoSource.video_id).where(assembled)
                       .order_by(VideoSource.video_id, VideoSource.rank), None, subject)
        for video_id, name in session.execute(links):
            if video_id in subjects:
                subjects[video_id][name] = None
        lineage = stage_configs(session, {(stage, version) for stages in versions.values()
                                          for stage, version in stages.items()}, TEXTBOOK.stages, settings)
        return _Released(video_ids, versions, seconds, spent, metrics, lineage, funnel(session, subject), funnel_rows,
                         durations, {v: list(names) for v, names in subjects.items()}, loops)


ASSEMBLE_COUNTS = ("clips", "images", "asr_tokens", "ocr_tokens")  # the assemble metrics a release's stats sum
# What transcribe's loop guard did to the released videos' segments, summed (lectern.stages.transcribe.run.LoopGuard)
ASR_LOOP_COUNTS = ("segments_decoded", "segments_redone_looping", "segments_dropped_looping")


def _packed_groups(store, video_ids: list[str], settings: Settings, left_out: dict):
    """The released videos' clip-level records packed into sample groups: all videos in one run of clips, as
    published, or each video a run of its own."""
    videos = (clip_records(store, v) for v in video_ids)
    runs = [videos] if settings.sample_packing == "release" else ([entries] for entries in videos)
    for run in runs:
        yield from pack(run, settings.sample_token_budget, settings.sample_max_images, left_out)


class _ShardWriter:
    """Samples and their clip-level records written SHARD_SAMPLES at a time, as JSONL (both) and Parquet (the
    samples), with the figures the manifest and stats count on the way."""

    def __init__(self, store, name: str):
        self.store, self.name = store, name
        self.shards: list[str] = []
        self.clip_level_shards: list[str] = []
        self.parquet_shards: list[str] = []
        self.sizes: list[int] = []
        self.pending: list[tuple[dict, dict]] = []  # (sample, its clip-level record)
        self.samples_per_video: dict[str, int] = {}
        self.images_per_sample: list[int] = []
        self.tokens_per_sample: list[int] = []
        self.viewer_samples: list[dict] = []

    def add(self, sample: dict, clip_level: dict) -> None:
        for video_id in {e["vid"] for e in clip_level["conversations"] if e["vid"] != END_OF_VIDEO}:
            self.samples_per_video[video_id] = self.samples_per_video.get(video_id, 0) + 1
        self.images_per_sample.append(sample["image_num"])
        self.tokens_per_sample.append(sample["token_num"])
        if len(self.viewer_samples) < VIEWER_SAMPLES:
            self.viewer_samples.append(sample)
        self.pending.append((sample, clip_level))
        if len(self.pending) >= SHARD_SAMPLES:
            self._flush()

    def close(self) -> None:
        """The last shard (an empty one for a release of no sample), then the loader's index of them."""
        if self.pending or not self.shards:
            self._flush()
        lengths, ranges = shard_index([key.rsplit("/", 1)[1] for key in self.shards], self.sizes)
        self.index = [self.store.put_json(Keys.release(self.name, "length.json"), lengths),
                      self.store.put_json(Keys.release(self.name, "shard_id_range.json"), ranges)]

    def _flush(self) -> None:
        n, put, samples = len(self.shards), self.store.put_bytes, [s for s, _ in self.pending]
        self.shards.append(put(Keys.release(self.name, f"samples-{n:05d}.jsonl"), _jsonl(samples)))
        self.clip_level_shards.append(put(Keys.release(self.name, f"{CLIP_LEVEL}-{n:05d}.jsonl"),
                                          _jsonl(c for _, c in self.pending)))
        self.parquet_shards.append(put(Keys.release(self.name, f"parquet/samples-{n:05d}.parquet"),
                                       parquet_bytes(samples)))
        self.sizes.append(len(self.pending))
        self.pending.clear()


def put_array(store, key: str, values: Iterable) -> str:
    """A JSON array written to the store through a file, one value a line (lectern.arrays): never whole in memory."""
    with tempfile.TemporaryDirectory(prefix="lectern-release-") as scratch:
        path = Path(scratch) / "array.json"
        with open(path, "w", encoding="utf-8") as handle:
            write_array(handle, values)
        return store.put_file(key, path)


def _jsonl(values) -> bytes:
    return "".join(json.dumps(v, ensure_ascii=False) + "\n" for v in values).encode()


def _textbook_manifest(store, name: str, subject: str | None, settings: Settings, released: _Released,
                       writer: _ShardWriter, left_out: dict) -> dict:
    video_ids = released.video_ids
    video_meta = put_array(store, Keys.release(name, "video_meta_data.json"),
                           (store.get_json(artifact_key("assemble", "video_meta", v)) for v in video_ids))
    samples, images, tokens = (len(writer.images_per_sample), sum(writer.images_per_sample),
                               sum(writer.tokens_per_sample))
    return {
        "release": name,
        "created_at": datetime.now(timezone.utc).isoformat(),
        "subject": subject,
        "store": store.url,
        "images_relative_to": store.url,
        "shards": writer.shards,
        "clip_level_shards": writer.clip_level_shards,
        "parquet_shards": writer.parquet_shards,
        "video_meta_data": video_meta,
        "shard_index": writer.index,
        "packing": {**{name: getattr(settings, field) for name, field in PACKING.items()},
                    "tokenizer": tokenizer_name(settings)},
        "videos": [{"id": v, "stage_versions": released.versions[v]} for v in video_ids],
        "stats": {"videos": len(video_ids), "samples": samples, "images": images, "tokens": tokens,
                  "images_per_sample": round(images / samples, 2) if samples else 0.0,
                  "tokens_per_sample": round(tokens / samples, 1) if samples else 0.0,
                  "left_out_text_only_groups": left_out["text_only_groups"],
                  "left_out_text_only_tokens": left_out["text_only_tokens"]},
        "funnel": released.counts,
        "stage_configs": released.lineage,
    }


def _textbook_stats(settings: Settings, store, name: str, released: _Released, writer: _ShardWriter,
                    sample_stats: dict) -> list[str]:
    """stats.json and stats.md (funnel, subjects, cost, samples) and the two histograms."""
    stats = {"release": name, "funnel": released.funnel_rows,
             "subjects": subject_table(released.video_subjects, released.assembled, released.durations,
                                       writer.samples_per_video),
             "cost": cost_table(released.seconds, released.durations, TEXTBOOK.stages, released.spent_seconds,
                                settings.gpu_hour_price, settings.cpu_hour_price), "samples": sample_stats,
             "asr": released.asr_loops}
    return [
        store.put_json(Keys.release(name, "stats.json"), stats),
        store.put_bytes(Keys.release(name, "stats.md"), markdown(stats).encode()),
        store.put_bytes(Keys.release(name, "images_per_sample.png"),
                        histogram_png(writer.images_per_sample, "Images per sample", "images")),
        store.put_bytes(Keys.release(name, "tokens_per_sample.png"),
                        histogram_png(writer.tokens_per_sample, "Tokens per sample", "tokens")),
    ]


def rebuild_release(settings: Settings, manifest: dict) -> dict:
    """The release built again under its own name, from its own videos that are still released (a video taken
    down since drops out, and is named in its `taken_down`), packed as it was; every file of the earlier build is
    replaced or removed."""
    only = {v["id"] for v in manifest["videos"]}
    with session_scope(settings.db_url) as session:
        gone = sorted(v for v in only if (video := session.get(Video, v)) is None or video.forgotten_at)
    taken_down = sorted({*manifest.get("taken_down", []), *gone})
    if manifest.get("kind") == PAIRS.release:
        return build_pairs_release(settings, manifest["release"], manifest.get("subject"), only=only,
                                   taken_down=taken_down)
    packing = manifest.get("packing") or {}
    recorded = {field: packing[name] for name, field in PACKING.items() if name in packing}
    settings = dataclasses.replace(settings, **{"face_max_area": None, **recorded},
                                   tokenizer=packing.get("tokenizer", settings.tokenizer))
    return build_release(settings, manifest["release"], manifest.get("subject"), only=only, taken_down=taken_down)


def releases_holding(store, video_id: str) -> list[dict]:
    """The manifests of the releases in the store that hold the video."""
    manifests = (store.get_json(key) for key in store.list("releases/") if key.endswith("/manifest.json"))
    return [m for m in manifests if any(v["id"] == video_id for v in m.get("videos", []))]


def shard_index(names: list[str], sizes: list[int]) -> tuple[dict, dict]:
    """The paper's loader's index of a sharded corpus: ``length.json`` (shard -> samples) and
    ``shard_id_range.json`` (shard -> [start, end) of its samples' ids, together 0..N-1)."""
    ends = list(accumulate(sizes))
    return dict(zip(names, sizes)), {n: [end - size, end] for n, size, end in zip(names, sizes, ends)}


def clip_records(store, video_id: str) -> list[dict]:
    """A video's clip-level records, without its End-of-a-Video marker (packing places it)."""
    records = [e for e in store.get_json(artifact_key("assemble", "clip_level", video_id))["conversations"]
               if e["vid"] != END_OF_VIDEO]
    if any("keyframe_ssim_scores" not in e for e in records):
        raise ValueError(f"{video_id}: its clip-level file is from an older assemble version; rerun assemble "
                         "(a phase run with stale_only) before releasing")
    return records


def stage_configs(session, versions: Iterable[tuple[str, str | None]], stages, settings: Settings) -> dict:
    """Lineage: per stage, the settings behind each version the released results carry (stage -> version ->
    settings), from a row of that version that recorded them. A result recorded before rows kept their settings
    has them where its version is the current one (the hash says they are equal), else None: not known."""
    configs: dict[str, dict] = {stage: {} for stage in stages}
    for stage, version in sorted(set(versions), key=lambda pair: (pair[0], pair[1] or "")):
        if stage not in configs or version is None:
            continue
        config = session.scalar(select(VideoStage.config).where(
            VideoStage.stage == stage, VideoStage.version == version, VideoStage.config.is_not(None)).limit(1))
        if config is None and version == stage_version(stage, settings):
            config = stage_config(stage, settings)
        configs[stage][version] = config
    return configs


PAIR_COLUMNS = ("video_id", "clip_start", "clip_end", "caption", "middle_frame_caption", "frame_captions",
                "clip_similarity", "aesthetic", "label", "subjects", "description", "url", "cover_url", "cover",
                "keyframes")


def build_pairs_release(settings: Settings, name: str | None = None, subject: str | None = None,
                        only: set[str] | None = None, taken_down: list[str] | None = None) -> dict:
    """Video-text pairs (recipe pairs): one row per kept clip of every captioned video, as JSONL shards and the same
    rows as Parquet under ``parquet/`` (both read by ``datasets.load_dataset``), with a manifest; returns it.
    A row: (video id, clip start/end, caption, its coarse and fine captions, scores, label, ...), its video's cover
    image and its keyframes as store keys relative to the manifest's `images_relative_to`."""
    name = name or default_release_name()
    store = store_from_settings(settings)
    with session_scope(settings.db_url) as session:
        captioned = [r for r in stage_rows(session, subject=subject, stage=PAIRS.last)
                     if r.status == SUCCEEDED and (only is None or r.video_id in only)]
        records = {r.video_id: video_record(session, r.video_id) for r in captioned}
        versions, sizes = set(), {}  # of the released videos, from the subject's rows (no list of ids bound)
        for row in iter_stage_rows(session, subject=subject):
            if row.video_id in records:
                versions.add((row.stage, row.version))
                if row.stage == "download":
                    sizes[row.video_id] = (row.metrics or {}).get("size_bytes")
        lineage = stage_configs(session, versions, ("keyframes", "caption"), settings)
        counts = funnel(session, subject)
    rows: list[dict] = []
    clips_total = 0
    for video_id, video in records.items():
        keyframes = {c["index"]: [f["key"] for f in c["keyframes"]]
                     for c in store.get_json(video.artifact("keyframes", "clips"))["clips"]}
        for clip in store.get_json(video.artifact("caption", "captions"))["clips"]:
            clips_total += 1
            if not clip["kept"]:
                continue
            rows.append({
                "video_id": video_id, "clip_start": clip["start"], "clip_end": clip["end"], "caption": clip["caption"],
                "middle_frame_caption": clip["middle_frame_caption"], "frame_captions": clip["frame_captions"],
                "clip_similarity": clip["clip_similarity"], "aesthetic": clip["aesthetic"],
                "label": video.labels[0] if video.labels else None, "subjects": list(video.subjects),
                "description": video.description, "url": video.url, "cover_url": video.cover_url,
                "cover": video.artifact("download", "cover"),  # the cover image in the store, beside the keyframes
                "keyframes": keyframes.get(clip["index"], []),
            })
    shards, parquet_shards = [], []
    for begin in range(0, max(len(rows), 1), SHARD_SAMPLES):
        chunk = rows[begin: begin + SHARD_SAMPLES]
        shards.append(store.put_bytes(Keys.release(name, f"pairs-{len(shards):05d}.jsonl"),
                                      "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in chunk).encode()))
        parquet_shards.append(store.put_bytes(Keys.release(name, f"parquet/pairs-{len(parquet_shards):05d}.parquet"),
                                              pairs_parquet_bytes(chunk)))
    scored = [r["clip_similarity"] for r in rows if r["clip_similarity"] is not None]
    categories = category_table({v: video.labels[0] if video.labels else None for v, video in records.items()},
                                {v: video.duration_s for v, video in records.items()}, sizes)
    manifest = {
        "release": name, "kind": "pairs", "created_at": datetime.now(timezone.utc).isoformat(), "subject": subject,
        "store": store.url, "images_relative_to": store.url, "shards": shards, "parquet_shards": parquet_shards,
        "columns": list(PAIR_COLUMNS), "videos": [{"id": v} for v in records],
        "stats": {"videos": len(records), "clips": clips_total, "pairs": len(rows),
                  "filtered_clips": clips_total - len(rows),
                  "mean_clip_similarity": round(sum(scored) / len(scored), 4) if scored else None},
        "funnel": counts,
        "stage_configs": lineage,
        **({"taken_down": taken_down} if taken_down else {}),
    }
    stats = {"release": name, "pairs": manifest["stats"], "categories": categories}
    manifest["stats_files"] = [store.put_json(Keys.release(name, "stats.json"), stats),
                               store.put_bytes(Keys.release(name, "stats.md"), pairs_markdown(stats).encode())]
    manifest["card"] = store.put_bytes(Keys.release(name, "README.md"), dataset_card(manifest, "pairs-*.jsonl"))
    return _publish(store, name, manifest)


def dataset_card(manifest: dict, data_files: str, about: str | None = None) -> bytes:
    """A folder's README.md, a Hugging Face dataset card whose `configs` name its shards (`data_files`, a glob), so
    that ``datasets.load_dataset(<the folder>)`` reads them. A release's folder: its JSONL shards (a card's configs
    share one format: the Parquet copies load with ``load_dataset("parquet", data_dir=<the folder>/parquet)``)."""
    kind = manifest.get("kind", "textbook")
    stats = ", ".join(f"{value} {key}" for key, value in manifest["stats"].items() if isinstance(value, int))
    about = about or (
        "`manifest.json` beside this card records its lineage (each stage's version and settings), its packing and "
        "its\ndiff against the previous release; image paths are relative to "
        f"`{manifest['images_relative_to']}`. The same rows\nas Parquet: "
        '`load_dataset("parquet", data_dir="<this folder>/parquet")`.')
    return f"""---
configs:
- config_name: default
  data_files:
  - split: train
    path: "{data_files}"
---
# Lectern release {manifest["release"]}

A {kind} release made by Lectern{f" for {manifest['subject']}" if manifest.get("subject") else ""}: {stats}.
{about}
""".encode()


def _publish(store, name: str, manifest: dict) -> dict:
    """Write the manifest (last: a reader that finds it finds every file it names), then remove whatever an earlier
    build under the same name left that this one did not write: a `parquet/*` glob reads this build only."""
    written = {store.put_json(Keys.release(name, "manifest.json"), manifest)}
    for value in manifest.values():
        written.update(item for item in (value if isinstance(value, list) else [value]) if isinstance(item, str))
    stale = [key for key in store.list(Keys.release(name, "")) if key not in written]
    store.delete_keys(stale)
    manifest["location"] = store.uri(Keys.release(name, ""))
    return manifest


def prune_releases(store, subject: str | None, keep: int) -> list[str]:
    """Remove the subject's releases older than its newest `keep` (LECTERN_KEEP_RELEASES; 0 keeps all), except
    those an export was made of (a takedown rebuilds and re-exports them). Returns the names removed."""
    if keep <= 0:
        return []
    manifests = [store.get_json(key) for key in store.list("releases/") if key.endswith("/manifest.json")]
    own = sorted((m for m in manifests if m.get("subject") == subject), key=lambda m: m["created_at"], reverse=True)
    removed = []
    for manifest in own[keep:]:
        name = manifest["release"]
        if store.exists(Keys.exports(name)):
            continue
        manifest_key = Keys.release(name, "manifest.json")
        store.delete_keys([manifest_key])  # first: a reader that finds a manifest finds every file it names
        store.delete_keys(store.list(Keys.release(name, "")))
        removed.append(name)
    return removed


def pairs_parquet_bytes(rows: list[dict]) -> bytes:
    import pyarrow as pa

    strings = pa.list_(pa.string())
    types = {"clip_start": pa.float64(), "clip_end": pa.float64(), "clip_similarity": pa.float64(),
             "aesthetic": pa.float64(), "frame_captions": strings, "subjects": strings, "keyframes": strings}
    return _parquet(pa.table({column: pa.array([r[column] for r in rows], types.get(column, pa.string()))
                              for column in PAIR_COLUMNS}))


def parquet_bytes(samples: list[dict]) -> bytes:
    """Samples as one Parquet file that `datasets.load_dataset("parquet", ...)` reads."""
    return _parquet(samples_table(samples))


def samples_table(samples: list[dict], images=None):
    """Samples as an Arrow table: `images` their store keys, or the Arrow column given (lectern.export's Parquet
    layout puts each image's bytes there); `metadata` as JSON text."""
    import pyarrow as pa

    strings = pa.list_(pa.string())
    return pa.table({
        "images": images if images is not None else pa.array([s["images"] for s in samples], strings),
        "texts": pa.array([s["texts"] for s in samples], strings),
        "text_ocr_list": pa.array([s["text_ocr_list"] for s in samples], strings),
        "metadata": pa.array([json.dumps(s["metadata"], ensure_ascii=False) for s in samples], pa.string()),
        "image_num": pa.array([s["image_num"] for s in samples], pa.int32()),
        "text_num": pa.array([s["text_num"] for s in samples], pa.int32()),
        "token_num": pa.array([s["token_num"] for s in samples], pa.int64()),
    })


def _parquet(table) -> bytes:
    import io

    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def previous_manifest(store, name: str, subject: str | None) -> dict | None:
    """The newest other release of the same subject (or of everything) in the store, or None."""
    manifests = [store.get_json(key) for key in store.list("releases/")
                 if key.endswith("/manifest.json") and key != Keys.release(name, "manifest.json")]
    return max((m for m in manifests if m.get("subject") == subject), key=lambda m: m["created_at"], default=None)


def release_diff(store, name: str, subject: str | None, video_ids: list[str], settings: Settings) -> dict:
    """Videos added and removed since the previous release; a removed video says why (forgotten, or its state)."""
    previous = previous_manifest(store, name, subject)
    before = {v["id"] for v in previous["videos"]} | set(previous.get("taken_down", [])) if previous else set()
    removed = sorted(before - set(video_ids))
    why: dict[str, str] = {}
    with session_scope(settings.db_url) as session:
        for video_id in removed:
            video = session.get(Video, video_id)
            why[video_id] = (f"forgotten: {video.forgotten_reason}" if video is not None and video.forgotten_at
                             else "no longer assembled")
    return {"previous": previous["release"] if previous else None, "added": sorted(set(video_ids) - before),
            "removed": [{"id": video_id, "why": why[video_id]} for video_id in removed]}


# What each recipe's release (lectern.recipes.Recipe.release) is built by.
BUILDERS = {TEXTBOOK.release: build_release, PAIRS.release: build_pairs_release}


def build_for(recipe: str, settings: Settings, name: str | None = None, subject: str | None = None) -> dict:
    """The release a user asked for, of a subject made by `recipe`: a textbook's samples, or video-text pairs. Older
    releases of the subject beyond LECTERN_KEEP_RELEASES are removed after it."""
    manifest = BUILDERS[RECIPES[recipe].release](settings, name=name, subject=subject)
    removed = prune_releases(store_from_settings(settings), subject, settings.keep_releases)
    if removed:
        log.info("removed %d older release(s) of %s (LECTERN_KEEP_RELEASES=%d): %s", len(removed),
                 subject or "every subject", settings.keep_releases, ", ".join(removed))
    return manifest


def release_subject(settings: Settings, subject: str, name: str | None = None) -> dict | None:
    """The subject's release by its recipe (None for a recipe that releases nothing)."""
    with session_scope(settings.db_url) as session:
        recipe = subject_recipe(session, subject)
    return build_for(recipe, settings, name=name, subject=subject) if RECIPES[recipe].release else None
