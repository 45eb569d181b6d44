"""Lectern at the paper's scale: claim, release, export and status over fabricated homes of N assembled videos, on
SQLite and on Postgres; seconds, peak RSS and output size per N, the growth exponent, and an extrapolation to the
paper's 75K videos.

    .venv/bin/python bench/scale.py                           # N = 1000, 4000, 16000 on both databases
    .venv/bin/python bench/scale.py --sizes 1000,4000 --databases sqlite --out bench/results/scale.md
    .venv/bin/python bench/scale.py --sizes 4000,16000 --claim-videos 0 --keep /tmp/homes --repeats 3

A home is made with the project's own functions, as a run would leave it: `sync_subject` and `record_search` find
N videos, `claim_videos` and `mark_succeeded` take each through download .. ocr (a fabricated clips.json, ocr.json
and probe beside them), and the real assemble stage (`lectern.stages.assemble.run.run`) packs each one's
KEYFRAMES keyframes (small JPEGs, the same bytes) and their text into samples. Then, with the files written back
to disk and (on Postgres) VACUUM ANALYZE run, as autovacuum would have during a real run, each in its own process
(its peak RSS its own): a claim of 100 (timed in-process, on the stage's N pending rows), `lectern release`,
`lectern export --layout shards` and `lectern status --subject`. Release and export start with nothing dirty in the
page cache and are timed until their files are on disk (`release_s`, `export_s`; the command alone: `*_cmd_s`).

The claim is timed again at the paper's scale (--claim-videos, 77,000 found): `record_search` finds them (each a
pending download), then their rows of the later stages are bulk-inserted as a run would have left them (download ..
ocr succeeded, assemble pending: 6 rows a video, 462K in all), with no ANALYZE after (a claim right after a batch
sees the planner's stale statistics). It times a claim of 100 with and without the subject (median of 5), `lectern
status --subject`, and a forced rerun of 1,000 videos' ocr (their assemble rows dropped). Not in `make test`.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, machine, run_measured

SUBJECT = "Scale"
PAPER_VIDEOS = 75_000
CLIPS = 30  # per video: 3 keyframes each, 90 keyframes and about 8 samples a video
KEYFRAMES_PER_CLIP = 3


def database(kind: str, home: Path) -> tuple[str, str | None]:
    """(SQLAlchemy URL, the Postgres database to drop afterwards)."""
    if kind == "sqlite":
        return f"sqlite:///{home / 'state.db'}", None
    from lectern_dev.postgres import create_pg_database

    name, url = create_pg_database(migrated=False, prefix="lectern_scale")
    return url, name


def drop(name: str | None) -> None:
    if name:
        from lectern_dev.postgres import drop_pg_database

        drop_pg_database(name)


def jpeg() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 36), (200, 10, 10)).save(buffer, "JPEG")
    return buffer.getvalue()


def fabricate(settings, n: int) -> float:
    """N assembled videos; returns the seconds a claim of 100 took on N pending assemble rows."""
    from lectern.pipeline import artifact_key
    from lectern.recipes import RECIPES
    from lectern.stages.assemble import run as assemble
    from lectern.state.catalog import FoundVideo, PointSpec, record_search, sync_subject
    from lectern.state.db import migrate, session_scope
    from lectern.state.reports import video_record
    from lectern.state.transitions import claim_videos, mark_succeeded
    from lectern.store import Keys, store_from_settings

    migrate(settings.db_url)
    store = store_from_settings(settings)
    picture = jpeg()
    ids = [f"v{i:06d}" for i in range(n)]
    with session_scope(settings.db_url) as session:
        [point] = sync_subject(session, SUBJECT, [PointSpec("Cells", "Cells", "cells")])
    for begin in range(0, n, 1000):
        with session_scope(settings.db_url) as session:
            record_search(session, point, [FoundVideo(v, f"http://example.org/{v}", f"Lecture {v}", "Cells")
                                           for v in ids[begin:begin + 1000]], {})

    def artifacts_of(stage: str, video_id: str) -> dict[str, str]:
        if stage == "download":
            probe = store.put_json(artifact_key("download", "probe", video_id), {"duration_s": 600.0,
                                                                                  "size_bytes": 50_000_000})
            return {"source": artifact_key("download", "source", video_id), "probe": probe}
        if stage == "keyframes":
            clips = []
            for c in range(CLIPS):
                start, end = c * 20.0, c * 20.0 + 20
                frames = [{"key": store.put_bytes(Keys.keyframe(video_id, start, end, k + 1), picture),
                           "time": start + 5 * k, "ssim": None if c == k == 0 else 0.5}
                          for k in range(KEYFRAMES_PER_CLIP)]
                clips.append({"index": c, "start": start, "end": end, "asr": f"Clip {c} of {video_id}: cells divide "
                              "and grow, and their membranes keep what is inside apart.", "sampled_times": [start],
                              "keyframes": frames})
            return {"clips": store.put_json(artifact_key("keyframes", "clips", video_id), {"clips": clips})}
        if stage == "ocr":
            keys = [f["key"] for c in store.get_json(artifact_key("keyframes", "clips", video_id))["clips"]
                    for f in c["keyframes"]]
            return {"ocr": store.put_json(artifact_key("ocr", "ocr", video_id),
                                          {"engine": "tesseract", "texts": {k: "Cell membrane" for k in keys}})}
        return {}

    claim_seconds = 0.0
    for stage in RECIPES["textbook"].stages:
        held: list[str] = []
        if stage == "assemble":  # the claim timed: 100 of N pending rows, for the subject
            with session_scope(settings.db_url) as session:
                started = time.perf_counter()
                held = claim_videos(session, stage, "bench", 100, 3600, 3, subject=SUBJECT)
                claim_seconds = time.perf_counter() - started
        while True:
            with session_scope(settings.db_url) as session:
                batch = held + claim_videos(session, stage, "bench", 500, 3600, 3, subject=SUBJECT)
            held = []
            if not batch:
                break
            with session_scope(settings.db_url) as session:
                for video_id in batch:
                    if stage == "assemble":
                        result = assemble.run(video_record(session, video_id), store, settings)
                        made, metrics = result.artifacts, result.metrics
                    else:
                        made, metrics = artifacts_of(stage, video_id), {}
                    mark_succeeded(session, video_id, stage, "bench", made, metrics)
    return claim_seconds


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def quiesce(db_url: str) -> None:
    """After fabrication, what a real release starts from: the fabricated files written back to disk (not flushing
    while the release is timed), and on Postgres the statistics that autovacuum would have gathered during a run
    of days, and a checkpoint (the server's own write-back of the fabrication, not during the timing)."""
    if db_url.startswith("postgresql"):
        from sqlalchemy import create_engine, text

        with create_engine(db_url, isolation_level="AUTOCOMMIT").connect() as connection:
            connection.execute(text("VACUUM ANALYZE"))
            connection.execute(text("CHECKPOINT"))
    os.sync()


def to_disk(command: list[str], env: dict[str, str]):
    """Run a command that writes files, from a page cache with nothing dirty, and time it until what it wrote is on
    disk: (its run, those seconds). The kernel writes dirty pages back once they are 30 s old
    (vm.dirty_expire_centisecs), so a command that runs longer pays for its own writes (and those of the command
    before) while one that ends sooner leaves them in the cache: timing the command alone times different work at
    different N."""
    os.sync()
    started = time.monotonic()
    run = run_measured(command, env)
    assert run.exit_code == 0, run.stdout[-2000:]
    os.sync()
    return run, time.monotonic() - started


def measure(kind: str, n: int, work: Path, keep: bool = False, repeats: int = 1) -> dict:
    """One home of N videos: made (or, kept from an earlier --keep run, found), then release and export timed
    `repeats` times from nothing (the median kept), and status."""
    from common import tiny_models

    from lectern.config import Settings
    from lectern_dev.demo import demo_settings

    home = work / f"{kind}-{n}"
    kept = home / "env.txt"
    made = claim = None
    if keep and kept.exists():  # time an earlier run's home again
        env = {**os.environ, **dict(line.split("=", 1) for line in kept.read_text().splitlines())}
        pg_name = None
        quiesce(env["LECTERN_DB_URL"])
    else:
        home.mkdir(parents=True)
        db_url, pg_name = database(kind, home)
        env = {**os.environ, **demo_settings(tiny_models()), "LECTERN_HOME": str(home), "LECTERN_DB_URL": db_url,
               "LECTERN_STORE_URL": f"file://{home / 'store'}", "PYTHONPATH": f"{ROOT / 'include'}"}
        started = time.monotonic()
        claim = fabricate(Settings.from_env(env), n)
        made = time.monotonic() - started
        quiesce(db_url)
        if keep:  # to time or profile a command again on the same home: `env $(cat env.txt) ...`
            kept.write_text("".join(f"{name}={env[name]}\n" for name in env
                                    if name.startswith(("LECTERN_", "PYTHONPATH"))))
    try:
        lectern = [sys.executable, "-m", "lectern"]
        releases, exports = [], []
        for _ in range(repeats):  # each from nothing: what an earlier repeat wrote is removed, untimed
            shutil.rmtree(home / "store/releases/scale", ignore_errors=True)
            shutil.rmtree(home / "export", ignore_errors=True)
            releases.append(to_disk([*lectern, "release", "--name", "scale", "--subject", SUBJECT], env))
            exports.append(to_disk([*lectern, "export", "scale", str(home / "export"), "--layout", "shards"], env))
        (release, release_s), (export, export_s) = typical(releases), typical(exports)
        status = run_measured([*lectern, "status", "--subject", SUBJECT], env)
        assert status.exit_code == 0, status.stdout[-2000:]
        manifest = json.loads((home / "store/releases/scale/manifest.json").read_text())
        return {"db": kind, "videos": n, "fabricate_s": made and round(made, 1),
                "claim100_ms": claim and round(claim * 1000, 1),
                "release_s": round(release_s, 1), "release_cmd_s": round(release.seconds, 1),
                "release_rss_mib": round(max(r.peak_rss_mib for r, _ in releases)),
                "samples": manifest["stats"]["samples"], "release_mib": round(folder_bytes(
                    home / "store/releases/scale") / 2**20, 1),
                "export_s": round(export_s, 1), "export_cmd_s": round(export.seconds, 1),
                "export_rss_mib": round(max(r.peak_rss_mib for r, _ in exports)),
                "export_mib": round(folder_bytes(home / "export") / 2**20, 1),
                "status_s": round(status.seconds, 1), "status_rss_mib": round(status.peak_rss_mib),
                "runs_s": " / ".join(f"{r:.1f}, {e:.1f}" for (_, r), (_, e) in zip(releases, exports))}
    finally:
        if not keep:
            drop(pg_name)
            shutil.rmtree(home, ignore_errors=True)


def typical(runs: list):
    """The median run by its time (the lower middle of an even count)."""
    return sorted(runs, key=lambda run: run[1])[(len(runs) - 1) // 2]


def claim_at_scale(kind: str, n: int, work: Path) -> dict:
    """A claim of 100 and a rerun of 1,000 over N videos' 7N stage rows (the docstring says how they are made)."""
    from statistics import median

    from sqlalchemy import insert, update

    from lectern.recipes import RECIPES
    from lectern.state.catalog import FoundVideo, PointSpec, record_search, sync_subject
    from lectern.state.db import migrate, session_scope
    from lectern.state.models import PENDING, SUCCEEDED, VideoStage
    from lectern.state.transitions import claim_videos, reset_for_rerun

    home = work / f"claim-{kind}-{n}"
    home.mkdir(parents=True)
    url, pg_name = database(kind, home)
    try:
        migrate(url)
        started = time.monotonic()
        with session_scope(url) as session:
            [point] = sync_subject(session, SUBJECT, [PointSpec("Cells", "Cells", "cells")])
        ids = [f"v{i:06d}" for i in range(n)]
        for begin in range(0, n, 2000):
            with session_scope(url) as session:
                record_search(session, point, [FoundVideo(v, f"http://example.org/{v}", f"Lecture {v}", "Cells")
                                               for v in ids[begin:begin + 2000]], {})
        stages = RECIPES["textbook"].stages
        with session_scope(url) as session:
            session.execute(update(VideoStage).values(status=SUCCEEDED))
            for stage in stages[1:]:
                status = PENDING if stage == stages[-1] else SUCCEEDED
                for begin in range(0, n, 10_000):
                    session.execute(insert(VideoStage), [
                        {"video_id": v, "stage": stage, "status": status, "attempts": 0, "metrics": {},
                         "artifacts": {}} for v in ids[begin:begin + 10_000]])
        made = time.monotonic() - started

        def claim_ms(subject: str | None) -> float:
            with session_scope(url) as session:
                began = time.perf_counter()
                assert len(claim_videos(session, stages[-1], "bench", 100, 3600, 3, subject=subject)) == 100
                return (time.perf_counter() - began) * 1000

        claim_ms(SUBJECT)  # the connection and the statement's compilation, once
        with_subject = median(claim_ms(SUBJECT) for _ in range(5))
        without = median(claim_ms(None) for _ in range(5))
        env = {**os.environ, "LECTERN_HOME": str(home), "LECTERN_DB_URL": url,
               "LECTERN_STORE_URL": f"file://{home / 'store'}", "PYTHONPATH": f"{ROOT / 'include'}"}
        status = run_measured([sys.executable, "-m", "lectern", "status", "--subject", SUBJECT], env)
        assert status.exit_code == 0, status.stdout[-2000:]
        with session_scope(url) as session:
            began = time.perf_counter()
            assert reset_for_rerun(session, "ocr", video_ids=ids[-1000:]) == 1000
        rerun = time.perf_counter() - began
        return {"db": kind, "videos": n, "stage_rows": n * len(stages), "fabricate_s": round(made, 1),
                "claim100_subject_ms": round(with_subject, 1), "claim100_ms": round(without, 1),
                "status_s": round(status.seconds, 1), "status_rss_mib": round(status.peak_rss_mib),
                "rerun1000_s": round(rerun, 2)}
    finally:
        drop(pg_name)
        shutil.rmtree(home, ignore_errors=True)


def exponent(rows: list[dict], field: str) -> float | None:
    """The growth exponent k of field ~ N^k between the two largest N."""
    if len(rows) < 2 or not rows[-2][field] or not rows[-1][field]:
        return None
    return math.log(rows[-1][field] / rows[-2][field]) / math.log(rows[-1]["videos"] / rows[-2]["videos"])


def report(results: list[dict], claims: list[dict], repeats: int = 1) -> str:
    columns = ["db", "videos", "fabricate_s", "claim100_ms", "release_s", "release_cmd_s", "release_rss_mib",
               "samples", "release_mib", "export_s", "export_cmd_s", "export_rss_mib", "export_mib", "status_s",
               "status_rss_mib", "runs_s"]
    lines = [f"# Scale benchmark (bench/scale.py)\n\n{time.strftime('%Y-%m-%d')}, {machine()}; "
             f"{CLIPS * KEYFRAMES_PER_CLIP} keyframes a video; release and export until on disk, the median of "
             f"{repeats} (runs_s: each run's release, export).\n",
             "| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    lines += ["| " + " | ".join("-" if r[c] is None else str(r[c]) for c in columns) + " |" for r in results]
    lines += ["\n| db | field | growth exponent (two largest N) | extrapolated to 75K videos |",
              "| --- | --- | --- | --- |"]
    for kind in dict.fromkeys(r["db"] for r in results):
        rows = [r for r in results if r["db"] == kind]
        for field in ("release_s", "export_s", "status_s", "claim100_ms", "release_rss_mib", "export_rss_mib"):
            k = exponent(rows, field)
            if k is not None:
                projected = rows[-1][field] * (PAPER_VIDEOS / rows[-1]["videos"]) ** k
                lines.append(f"| {kind} | {field} | {k:.2f} | {projected:,.{0 if projected >= 100 else 1}f} |")
    if claims:
        columns = list(claims[0])
        lines += ["\nAt the paper's scale (stage rows bulk-inserted, statistics stale):\n",
                  "| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
        lines += ["| " + " | ".join(str(c[column]) for column in columns) + " |" for c in claims]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,4000,16000")
    parser.add_argument("--databases", default="sqlite,postgres")
    parser.add_argument("--claim-videos", type=int, default=77_000, help="the claim at scale (0: not measured)")
    parser.add_argument("--out", help="also write the table here (bench/results/scale.md)")
    parser.add_argument("--keep", metavar="DIR", help="make the homes in DIR and keep them (and their Postgres "
                        "databases), each with env.txt, its settings; a home already there is timed again, not made")
    parser.add_argument("--repeats", type=int, default=1, help="time release and export this many times a home, "
                        "each from nothing, and keep the median")
    args = parser.parse_args()
    results, claims = [], []
    with (contextlib.nullcontext(args.keep) if args.keep else
          tempfile.TemporaryDirectory(prefix="lectern-scale-")) as work:
        for kind in args.databases.split(","):
            if args.claim_videos:
                claims.append(claim_at_scale(kind, args.claim_videos, Path(work)))
                print(json.dumps(claims[-1]), flush=True)
            for n in (int(s) for s in args.sizes.split(",") if s):
                results.append(measure(kind, n, Path(work), keep=bool(args.keep), repeats=args.repeats))
                print(json.dumps(results[-1]), flush=True)
    text = report(results, claims, args.repeats)
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
