"""``python -m lectern``: the single entrypoint that pods, the Airflow worker and people all call."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from lectern.config import Settings, configuration_markdown
from lectern.recipes import RECIPES, STAGES


def _setup_logging(verbose: bool, stream=sys.stdout, log_format: str = "text") -> None:
    from lectern.log_format import formatter

    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter(log_format))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler])
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer", "whisperx", "faster_whisper", "lightning",
                  "pytorch_lightning", "sentence_transformers", "httpx", "filelock", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def cmd_stage(args, settings: Settings) -> int:
    from lectern.runner import run_stage_batch

    return run_stage_batch(args.name, args.video_id, settings, owner=args.lease_owner, force=args.force,
                           run_id=args.run_id, map_index=args.map_index)


def cmd_discover(args, settings: Settings) -> int:
    from lectern.discovery import discover_point, score_metadata
    from lectern.phase_tasks import prepare_discovery

    log = logging.getLogger("lectern")
    if args.score_only:
        log.info("metadata scores%s: %s", f" of subject {args.subject}" if args.subject else "",
                 score_metadata(settings, args.subject))
        return 0
    if args.point_id is not None:
        point_ids = [args.point_id]
    elif args.subject:
        point_ids = [pid for pid, _ in prepare_discovery(settings, args.subject, force=args.force)]
    else:
        print("discover needs --subject or --point-id", file=sys.stderr)
        return 2
    for point_id in point_ids:
        result = discover_point(point_id, settings)
        log.info("knowledge point %d: %s", point_id, result)
    if args.subject:
        log.info("metadata scores of subject %s: %s", args.subject, score_metadata(settings, args.subject))
    return 0


STATUS_LISTED = 200  # rows `lectern status` lists under the funnel without ids or --all


def cmd_status(args, settings: Settings) -> int:
    from lectern.arrays import write_array
    from lectern.state.db import session_scope
    from lectern.state.reports import funnel, iter_stage_rows, needing_attention
    from lectern.stats import format_funnel

    with session_scope(settings.db_url) as session:  # rows streamed: a subject may hold the paper's 460K
        if args.json:
            write_array(sys.stdout, ({
                "video_id": r.video_id, "stage": r.stage, "status": r.status, "attempts": r.attempts,
                "reason": r.reason, "error_class": r.error_class, "error_message": r.error_message,
                "artifacts": r.artifacts, "metrics": r.metrics, "run_id": r.run_id, "map_index": r.map_index,
            } for r in iter_stage_rows(session, video_ids=args.video_ids or None, subject=args.subject)))
            return 0
        if args.video_ids or args.all:
            for row in iter_stage_rows(session, video_ids=args.video_ids or None, subject=args.subject):
                _print_row(row, settings, logs=bool(args.video_ids))
            return 0
        # The funnel, then what needs a look (failed, rejected, in flight), STATUS_LISTED rows at most: a subject of
        # the paper's 75K videos answers in about a second.
        print(format_funnel(funnel(session, args.subject)))
        print()
        rows, more = needing_attention(session, args.subject, STATUS_LISTED)
        for row in rows:
            _print_row(row, settings, logs=False)
        if more:
            print(f"... and {more} more failed, rejected or running rows (--all lists every row; --json too)")
    return 0


def _print_row(row, settings: Settings, logs: bool) -> None:
    from lectern.state.reports import why
    from lectern.video_page import task_log_path, task_log_url

    reason = why(row)
    where = f" run={row.run_id} map_index={row.map_index}" if row.run_id else ""
    print(f"{row.video_id:<24} {row.stage:<11} {row.status:<10} attempts={row.attempts}{where}"
          + (f"  {reason}" if reason else ""))
    if logs and row.run_id and row.map_index is not None:
        print(f"{'':<24} log: {task_log_url(settings.airflow_url, row.stage, row.run_id, row.map_index)}")
        print(f"{'':<24}      {task_log_path(row.stage, row.run_id, row.map_index)}")


def cmd_release(args, settings: Settings) -> int:
    from lectern.release import build_for

    manifest = build_for(args.kind, settings, name=args.name, subject=args.subject)
    print(json.dumps({k: manifest[k] for k in ("release", "location", "stats")}, indent=1))
    return 0


def cmd_export(args, settings: Settings) -> int:
    from lectern.export import INTERNVID, export_internvid, export_release
    from lectern.store import store_from_settings

    store = store_from_settings(settings)
    try:
        if args.layout == INTERNVID:
            info = export_internvid(store, args.release, args.destination, force=args.force)
        else:
            info = export_release(store, args.release, args.destination, layout=args.layout, force=args.force)
    except (FileNotFoundError, ValueError) as exc:
        print(f"export: {exc}", file=sys.stderr)
        return 2
    what = (f"{info['pairs']} pairs ({info['score_column']} from {info['score_model']})" if args.layout == INTERNVID
            else f"{info['samples']} samples and {info['images']} images")
    print(f"exported {what} of release {info['release']} to {Path(args.destination).resolve()}")
    return 0


def cmd_baseline(args, settings: Settings) -> int:
    from lectern.baseline import evaluate, format_report, train

    try:
        if args.action == "train":
            result = train(settings, args.release, epochs=args.epochs, test_fraction=args.test_fraction)
        else:
            result = evaluate(settings, args.release)
    except (FileNotFoundError, ValueError) as exc:
        print(f"baseline: {exc}", file=sys.stderr)
        return 2
    print(format_report(result))
    if "model" in result:
        print(f"model: {result['model']}")
    return 0


def cmd_reroot(args, settings: Settings) -> int:
    from lectern.export import reroot

    try:
        info = reroot(args.folder)
    except FileNotFoundError as exc:
        print(f"reroot: {exc} (not a folder written by `lectern export`)", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"reroot: {exc}", file=sys.stderr)
        return 2
    print(f"image paths now start at {info['images_root']}")
    return 0


def cmd_db(args, settings: Settings) -> int:
    from lectern.state.db import current_revision, migrate

    if args.action == "upgrade":
        migrate(settings.db_url)
    print(f"state DB at revision {current_revision(settings.db_url)}")
    return 0


def cmd_store(args, settings: Settings) -> int:
    from lectern.store import store_from_settings

    store = store_from_settings(settings)
    store.ensure_bucket()
    print(f"artifact store ready at {store.url}")
    return 0


def cmd_models(args, settings: Settings) -> int:
    from lectern_dev.tiny_models import build_all

    out = Path(args.out) if args.out else settings.models_dir
    for name, path in build_all(out).items():
        print(f"{name}: {path}")
    return 0


def cmd_demo(args, settings: Settings) -> int:
    from lectern_dev.demo import run_demo

    return run_demo(settings, dags_folder=Path(args.dags_folder) if args.dags_folder else None)


def cmd_ui(args, settings: Settings) -> int:
    from lectern_dev.ui import run_ui

    return run_ui(settings, args.port, demo=args.demo)


def cmd_run(args, settings: Settings) -> int:
    from lectern.local_run import run_environment, run_subject, save_settings

    if args.offline_models:
        from lectern_dev.demo import offline_models
        from lectern_dev.tiny_models import build_all

        print("--offline-models: a real Whisper (tiny.en) and MiniLM, and tiny RANDOM stand-ins for the LLM judges, "
              "the rewrite, captioning and CLIP: the judges' scores mean nothing", file=sys.stderr)
        save_settings(settings.home, offline_models(build_all(settings.models_dir)))
    return run_subject(settings, args.subject, args.release, run_environment(settings.home))


def cmd_taxonomy(args, settings: Settings) -> int:
    from functools import partial

    from lectern import taxonomy
    from lectern.discovery import TaxonomyError, load_subject, subject_file
    from lectern.stages.judge import llm

    path = Path(args.out) if args.out else subject_file(settings, args.subject)
    try:
        if args.action == "check":
            definition = load_subject(path, settings.allow_file_urls)
            subject, manifest = definition.name, definition.manifest
            if manifest is None:
                print(f"{path}: subject {subject}, {len(definition.points)} knowledge points")
                return 0
            summary = manifest.summary()
            print(f"{path}: subject {subject}, manifest {manifest.path}: {summary['rows']} rows, {summary['videos']} "
                  f"videos in {summary['labels']} labels, {summary['duplicates']} duplicate and {summary['malformed']} "
                  "malformed rows (skipped)")
            for problem in manifest.problems:
                print(f"  {problem}")
            return 0
        model = args.model or settings.taxonomy_model
        if path.exists() and not args.force:
            raise TaxonomyError(f"{path} exists; pass --force to replace it")
        print(f"asking {model} for the {args.subject} taxonomy ...", file=sys.stderr)
        ask = partial(llm.generate, model, serving=llm.Serving.from_settings(settings),
                      max_new_tokens=settings.llm_max_new_tokens, system=taxonomy.SYSTEM)
        tree = taxonomy.generate_taxonomy(args.subject, ask, args.courses, args.subcourses, args.points)
        subject, count = taxonomy.write_taxonomy(tree, path, model, overwrite=args.force)
    except TaxonomyError as exc:
        print(f"taxonomy error: {exc}", file=sys.stderr)
        return 2
    print(f"{path}: subject {subject}, {count} knowledge points; review it, then run discovery with subject={subject}")
    return 0


def cmd_forget(args, settings: Settings) -> int:
    from lectern.state.transitions import StillRunning
    from lectern.takedown import take_down

    try:
        done = take_down(settings, args.video_id, args.reason, force=args.force)
    except (KeyError, StillRunning) as exc:
        print(f"forget: {exc.args[0]}", file=sys.stderr)
        return 2
    print(f"{args.video_id}: forgotten ({args.reason}); {len(done['stages'])} stage rows marked, {done['artifacts']} "
          "artifacts removed. No phase will pick it up again and the next release leaves it out.")
    for name in done["releases"]:
        print(f"  release {name}: rebuilt without it")
    for folder in done["exports"]:
        print(f"  export {folder}: written again without it")
    for line in done["left"]:
        print(f"  left to do: {line}")
    return 1 if done["left"] else 0


def cmd_pools(args, settings: Settings) -> int:
    from lectern.phase_tasks import pool_definitions

    print(json.dumps(pool_definitions(settings), indent=1))
    return 0


def cmd_metrics(args, settings: Settings) -> int:
    from lectern.metrics import serve

    serve(settings, args.port, args.address)
    return 0


def cmd_config(args, settings: Settings) -> int:
    print(configuration_markdown(), end="")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lectern", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    for add_commands in (_pipeline_commands, _release_commands, _upkeep_commands, _local_commands,
                         _reference_commands):
        add_commands(sub)
    return parser


def _pipeline_commands(sub) -> None:
    """Running stages and phases, and reading their state."""
    stage = sub.add_parser("stage", help="run one stage for one video (what a pod runs)")
    stage.add_argument("name", choices=STAGES)
    stage.add_argument("--video-id", required=True, nargs="+", metavar="VIDEO_ID",
                       help="one video, or several to run in one process (models load once)")
    stage.add_argument("--lease-owner", help="the DAG run that claimed the video (default: this process)")
    stage.add_argument("--force", action="store_true", help="rerun even if the stage already finished")
    stage.add_argument("--run-id")
    stage.add_argument("--map-index", type=int)
    stage.set_defaults(func=cmd_stage)

    discover = sub.add_parser("discover", help="search a subject's knowledge points (or one point)")
    discover.add_argument("--subject")
    discover.add_argument("--point-id", type=int)
    discover.add_argument("--force", action="store_true")
    discover.add_argument("--score-only", action="store_true",
                          help="only score found videos' metadata (relevance, LLM metadata judge); no search")
    discover.set_defaults(func=cmd_discover)

    status = sub.add_parser("status", help="the funnel and the rows that need a look (failed, rejected, running); "
                                           "with ids, their every row and log links")
    status.add_argument("video_ids", nargs="*")
    status.add_argument("--subject")
    status.add_argument("--all", action="store_true", help="every row, not only those that need a look")
    status.add_argument("--json", action="store_true", help="every row as JSON")
    status.set_defaults(func=cmd_status)


def _release_commands(sub) -> None:
    """Releases: building, exporting, training a baseline on one, moving an export."""
    release = sub.add_parser("release", help="write a release from every assembled (or captioned) video")
    release.add_argument("--name")
    release.add_argument("--subject")
    release.add_argument("--kind", choices=list(RECIPES), default="textbook",
                         help="textbook: the interleaved samples of assembled videos; pairs: the (clip, caption, "
                              "scores) rows of captioned videos")
    release.set_defaults(func=cmd_release)

    export = sub.add_parser("export", help="write a textbook release as a folder the paper's training loader reads "
                                           "(images copied out of the store, absolute paths), or a pairs release "
                                           "in InternVid's columns")
    export.add_argument("release")
    export.add_argument("destination")
    export.add_argument("--layout", choices=["json", "shards", "webdataset", "parquet", "internvid"], default="json",
                        help="json: one multimodal_textbook.json array; shards: JSONL shards with length.json and "
                             "shard_id_range.json; webdataset: tar shards of each sample's JSON and its JPEGs; "
                             "parquet: Parquet shards with each image's bytes inside and a dataset card; "
                             "internvid: a pairs release in InternVid's columns")
    export.add_argument("--force", action="store_true",
                        help="write into a folder that holds files of no earlier export (none of them is removed)")
    export.set_defaults(func=cmd_export)

    baseline = sub.add_parser("baseline", help="the short-video dataset's baseline classifier (description + cover "
                                                "+ video -> category) on a pairs release: train, or evaluate the "
                                                "saved one")
    baseline.add_argument("action", choices=["train", "evaluate"])
    baseline.add_argument("--release", required=True)
    baseline.add_argument("--epochs", type=int, default=300)
    baseline.add_argument("--test-fraction", type=float, default=0.2, help="of each category's videos, held out")
    baseline.set_defaults(func=cmd_baseline)

    reroot = sub.add_parser("reroot", help="after moving an exported folder: point its image paths at the new place")
    reroot.add_argument("folder")
    reroot.set_defaults(func=cmd_reroot)


def _upkeep_commands(sub) -> None:
    """Subjects, takedowns, the state DB, the store and the tiny models."""
    taxonomy = sub.add_parser("taxonomy", help="generate a subject's taxonomy with an LLM, or check a subject file "
                                                "(and its manifest's rows)")
    taxonomy.add_argument("action", choices=["generate", "check"])
    taxonomy.add_argument("subject")
    taxonomy.add_argument("--model", help="transformers id or path (default: LECTERN_TAXONOMY_MODEL)")
    taxonomy.add_argument("--courses", type=int, default=6)
    taxonomy.add_argument("--subcourses", type=int, default=4, help="per course")
    taxonomy.add_argument("--points", type=int, default=8, help="knowledge points per sub-course")
    taxonomy.add_argument("--out", help="YAML file (default: <LECTERN_SUBJECTS_DIR>/<subject>.yaml)")
    taxonomy.add_argument("--force", action="store_true", help="replace an existing file")
    taxonomy.set_defaults(func=cmd_taxonomy)

    forget = sub.add_parser("forget", help="take a video down: remove its artifacts and never process it again")
    forget.add_argument("video_id")
    forget.add_argument("--reason", default="takedown request")
    forget.add_argument("--force", action="store_true", help="even while a stage holds a lease on it")
    forget.set_defaults(func=cmd_forget)

    db = sub.add_parser("db", help="state DB migrations")
    db.add_argument("action", choices=["upgrade", "current"])
    db.set_defaults(func=cmd_db)

    store = sub.add_parser("store", help="create the artifact store's bucket (or directory) if missing")
    store.add_argument("action", choices=["init"])
    store.set_defaults(func=cmd_store)

    models = sub.add_parser("models", help="build the tiny local models used by tests and the demo")
    models.add_argument("action", choices=["build-tiny"])
    models.add_argument("--out")
    models.set_defaults(func=cmd_models)


def _local_commands(sub) -> None:
    """Lectern on this machine: the demo, a subject's run, the UI."""
    demo = sub.add_parser("demo", help="generate the demo corpus and run every phase DAG through Airflow")
    demo.add_argument("--dags-folder")
    demo.set_defaults(func=cmd_demo)

    run = sub.add_parser("run", help="every phase DAG for a subject through a local Airflow, with live progress; "
                                     "then the summary, the release and its export (again: resumes, redoes nothing)")
    run.add_argument("subject", help="its name, as in <LECTERN_SUBJECTS_DIR>/<subject>.yaml")
    run.add_argument("--release", help="the release's name (default: the subject's, as a file name)")
    run.add_argument("--offline-models", action="store_true",
                     help="use the models that load offline here (kept in the home for later runs and `lectern ui`): "
                          "Whisper tiny.en, MiniLM, and tiny random stand-ins for the LLMs, captioning and CLIP")
    run.set_defaults(func=cmd_run)

    ui = sub.add_parser("ui", help="this home's Lectern in a running Airflow UI on loopback, until Ctrl-C")
    ui.add_argument("--port", type=int, default=8080)
    ui.add_argument("--demo", action="store_true",
                    help="also serve the demo corpus and write its subjects (Biology, and Biochemistry to backfill)")
    ui.set_defaults(func=cmd_ui)


