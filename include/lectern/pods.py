"""What a stage pod looks like in Kubernetes mode, as plain values (the DAGs turn them into k8s objects)."""

from __future__ import annotations

import re
from pathlib import Path

from lectern.config import Settings
from lectern.pipeline import GPU_STAGES, task_timeout_s
from lectern.stages.judge.llm import is_endpoint

MODEL_CACHE = "/models"
GPU_POD_TEMPLATE = Path(__file__).with_name("k8s") / "gpu-pod-template.yaml"
VIDEO_IDS_FROM = 9  # stage pods' arguments end with the video ids, from this index on
SCORE_METADATA = "score_metadata"  # the discover phase's model work, which runs in a pod too
# A pod that requests a GPU runs its models there: WhisperX, and the LLM/VLM of judges, rewrite, OCR and captions.
GPU_DEVICES = {"LECTERN_ASR_DEVICE": "cuda", "LECTERN_LLM_DEVICE": "cuda"}


def needs_gpu(work: str, settings: Settings) -> bool:
    """GPU phases, and metadata scoring when an LLM judges metadata (title/description embeddings alone run on
    a CPU); but an LLM behind an endpoint (openai:<model>) needs none here: a judge phase whose judges and rewrite
    are all endpoints runs on a CPU."""
    def in_process(model: str | None) -> bool:
        return bool(model) and not is_endpoint(model)

    if work == "judge":
        return any(in_process(model) for model in (*settings.judge_models, settings.rewrite_model))
    if work == SCORE_METADATA:
        return in_process(settings.metadata_judge_model)
    return work in GPU_STAGES


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
    gpu = needs_gpu(phase, settings)
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
                **(GPU_DEVICES if gpu else {}),
                **({"HF_HOME": f"{MODEL_CACHE}/hf", "LECTERN_MODELS_DIR": MODEL_CACHE}
                   if settings.model_cache_pvc else {})},
        "startup_timeout_s": settings.pod_startup_timeout_s,
        "timeout_s": task_timeout_s(phase, settings),
        "model_cache_pvc": settings.model_cache_pvc,
        "labels": {"app.kubernetes.io/name": "lectern", "lectern/phase": phase},
        "pod_template": gpu_pod_template(settings) if gpu else None,
    }


def gpu_pod_template(settings: Settings) -> dict:
    """The GPU pods' base (LECTERN_GPU_POD_TEMPLATE, or k8s/gpu-pod-template.yaml) with LECTERN_GPU_RUNTIME_CLASS
    as its runtimeClassName, or none where that is empty (GKE, and EKS without the GPU Operator, reject one they
    do not have)."""
    import yaml

    template = yaml.safe_load(Path(settings.gpu_pod_template or GPU_POD_TEMPLATE).read_text())
    spec = template.setdefault("spec", {})
    spec.pop("runtimeClassName", None)
    if settings.gpu_runtime_class:
        spec["runtimeClassName"] = settings.gpu_runtime_class
    return template


def stage_arguments(phase: str, video_ids: list[str], owner: str) -> list[str]:
    """The CLI arguments a pod runs for its videos (Airflow templates: the run id and map index are recorded on
    each video's state row, for its log link); the video ids always come last, from VIDEO_IDS_FROM on."""
    arguments = ["stage", phase, "--lease-owner", owner, "--run-id", "{{ run_id }}", "--map-index",
                 "{{ ti.map_index }}", "--video-id", *video_ids]
    assert arguments.index("--video-id") == VIDEO_IDS_FROM - 1
    return arguments
