"""Kubernetes mode: pod specs rendered without a cluster (build_pod_request_obj(dry_run=True))."""

import importlib
import os

import pytest

from lectern.pipeline import GPU_STAGES
from tests.conftest import ROOT


def reload_wiring() -> None:
    """lectern_airflow read its settings when imported: import it again, its parts in the order they import each
    other."""
    import lectern_airflow

    for part in ("assets", "params", "execution", "phase_group", "discover", "release", "backfill"):
        importlib.reload(importlib.import_module(f"lectern_airflow.{part}"))
    importlib.reload(lectern_airflow)


@pytest.fixture(scope="module")
def kubernetes_dags():
    from airflow.dag_processing.dagbag import DagBag

    previous = os.environ.get("LECTERN_EXECUTION")
    os.environ.update({"LECTERN_EXECUTION": "kubernetes", "LECTERN_WORKER_IMAGE": "registry.local/lectern-worker:1",
                       "LECTERN_GPU_NODE_SELECTOR": '{"nvidia.com/gpu.product": "H200"}',
                       "LECTERN_K8S_MODEL_CACHE_PVC": "lectern-models", "LECTERN_GPU_POD_MEMORY": "48Gi",
                       "LECTERN_METADATA_JUDGE_MODEL": "Qwen/Qwen2.5-7B-Instruct"})
    reload_wiring()
    try:
        yield DagBag(dag_folder=str(ROOT / "dags"))
    finally:
        os.environ.pop("LECTERN_WORKER_IMAGE")
        os.environ.pop("LECTERN_GPU_NODE_SELECTOR")
        os.environ.pop("LECTERN_K8S_MODEL_CACHE_PVC")
        os.environ.pop("LECTERN_GPU_POD_MEMORY")
        os.environ.pop("LECTERN_METADATA_JUDGE_MODEL")
        if previous is None:
            os.environ.pop("LECTERN_EXECUTION")
        else:
            os.environ["LECTERN_EXECUTION"] = previous
        reload_wiring()


def render(bag, phase, video_id):
    import lectern_airflow

    mapped = bag.dags[f"lectern_{phase}"].get_task("run_stage")
    group = video_id if isinstance(video_id, list) else [video_id]
    operator = mapped.unmap(lectern_airflow.pod_call(phase)(group))
    return operator, operator.build_pod_request_obj(dry_run=True)


@pytest.mark.parametrize("phase", GPU_STAGES)
def test_gpu_phases_request_a_gpu(kubernetes_dags, phase):
    operator, pod = render(kubernetes_dags, phase, "-0Vd8W3zB1M")
    container = pod.spec.containers[0]
    assert container.image == "registry.local/lectern-worker:1"
    assert container.resources.limits["nvidia.com/gpu"] == "1"
    assert container.resources.requests["memory"] == "48Gi"
    volumes = {v.name: v for v in pod.spec.volumes}
    assert volumes["model-cache"].persistent_volume_claim.claim_name == "lectern-models"
    mounts = {m.name: m.mount_path for m in container.volume_mounts}
    assert mounts == {"model-cache": "/models", "dshm": "/dev/shm"}  # the second from the GPU pod template
    assert volumes["dshm"].empty_dir.medium == "Memory"
    assert pod.spec.runtime_class_name == "nvidia" and pod.spec.security_context.run_as_non_root
    assert {e.name: e.value for e in container.env}["HF_HOME"] == "/models/hf"
    assert any(t.key == "nvidia.com/gpu" and t.effect == "NoSchedule" for t in pod.spec.tolerations)
    assert pod.spec.node_selector == {"nvidia.com/gpu.product": "H200"}
    assert container.command == ["python", "-m", "lectern"]
    assert container.args[:3] == ["stage", phase, "--lease-owner"]
    # the state row records the run id and map index (rendered by Airflow at run time) for the log link
    assert container.args[4:] == ["--run-id", "{{ run_id }}", "--map-index", "{{ ti.map_index }}", "--video-id",
                                  "-0Vd8W3zB1M"]
    assert pod.metadata.labels["lectern/video-id"] == "v-0Vd8W3zB1M"  # a valid label value
    assert pod.metadata.annotations["lectern/video-ids"] == "-0Vd8W3zB1M"  # the exact id
    assert pod.metadata.labels["lectern/phase"] == phase
    assert container.env_from[0].secret_ref.name == "lectern-env"
    assert operator.map_index_template == "{{ task.arguments[9:] | join(', ') }}"
    env = {e.name: e.value for e in container.env}
    assert (env["LECTERN_ASR_DEVICE"], env["LECTERN_LLM_DEVICE"]) == ("cuda", "cuda")  # a GPU pod uses its GPU