def _reference_commands(sub) -> None:
    """What an operator imports or reads: the pools, every setting, the metrics."""
    pools = sub.add_parser("pools", help="print Lectern's Airflow pools as JSON for `airflow pools import FILE`")
    pools.set_defaults(func=cmd_pools)

    config = sub.add_parser("config", help="every setting, its default and meaning (docs/configuration.md)")
    config.set_defaults(func=cmd_config)

    metrics = sub.add_parser("metrics", help="serve Lectern's metrics for Prometheus (from the state DB) until "
                                             "stopped: videos per stage and state, rejections, failures, seconds")
    metrics.add_argument("--port", type=int, default=9464)
    metrics.add_argument("--address", default="0.0.0.0")
    metrics.set_defaults(func=cmd_metrics)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except ValueError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    # run: stdout is its summary
    _setup_logging(args.verbose, sys.stderr if args.command == "run" else sys.stdout, settings.log_format)
    try:
        return args.func(args, settings)
    except ModuleNotFoundError as exc:
        if exc.name != "lectern_dev":
            raise
        # demo, ui, models and run --offline-models are the checkout's (its demo corpus, tiny models, servers)
        print(f"lectern {args.command} needs a checkout of Lectern: its dev harness (lectern_dev) is not in the "
              "installed package. Clone the repository and run `make demo` there.", file=sys.stderr)
        return 2
