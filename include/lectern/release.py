"""Releases: every assembled video's samples gathered into shards under ``releases/{name}/`` (JSONL in the published
layout, and the same samples as Parquet under ``parquet/``, which ``datasets.load_dataset`` reads), with a manifest
(stats, per-video lineage, the settings behind each stage version, the diff against the previous release)."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from lectern.config import RECIPES, Settings
from lectern.stages import stage_config, stage_version
from lectern.state.db import session_scope
from lectern.state.models import SUCCEEDED, Video, VideoStage
from lectern.state.ops import funnel, stage_rows, video_record
from lectern.stats import cost_table, funnel_table, histogram_png, markdown, subject_table
from lectern.store import Keys, store_from_settings
from lectern.viewer import render_samples

SHARD_SAMPLES = 1000
TEXTBOOK = RECIPES["textbook"]  # the stages behind a textbook release (a pairs release: keyframes and caption)
VIEWER_SAMPLES = 50  # the first samples of a release, in viewer.html


def default_release_name() -> str:
    return datetime.now(timezone.utc).strftime("r%Y%m%d-%H%M%S")


def build_release(settings: Settings, name: str | None = None, subject: str | None = None) -> dict:
    """Write shards, manifest, stats and viewer for the videos whose assemble succeeded; returns the manifest."""
    name = name or default_release_name()
    store = store_from_settings(settings)
    with session_scope(settings.db_url) as session:
        assembled = stage_rows(session, subject=subject, stage="assemble")
        video_ids = [r.video_id for r in assembled if r.status == SUCCEEDED]
        rows_by_video: dict[str, dict[str, VideoStage]] = {v: {} for v in video_ids}
        for row in stage_rows(session, video_ids=video_ids):
            rows_by_video[row.video_id][row.stage] = row
        counts = funnel(session, subject)
        funnel_rows = funnel_table(stage_rows(session, subject=subject), TEXTBOOK)
        durations = {v: session.get(Video, v).duration_s for v in video_ids}
        video_subjects = {v: list(video_record(session, v).subjects) for v in video_ids}
    shards: list[str] = []
    parquet_shards: list[str] = []
    shard: list[tuple[str, dict]] = []  # (JSONL line, sample)
    samples_per_video: dict[str, int] = {}
    images_per_sample: list[int] = []
    tokens_per_sample: list[int] = []
    viewer_samples: list[dict] = []

    def flush() -> None:
        shards.append(store.put_bytes(Keys.release(name, f"samples-{len(shards):05d}.jsonl"),
                                      "".join(line + "\n" for line, _ in shard).encode()))
        parquet_shards.append(store.put_bytes(Keys.release(name, f"parquet/samples-{len(parquet_shards):05d}.parquet"),
                                              parquet_bytes([sample for _, sample in shard])))
        shard.clear()

    for video_id in video_ids:
        for line in store.get_bytes(Keys.samples(video_id)).decode().splitlines():
            if not line.strip():
                continue
            sample = json.loads(line)
            samples_per_video[video_id] = samples_per_video.get(video_id, 0) + 1
            images_per_sample.append(sample["image_num"])
            tokens_per_sample.append(sample["token_num"])
            if len(viewer_samples) < VIEWER_SAMPLES:
                viewer_samples.append(sample)
            shard.append((line, sample))
            if len(shard) >= SHARD_SAMPLES:
                flush()
    if shard or not shards:
        flush()
    total_samples, total_images, total_tokens = len(images_per_sample), sum(images_per_sample), sum(tokens_per_sample)
    manifest = {
        "release": name,
        "created_at": datetime.now(timezone.utc).isoformat(),
        "subject": subject,
        "store": store.url,
        "images_relative_to": store.url,
        "shards": shards,
        "parquet_shards": parquet_shards,
        "videos": [{"id": v, "stage_versions": {stage: row.version for stage, row in rows_by_video[v].items()}}
                   for v in video_ids],
        "stats": {"videos": len(video_ids), "samples": total_samples, "images": total_images,
                  "tokens": total_tokens,
                  "images_per_sample": round(total_images / total_samples, 2) if total_samples else 0.0,
                  "tokens_per_sample": round(total_tokens / total_samples, 1) if total_samples else 0.0},
        "funnel": counts,
    }
    manifest["stage_configs"] = stage_configs(TEXTBOOK, settings)
    manifest["diff"] = release_diff(store, name, subject, video_ids, settings)
    stats = {"release": name, "funnel": funnel_rows,
             "subjects": subject_table(video_subjects, rows_by_video, durations, samples_per_video),
             "cost": cost_table(rows_by_video, durations, TEXTBOOK), "samples": manifest["stats"]}
    manifest["stats_files"] = [
        store.put_json(Keys.release(name, "stats.json"), stats),
        store.put_bytes(Keys.release(name, "stats.md"), markdown(stats).encode()),
        store.put_bytes(Keys.release(name, "images_per_sample.png"),
                        histogram_png(images_per_sample, "Images per sample", "images")),
        store.put_bytes(Keys.release(name, "tokens_per_sample.png"),
                        histogram_png(tokens_per_sample, "Tokens per sample", "tokens")),
    ]
    manifest["viewer"] = store.put_bytes(Keys.release(name, "viewer.html"),
                                         render_samples(name, viewer_samples).encode())
    store.put_json(Keys.release(name, "manifest.json"), manifest)
    manifest["location"] = store.uri(Keys.release(name, ""))
    return manifest


def stage_configs(stages, settings: Settings) -> dict:
    """Lineage: each video's stage_versions name a code version and a settings hash; these are the settings behind
    the hashes of the current configuration (model ids included)."""
    return {stage: {"version": stage_version(stage, settings), "settings": stage_config(stage, settings)}
            for stage in stages}


PAIR_COLUMNS = ("video_id", "clip_start", "clip_end", "caption", "middle_frame_caption", "frame_captions",
                "clip_similarity", "aesthetic", "label", "subjects", "description", "url", "cover_url", "keyframes")


def build_pairs_release(settings: Settings, name: str | None = None, subject: str | None = None) -> dict:
    """Video-text pairs (recipe pairs): one row per kept clip of every captioned video, as JSONL shards and the same
    rows as Parquet under ``parquet/`` (both read by ``datasets.load_dataset``), with a manifest; returns it.
    A row: (video id, clip start/end, caption, its coarse and fine captions, scores, label, ...), its keyframes
    as store keys relative to the manifest's `images_relative_to`."""
    name = name or default_release_name()
    store = store_from_settings(settings)
    with session_scope(settings.db_url) as session:
        captioned = [r for r in stage_rows(session, subject=subject, stage="caption") if r.status == SUCCEEDED]
        records = {r.video_id: video_record(session, r.video_id) for r in captioned}
        counts = funnel(session, subject)
    rows: list[dict] = []
    clips_total = 0
    for video_id, video in records.items():
        keyframes = {c["index"]: [f["key"] for f in c["keyframes"]]
                     for c in store.get_json(video.artifacts["keyframes"]["clips"])["clips"]}
        for clip in store.get_json(video.artifacts["caption"]["captions"])["clips"]:
            clips_total += 1
            if not clip["kept"]:
                continue
            rows.append({
                "video_id": video_id, "clip_start": clip["start"], "clip_end": clip["end"], "caption": clip["caption"],
                "middle_frame_caption": clip["middle_frame_caption"], "frame_captions": clip["frame_captions"],
                "clip_similarity": clip["clip_similarity"], "aesthetic": clip["aesthetic"],
                "label": video.labels[0] if video.labels else None, "subjects": list(video.subjects),
                "description": video.description, "url": video.url, "cover_url": video.cover_url,
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
    manifest = {
        "release": name, "kind": "pairs", "created_at": datetime.now(timezone.utc).isoformat(), "subject": subject,
        "store": store.url, "images_relative_to": store.url, "shards": shards, "parquet_shards": parquet_shards,
        "columns": list(PAIR_COLUMNS), "videos": [{"id": v} for v in records],
        "stats": {"videos": len(records), "clips": clips_total, "pairs": len(rows),
                  "filtered_clips": clips_total - len(rows),
                  "mean_clip_similarity": round(sum(scored) / len(scored), 4) if scored else None},
        "funnel": counts,
        "stage_configs": stage_configs(("keyframes", "caption"), settings),
    }
    store.put_json(Keys.release(name, "manifest.json"), manifest)
    manifest["location"] = store.uri(Keys.release(name, ""))
    return manifest


def pairs_parquet_bytes(rows: list[dict]) -> bytes:
    import pyarrow as pa

    strings = pa.list_(pa.string())
    types = {"clip_start": pa.float64(), "clip_end": pa.float64(), "clip_similarity": pa.float64(),
             "aesthetic": pa.float64(), "frame_captions": strings, "subjects": strings, "keyframes": strings}
    return _parquet(pa.table({column: pa.array([r[column] for r in rows], types.get(column, pa.string()))
                              for column in PAIR_COLUMNS}))


def parquet_bytes(samples: list[dict]) -> bytes:
    """Samples as one Parquet file that `datasets.load_dataset("parquet", ...)` reads; `metadata` is JSON text,
    since its entries differ between image and text positions."""
    import pyarrow as pa

    strings = pa.list_(pa.string())
    table = pa.table({
        "images": pa.array([s["images"] for s in samples], strings),
        "texts": pa.array([s["texts"] for s in samples], strings),
        "text_ocr_list": pa.array([s["text_ocr_list"] for s in samples], strings),
        "metadata": pa.array([json.dumps(s["metadata"], ensure_ascii=False) for s in samples], pa.string()),
        "image_num": pa.array([s["image_num"] for s in samples], pa.int32()),
        "text_num": pa.array([s["text_num"] for s in samples], pa.int32()),
        "token_num": pa.array([s["token_num"] for s in samples], pa.int64()),
    })
    return _parquet(table)


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
    before = {v["id"] for v in previous["videos"]} if previous else set()
    removed = sorted(before - set(video_ids))
    why: dict[str, str] = {}
    with session_scope(settings.db_url) as session:
        for video_id in removed:
            video = session.get(Video, video_id)
            why[video_id] = (f"forgotten: {video.forgotten_reason}" if video is not None and video.forgotten_at
                             else "no longer assembled")
    return {"previous": previous["release"] if previous else None, "added": sorted(set(video_ids) - before),
            "removed": [{"id": video_id, "why": why[video_id]} for video_id in removed]}
