"""Airflow wiring shared by the phase DAGs (the only package besides dags/ and plugins/ that imports Airflow):
claim -> run per video -> publish.

Only wiring lives here; what each task does is a call into ``lectern`` (include/lectern). Heavy libraries are
imported inside task bodies, so parsing a DAG file touches no database, store or network.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Asset, Param, TriggerRule, task

from lectern.config import PHASES, Settings, upstream_phase

SETTINGS = Settings.from_env()  # environment only: no I/O at parse time
START = datetime(2025, 1, 1)
TAGS = ["lectern"]
DEFAULT_ARGS = {"retries": 2, "retry_delay": timedelta(seconds=60), "retry_exponential_backoff": True,
                "max_retry_delay": timedelta(minutes=30)}
# Airflow retries of a phase's per-video tasks on transient errors (exit 75); permanent ones fail at once.
PHASE_RETRIES = {"download": 4, "transcribe": 2, "judge": 2, "keyframes": 2, "ocr": 2, "assemble": 2, "caption": 2}

# One Asset per phase: a phase's publish task updates it; the next phase is scheduled on it.
ASSETS = {phase: Asset(name=f"lectern_{phase}", uri=f"lectern://phases/{phase}") for phase in PHASES}


def upstream_asset(phase: str) -> Asset:
    return ASSETS[upstream_phase(phase)]


def phase_params(phase: str | None = None) -> dict[str, Param]:
    """The trigger form of every per-video phase, and the settings `phase` lets a run choose."""
    return {
        **run_setting_params(phase),
        "subject": Param(None, type=["null", "string"], title="Subject",
                         description="Only videos found for this subject (empty: every ready video)."),
        "video_ids": Param([], type="array", items={"type": "string"}, title="Video ids",
                           description="Only these videos (empty: any ready video)."),
        "batch_size": Param(SETTINGS.batch_size, type="integer", minimum=1, maximum=1000, title="Batch size",
                            description="At most this many videos in this run; a backlog is drained by more runs."),
        "force": Param(False, type="boolean", title="Force",
                       description="Rerun the given videos (or subject) even if this phase already finished them."),
        "stale_only": Param(False, type="boolean", title="Stale only",
                            description="Rerun only results computed with another stage version or other settings "
                                        "(e.g. after changing OCR settings: OCR, then assemble; nothing upstream)."),
    }


def run_setting_params(phase: str | None) -> dict[str, Param]:
    if phase != "keyframes":
        return {}
    return {"clip_segmenter": Param(SETTINGS.clip_segmenter, type="string", enum=["asr", "scene"],
                                    title="Clip segmenter",
                                    description="asr: clips close at sentence ends (the paper); scene: clips cut at "
                                                "scene changes (LECTERN_SCENE_* settings).")}


def _owner(context) -> str:
    return f"{context['dag'].dag_id}:{context['run_id']}"


@task
def claim_videos(stage: str, **context) -> list[list[str]]:
    """Lease a batch of videos ready for this phase, grouped into what each mapped task runs."""
    from lectern.phases import claim, task_groups

    params = context["params"]
    settings = Settings.from_env()
    claimed = claim(settings, stage, _owner(context), subject=params.get("subject") or None,
                    video_ids=params.get("video_ids") or None, batch_size=params.get("batch_size"),
                    force=bool(params.get("force")), stale_only=bool(params.get("stale_only")))
    return task_groups(settings, stage, claimed)


@task(map_index_template="{{ task.op_kwargs['label'] }}")
def run_in_worker(label: str, args: list[str], **context) -> int:
    """Run the Lectern CLI in the worker (LECTERN_EXECUTION=local): the same command a pod runs."""
    import os
    import subprocess
    import sys

    from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

    from lectern.phases import run_environment
    from lectern.runner import EXIT_NOT_CLAIMABLE, EXIT_OK, EXIT_TRANSIENT

    command = [sys.executable, "-m", "lectern", *args]
    chosen = {}
    if args[0] == "stage":
        command += ["--lease-owner", _owner(context), "--run-id", context["run_id"],
                    "--map-index", str(context["ti"].map_index)]
        chosen = run_environment(args[1], context["params"])
    print(f"[{label}] $ {' '.join([*(f'{k}={v}' for k, v in chosen.items()), *command])}", flush=True)
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          env={**os.environ, **chosen}) as proc:
        for line in proc.stdout:
            print(line.rstrip(), flush=True)
    if proc.returncode == EXIT_OK:
        return proc.returncode
    if proc.returncode == EXIT_NOT_CLAIMABLE:
        raise AirflowSkipException(f"[{label}] not claimable (already finished, or leased by another run)")
    if proc.returncode == EXIT_TRANSIENT:
        raise RuntimeError(f"[{label}] transient failure; Airflow retries it")
    raise AirflowFailException(f"[{label}] failed permanently (exit {proc.returncode}); see the log above")


def stage_call(stage: str):
    def call(group: list[str]) -> dict:
        return {"label": ", ".join(group), "args": ["stage", stage, "--video-id", *group]}

    return call


def run_stage(stage: str, groups):
    """One mapped task per claimed video (or group of videos), labelled with its video ids, locally or in a pod."""
    if SETTINGS.execution == "kubernetes":
        return run_in_pods(stage, groups)
    from lectern.phases import pool_for

    return run_in_worker.override(task_id="run_stage", pool=pool_for(stage), retries=PHASE_RETRIES[stage]).expand_kwargs(
        groups.map(stage_call(stage)))


def run_in_pods(phase: str, calls):
    """A KubernetesPodOperator per video; its log streams into the mapped task's log (get_logs)."""
    from lectern.phases import pool_for

    return stage_pods(phase, "run_stage", pool_for(phase), PHASE_RETRIES[phase]).expand_kwargs(
        calls.map(pod_call(phase)))


