"""Where a stage runs: the Lectern CLI as a subprocess of the Airflow worker (LECTERN_EXECUTION=local), or the
same command in a KubernetesPodOperator pod (kubernetes), one mapped task per video or group of videos."""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import task

from lectern.pipeline import pool_for, run_variables, stage_spec, task_timeout_s
from lectern.recipes import STAGES
from lectern_airflow.assets import SETTINGS


def lease_owner(context) -> str:
    return f"{context['dag'].dag_id}:{context['run_id']}"


@task(map_index_template="{{ task.op_kwargs['label'] }}")
def run_in_worker(label: str, args: list[str], **context) -> int:
    """Run the Lectern CLI in the worker (LECTERN_EXECUTION=local): the same command a pod runs."""
    import os
    import subprocess
    import sys

    from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

    from lectern.phase_tasks import trigger_environment
    from lectern.runner import EXIT_NOT_CLAIMABLE, EXIT_OK, EXIT_TRANSIENT

    command = [sys.executable, "-m", "lectern", *args]
    chosen = {}
    if args[0] == "stage":
        command += ["--lease-owner", lease_owner(context), "--run-id", context["run_id"],
                    "--map-index", str(context["ti"].map_index)]
        chosen = trigger_environment(args[1], context["params"])
    print(f"[{label}] $ {' '.join([*(f'{k}={v}' for k, v in chosen.items()), *command])}", flush=True)
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          env={**os.environ, **chosen}) as proc:
        try:
            for line in proc.stdout:
                print(line.rstrip(), flush=True)
        except BaseException:  # the task's execution_timeout, or the task killed: the stage goes with it
            proc.kill()
            raise
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


def run_videos(stage: str, groups):
    """One mapped task per claimed video (or group of videos), labelled with its video ids, locally or in a pod
    (task id run_stage)."""
    if SETTINGS.execution == "kubernetes":
        return run_in_pods(stage, groups)
    # Airflow retries transient failures (exit 75) as often as the stage's spec says; permanent ones fail at once.
    return run_in_worker.override(task_id="run_stage", pool=pool_for(stage), retries=stage_spec(stage).retries,
                                  execution_timeout=timedelta(seconds=task_timeout_s(stage, SETTINGS))
                                  ).expand_kwargs(groups.map(stage_call(stage)))


def run_in_pods(phase: str, calls):
    """A stage pod per video (or group); its log streams into the mapped task's log (get_logs)."""
    return stage_pods(phase, "run_stage", pool_for(phase), stage_spec(phase).retries).expand_kwargs(
        calls.map(pod_call(phase)))


def run_setting_env(phase: str) -> dict[str, str]:
    """The pod environment of the settings a run chooses (templates, rendered from the run's params)."""
    if phase not in STAGES:  # metadata scoring: no run settings
        return {}
    return {variable: f"{{{{ params.{param} }}}}" for param, variable in run_variables(phase).items()}


def stage_pods(work: str, task_id: str, pool: str, retries: int, **kwargs):
    """The partial KubernetesPodOperator of one kind of stage work (a phase, or metadata scoring): image,
    resources, scheduling, secrets and the model cache from LECTERN_* settings; GPU work starts from the GPU pod
    template. Each mapped pod is labelled in the UI by the video ids that end its arguments."""
    from kubernetes.client import models as k8s

    from lectern.pods import MODEL_CACHE, VIDEO_IDS_FROM, pod_settings
    from lectern.runner import EXIT_NOT_CLAIMABLE
    from lectern_airflow.pod_operator import StagePodOperator

    pod = pod_settings(work, SETTINGS)
    volumes, mounts = [], []
    if pod["model_cache_pvc"]:
        volumes = [k8s.V1Volume(name="model-cache", persistent_volume_claim=k8s.V1PersistentVolumeClaimVolumeSource(
            claim_name=pod["model_cache_pvc"]))]
        mounts = [k8s.V1VolumeMount(name="model-cache", mount_path=MODEL_CACHE)]
    options = {"map_index_template": f"{{{{ task.arguments[{VIDEO_IDS_FROM}:] | join(', ') }}}}", **kwargs}
    return StagePodOperator.partial(
        task_id=task_id,
        pool=pool,
        retries=retries,
        # The triggerer watches a running pod: no worker slot is held (the pools count deferred tasks).
        deferrable=True,
        skip_on_exit_code=EXIT_NOT_CLAIMABLE,
        startup_timeout_seconds=pod["startup_timeout_s"],
        active_deadline_seconds=pod["timeout_s"],
        execution_timeout=timedelta(seconds=pod["timeout_s"] + pod["startup_timeout_s"]),
        name=f"lectern-{work.replace('_', '-')}",
        namespace=pod["namespace"],
        image=pod["image"],
        cmds=pod["cmds"],
        env_vars={**pod["env"], **run_setting_env(work)},
        env_from=[k8s.V1EnvFromSource(secret_ref=k8s.V1SecretEnvSource(name=pod["env_secret"]))],
        container_resources=k8s.V1ResourceRequirements(requests=pod["requests"], limits=pod["limits"]),
        tolerations=[k8s.V1Toleration(**t) for t in pod["tolerations"]],
        node_selector=pod["node_selector"],
        pod_template_dict=pod["pod_template"],
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