def test_pods_keep_the_stage_exit_codes_and_have_timeouts(kubernetes_dags):
    """Exit 3 (not claimable) skips; pods are deferred while they run; a cold GPU node gets time to start the
    image; a hung stage is stopped (pod deadline, task timeout) after its videos' allowance."""
    from datetime import timedelta

    operator, pod = render(kubernetes_dags, "transcribe", ["a1", "b2"])
    assert operator.skip_on_exit_code == [3] and operator.deferrable
    assert operator.startup_timeout_seconds == 1800
    per_task = 7200 * 4  # transcribe's default per video, LECTERN_VIDEOS_PER_TASK videos
    assert pod.spec.active_deadline_seconds == per_task
    assert operator.execution_timeout == timedelta(seconds=per_task + 1800)
    _, download = render(kubernetes_dags, "download", "abc123")
    assert download.spec.active_deadline_seconds == 1800
    env = {e.name for e in download.spec.containers[0].env}
    assert "LECTERN_ASR_DEVICE" not in env  # a CPU pod keeps the configured devices


def test_map_index_label_lists_every_video_of_a_pod(kubernetes_dags):
    from jinja2 import Template

    operator, pod = render(kubernetes_dags, "transcribe", ["a1", "b2", "c3"])
    assert pod.spec.containers[0].args[9:] == ["a1", "b2", "c3"]
    assert Template(operator.map_index_template).render(task=operator) == "a1, b2, c3"
    assert "lectern/video-id" not in pod.metadata.labels  # a label would name only one of them
    assert pod.metadata.annotations["lectern/video-ids"] == "a1,b2,c3"


@pytest.mark.parametrize("phase", ["download", "keyframes", "ocr", "assemble"])
def test_cpu_phases_do_not(kubernetes_dags, phase):
    _, pod = render(kubernetes_dags, phase, "abc123")
    container = pod.spec.containers[0]
    assert "nvidia.com/gpu" not in (container.resources.limits or {})
    assert not pod.spec.tolerations and pod.spec.runtime_class_name is None  # no GPU pod template
    assert container.args[-2:] == ["--video-id", "abc123"] and pod.metadata.labels["lectern/video-id"] == "abc123"


def test_a_keyframes_pod_takes_the_clip_segmenter_its_run_chose(kubernetes_dags):
    operator, pod = render(kubernetes_dags, "keyframes", "abc123")
    env = {e.name: e.value for e in pod.spec.containers[0].env}
    assert env["LECTERN_CLIP_SEGMENTER"] == "{{ params.clip_segmenter }}"  # rendered from the run's params
    assert "env_vars" in operator.template_fields
    _, ocr = render(kubernetes_dags, "ocr", "abc123")
    assert "LECTERN_CLIP_SEGMENTER" not in {e.name for e in ocr.spec.containers[0].env}


@pytest.mark.parametrize("phase", ["download", "transcribe", "assemble"])
def test_every_stage_pod_runs_as_non_root(kubernetes_dags, phase):
    _, pod = render(kubernetes_dags, phase, "abc123")
    assert pod.spec.security_context.run_as_non_root and pod.spec.security_context.run_as_user == 10001
    container = pod.spec.containers[0].security_context
    assert container.allow_privilege_escalation is False and container.capabilities.drop == ["ALL"]