def run_setting_env(phase: str) -> dict[str, str]:
    """The pod environment of the settings a run chooses (templates, rendered from the run's params)."""
    from lectern.phases import RUN_SETTINGS

    return {variable: f"{{{{ params.{param} }}}}" for param, variable in RUN_SETTINGS.get(phase, {}).items()}


def stage_pods(work: str, task_id: str, pool: str, retries: int, **kwargs):
    """The partial KubernetesPodOperator of one kind of stage work (a phase, or metadata scoring): image,
    resources, scheduling, secrets and the model cache from LECTERN_* settings; GPU work starts from the GPU pod
    template. Each mapped pod is labelled in the UI by the video ids that end its arguments."""
    from kubernetes.client import models as k8s
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

    from lectern.pods import MODEL_CACHE, VIDEO_IDS_FROM, pod_settings

    spec = pod_settings(work, SETTINGS)
    volumes, mounts = [], []
    if spec["model_cache_pvc"]:
        volumes = [k8s.V1Volume(name="model-cache", persistent_volume_claim=k8s.V1PersistentVolumeClaimVolumeSource(
            claim_name=spec["model_cache_pvc"]))]
        mounts = [k8s.V1VolumeMount(name="model-cache", mount_path=MODEL_CACHE)]
    options = {"map_index_template": f"{{{{ task.arguments[{VIDEO_IDS_FROM}:] | join(', ') }}}}", **kwargs}
    return KubernetesPodOperator.partial(
        task_id=task_id,
        pool=pool,
        retries=retries,
        name=f"lectern-{work.replace('_', '-')}",
        namespace=spec["namespace"],
        image=spec["image"],
        cmds=spec["cmds"],
        env_vars={**spec["env"], **run_setting_env(work)},
        env_from=[k8s.V1EnvFromSource(secret_ref=k8s.V1SecretEnvSource(name=spec["env_secret"]))],
        container_resources=k8s.V1ResourceRequirements(requests=spec["requests"], limits=spec["limits"]),
        tolerations=[k8s.V1Toleration(**t) for t in spec["tolerations"]],
        node_selector=spec["node_selector"],
        pod_template_file=spec["pod_template_file"],
        # every stage pod runs as the worker image's non-root user, without privilege escalation or capabilities
        security_context=k8s.V1PodSecurityContext(run_as_non_root=True, run_as_user=10001, fs_group=10001),
        container_security_context=k8s.V1SecurityContext(allow_privilege_escalation=False,
                                                         capabilities=k8s.V1Capabilities(drop=["ALL"])),
        volumes=volumes,
        volume_mounts=mounts,
        get_logs=True,
        on_finish_action="delete_succeeded_pod",
        **options,
    )


