"""What a stage pod looks like in Kubernetes mode, as plain values (the DAGs turn them into k8s objects)."""

from __future__ import annotations

import re

from lectern.config import GPU_STAGES, Settings

MODEL_CACHE = "/models"


def label_value(value: str) -> str:
    """A Kubernetes label value: <= 63 of [A-Za-z0-9_.-], starting and ending alphanumeric."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]", "_", value)[:61]
    if cleaned and not cleaned[0].isalnum():
        cleaned = "v" + cleaned
    if cleaned and not cleaned[-1].isalnum():
        cleaned = cleaned + "0"
    return cleaned or "none"


def pod_settings(phase: str, settings: Settings) -> dict:
    """Image, command, resources, scheduling and environment of the pods of one phase."""
    gpu = phase in GPU_STAGES
    requests = {"cpu": "1", "memory": settings.gpu_pod_memory if gpu else settings.pod_memory}
    limits = {"memory": requests["memory"]}
    if gpu:
        limits["nvidia.com/gpu"] = str(settings.gpu_count)
    return {
        "image": settings.worker_image,
        "namespace": settings.k8s_namespace,
        "cmds": ["python", "-m", "lectern"],
        "requests": requests,
        "limits": limits,
        "tolerations": settings.gpu_tolerations if gpu else [],
        "node_selector": settings.gpu_node_selector if gpu else {},
        "env_secret": settings.k8s_env_secret,
        # Non-secret settings travel as plain env; secrets (DB URL with password, AWS keys) come from env_secret.
        "env": {"LECTERN_EXECUTION": "kubernetes", "OMP_THREAD_LIMIT": "1",
                **({"HF_HOME": f"{MODEL_CACHE}/hf", "LECTERN_MODELS_DIR": MODEL_CACHE} if settings.model_cache_pvc else {})},
        "model_cache_pvc": settings.model_cache_pvc,
        "labels": {"app.kubernetes.io/name": "lectern", "lectern/phase": phase},
    }


def stage_arguments(phase: str, video_ids: list[str], owner: str) -> list[str]:
    """The CLI arguments a pod runs for its videos; the video ids always come last, from index 5 on."""
    return ["stage", phase, "--lease-owner", owner, "--video-id", *video_ids]