def test_metadata_scoring_runs_in_a_pod(kubernetes_dags):
    from jinja2 import Template

    mapped = kubernetes_dags.dags["lectern_discover"].get_task("score_metadata")
    operator = mapped.unmap({"arguments": ["discover", "--score-only", "--subject", "Biology"],
                             "labels": {"lectern/phase": "discover"}})
    pod = operator.build_pod_request_obj(dry_run=True)
    container = pod.spec.containers[0]
    assert type(operator).__name__ == "StagePodOperator" and operator.get_logs
    assert container.args == ["discover", "--score-only", "--subject", "Biology"]
    # an LLM judges metadata here (LECTERN_METADATA_JUDGE_MODEL): a GPU pod, in the GPU pool
    assert container.resources.limits["nvidia.com/gpu"] == "1" and mapped.pool == "lectern_gpu"
    assert Template(operator.map_index_template).render(task=operator) == "Biology"


def test_gpu_pod_template_is_a_valid_pod():
    from airflow.providers.cncf.kubernetes.pod_generator import PodGenerator

    from lectern.pods import GPU_POD_TEMPLATE

    pod = PodGenerator.deserialize_model_file(str(GPU_POD_TEMPLATE))
    assert pod.spec.containers[0].name == "base"  # the name the PodOperator merges its container into
    assert pod.spec.containers[0].resources.limits == {"nvidia.com/gpu": "1"}
    assert pod.spec.restart_policy == "Never"


def test_llms_behind_an_endpoint_need_no_gpu_in_the_pod():
    from lectern.config import Settings
    from lectern.pods import SCORE_METADATA, needs_gpu, pod_settings

    in_process = Settings.from_env({"LECTERN_METADATA_JUDGE_MODEL": "Qwen/Qwen2.5-7B-Instruct"})
    assert needs_gpu("judge", in_process) and needs_gpu(SCORE_METADATA, in_process)
    served = Settings.from_env({"LECTERN_JUDGE_MODELS": "openai:llama-3-8b-instruct,openai:deepseek-chat@https://x/v1",
                                "LECTERN_REWRITE_MODEL": "openai:llama-3-8b-instruct",
                                "LECTERN_METADATA_JUDGE_MODEL": "openai:llama-3-8b-instruct",
                                "LECTERN_LLM_BASE_URL": "http://vllm:8000/v1"})
    assert not needs_gpu("judge", served) and not needs_gpu(SCORE_METADATA, served)
    assert "nvidia.com/gpu" not in pod_settings("judge", served)["limits"]
    one_local = Settings.from_env({"LECTERN_JUDGE_MODELS": "openai:llama-3-8b-instruct",
                                   "LECTERN_REWRITE_MODEL": "Qwen/Qwen2.5-7B-Instruct"})
    assert needs_gpu("judge", one_local) and needs_gpu("transcribe", served)  # the rewrite runs here: a GPU


def test_the_runtime_class_is_a_setting():
    """GKE, and EKS without the GPU Operator, reject runtimeClassName nvidia: empty leaves none; a template of
    one's own gets the setting's."""
    from lectern.config import Settings
    from lectern.pods import pod_settings

    assert pod_settings("transcribe", Settings.from_env({}))["pod_template"]["spec"]["runtimeClassName"] == "nvidia"
    gke = pod_settings("transcribe", Settings.from_env({"LECTERN_GPU_RUNTIME_CLASS": ""}))["pod_template"]
    assert "runtimeClassName" not in gke["spec"] and gke["spec"]["containers"][0]["name"] == "base"
    assert pod_settings("ocr", Settings.from_env({}))["pod_template"] is None  # a CPU pod: no GPU template