def pod_call(phase: str):
    from lectern.pods import label_value, pod_settings, stage_arguments

    labels = pod_settings(phase, SETTINGS)["labels"]

    def call(group: list[str]) -> dict:
        # A label selects one video's pod; a pod running several carries them all in its annotation.
        single = {"lectern/video-id": label_value(group[0])} if len(group) == 1 else {}
        return {
            "arguments": stage_arguments(phase, group, "{{ dag.dag_id }}:{{ run_id }}"),
            "labels": {**labels, **single},
            "annotations": {"lectern/video-ids": ",".join(group)},
        }

    return call


@task(trigger_rule=TriggerRule.ALL_DONE)
def summarize(stage: str, groups: list[list[str]]) -> dict:
    """How every claimed video ended this phase (succeeded / rejected / failed, and why)."""
    from lectern.phases import outcome

    return outcome(Settings.from_env(), stage, [video_id for group in groups for video_id in group])


def publish(stage: str, groups, ran):
    """Summarise the run and update the phase's Asset, which schedules the next phase."""
    summary = summarize.override(task_id="publish", outlets=[ASSETS[stage]])(stage, groups)
    ran >> summary
    return summary


def phase_schedule(phase: str):
    """On the previous phase's Asset, and on LECTERN_BACKLOG_CRON (every 6 hours by default) to drain any backlog."""
    from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable

    assets = [upstream_asset(phase)]
    if not SETTINGS.backlog_cron:
        return assets
    return AssetOrTimeSchedule(timetable=CronTriggerTimetable(SETTINGS.backlog_cron, timezone="UTC"), assets=assets)


def dag_args(phase: str) -> dict:
    """What every phase DAG sets the same way."""
    return {
        "dag_id": f"lectern_{phase}",
        "start_date": START,
        "catchup": False,
        "max_active_runs": 1,
        "tags": TAGS + [phase],
        "default_args": DEFAULT_ARGS,
    }


# --- discover --------------------------------------------------------------------------------------


def discover_params() -> dict[str, Param]:
    return {
        "subject": Param("Biology", type="string", minLength=1, title="Subject",
                         description="Subject to discover: its taxonomy is <LECTERN_SUBJECTS_DIR>/<subject>.yaml."),
        "force": Param(False, type="boolean", title="Force",
                       description="Search every knowledge point again, not only the new or changed ones."),
    }


@task
def plan_discovery(**context) -> list[dict]:
    """Load the subject's taxonomy into the state DB; one search call per knowledge point to search."""
    from lectern.phases import prepare_discovery

    params = context["params"]
    points = prepare_discovery(Settings.from_env(), params["subject"], force=bool(params.get("force")))
    return [{"label": path, "args": ["discover", "--point-id", str(point_id)]} for point_id, path in points]


@task
def plan_scoring(**context) -> list[dict]:
    """One call that scores the subject's new search results on metadata (one model load for them all)."""
    subject = context["params"]["subject"]
    return [{"label": subject, "args": ["discover", "--score-only", "--subject", subject]}]


def score_metadata(plan):
    """Metadata scoring loads models: in the worker locally; in Kubernetes mode, in a pod (a GPU pod when an LLM
    judges metadata), its log streamed into the task's."""
    if SETTINGS.execution != "kubernetes":
        return run_in_worker.override(task_id="score_metadata", trigger_rule=TriggerRule.ALL_DONE).expand_kwargs(plan)
    from lectern.phases import GPU_POOL
    from lectern.pods import SCORE_METADATA, needs_gpu

    pool = GPU_POOL if needs_gpu(SCORE_METADATA, SETTINGS) else "default_pool"

    def call(item: dict) -> dict:
        return {"arguments": item["args"], "labels": {"app.kubernetes.io/name": "lectern", "lectern/phase": "discover"}}

    return stage_pods(SCORE_METADATA, "score_metadata", pool, DEFAULT_ARGS["retries"],
                      map_index_template="{{ task.arguments[-1] }}", trigger_rule=TriggerRule.ALL_DONE
                      ).expand_kwargs(plan.map(call))


@task(trigger_rule=TriggerRule.ALL_DONE, outlets=[ASSETS["discover"]])
def publish_discovery(**context) -> dict:
    from lectern.phases import discovery_outcome

    return discovery_outcome(Settings.from_env(), context["params"]["subject"])


# --- release ---------------------------------------------------------------------------------------


def release_params() -> dict[str, Param]:
    return {
        **phase_params(),
        "release": Param(None, type=["null", "string"], pattern="^[A-Za-z0-9_-]{1,64}$", title="Release name",
                         description="Name of the release written after assembling (empty: a UTC timestamp)."),
    }


@task(trigger_rule=TriggerRule.ALL_DONE, outlets=[Asset(name="lectern_release", uri="lectern://releases/latest")])
def write_release(assembled: dict, **context) -> dict:
    """Gather every assembled video's samples into release shards with a manifest (when there is news, or a
    release name was asked for)."""
    from airflow.sdk.exceptions import AirflowSkipException

    from lectern.release import build_release

    params = context["params"]
    if not assembled["counts"].get("succeeded") and not params.get("release"):
        raise AirflowSkipException("no video was assembled in this run: no new release")
    manifest = build_release(Settings.from_env(), name=params.get("release") or None,
                             subject=params.get("subject") or None)
    print(f"release {manifest['release']} at {manifest['location']}: {manifest['stats']}", flush=True)
    return {"release": manifest["release"], "location": manifest["location"], "stats": manifest["stats"]}


# --- backfill ---------------------------------------------------------------------------------------

BACKFILL_DAG_ID = "lectern_backfill_subject"


def backfill_params() -> dict[str, Param]:
    return {
        "subject": Param("Biology", type="string", minLength=1, title="Subject",
                         description="Subject to backfill: discovers its taxonomy's new knowledge points, then runs "
                                     "every phase for its videos until none is left to do."),
        "batch_size": Param(SETTINGS.batch_size, type="integer", minimum=1, maximum=1000, title="Batch size",
                            description="Videos per phase run; a larger backlog takes more rounds."),
        "max_rounds": Param(10, type="integer", minimum=1, maximum=100, title="Most rounds",
                            description="Stop (and report what is left) after this many rounds."),
        "round": Param(1, type="integer", minimum=1, title="Round",
                       description="Which round this run is; the backfill sets it when it continues itself."),
    }


@task(multiple_outputs=True)
def start_round(**context) -> dict:
    """Rows already finished before this round (to tell progress), and each phase's trigger conf."""
    from lectern.backfill import round_confs, subject_backlog

    params = context["params"]
    state = subject_backlog(Settings.from_env(), params["subject"])
    print(f"backfill {params['subject']}, round {params['round']}: ready {state.ready or 'nothing'}, "
          f"in flight {state.waiting or 'nothing'}, {state.finished} rows finished", flush=True)
    return {"finished_before": state.finished, **round_confs(params["subject"], params["batch_size"])}


def run_phase_dag(phase: str, conf):
    """Trigger one phase DAG for the subject and wait (deferred, on the triggerer) until that run ends."""
    from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator

    return TriggerDagRunOperator(
        task_id=f"run_{phase}", trigger_dag_id=f"lectern_{phase}", conf=conf, wait_for_completion=True,
        deferrable=True, poke_interval=SETTINGS.backfill_poll_seconds, fail_when_dag_is_paused=True,
        # a failed phase run does not stop the round: later phases still take what is ready for them
        trigger_rule=TriggerRule.ALL_DONE)


@task(trigger_rule=TriggerRule.ALL_DONE)
def review_round(finished_before: int, **context) -> dict:
    """Drained, another round, or stuck: a stuck backfill fails here, after saying what is stuck and why."""
    from airflow.sdk.exceptions import AirflowFailException

    from lectern.backfill import review_round as review

    params = context["params"]
    report = review(Settings.from_env(), params["subject"], finished_before, params["round"], params["max_rounds"])
    if report["next"] == "stuck":
        raise AirflowFailException(f"backfill of {params['subject']} is stuck: ready {report['ready'] or 'nothing'}, "
                                   f"in flight {report['waiting'] or 'nothing'} (see the log above)")
    return report


@task.short_circuit
def continue_backfill(report: dict, **context) -> dict | None:
    """The next round's conf when there is more to do; nothing (skipping the trigger) when drained."""
    if report["next"] != "again":
        return None
    return {**context["params"], "round": report["round"] + 1}


def next_round(conf):
    """Continue as a new run of this DAG (it starts once this one ends: max_active_runs=1)."""
    from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator

    return TriggerDagRunOperator(task_id="next_round", trigger_dag_id=BACKFILL_DAG_ID, conf=conf)
