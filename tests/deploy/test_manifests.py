"""deploy/k8s, what stage pods need besides Airflow: every object valid for the Kubernetes API (its schemas, strict:
an unknown field fails), named as Lectern's defaults name them, the Role granting what the KubernetesPodOperator
does. test_kubernetes_mode.py applies them to the emulated cluster and runs its phases' pods with them."""

from __future__ import annotations

import kubernetes_validate
import pytest
import yaml

from lectern.config import VARIABLES, Settings
from tests.conftest import ROOT

KUBERNETES = "1.33"
MANIFESTS = ROOT / "deploy" / "k8s"


def manifests() -> list[tuple[str, dict]]:
    return [(path.name, document) for path in sorted(MANIFESTS.glob("*.yaml"))
            for document in yaml.safe_load_all(path.read_text()) if document]


@pytest.mark.parametrize("name, manifest", manifests(), ids=lambda value: value if isinstance(value, str) else "")
def test_every_object_is_valid_for_the_kubernetes_api(name, manifest):
    kubernetes_validate.validate(manifest, KUBERNETES, strict=True)


def test_the_schema_check_fails_on_a_misspelt_field():
    claim = next(manifest for _, manifest in manifests() if manifest["kind"] == "PersistentVolumeClaim")
    claim = {**claim, "spec": {**claim["spec"], "accesModes": claim["spec"]["accessModes"]}}
    with pytest.raises(kubernetes_validate.ValidationError, match="accesModes"):
        kubernetes_validate.validate(claim, KUBERNETES, strict=True)


def test_the_objects_are_the_ones_lectern_names():
    settings = Settings.from_env({})
    by_kind = {manifest["kind"]: manifest for _, manifest in manifests()}
    assert by_kind["Namespace"]["metadata"]["name"] == settings.k8s_namespace
    for kind in ("Secret", "PersistentVolumeClaim", "Role", "RoleBinding", "Deployment", "Service"):
        assert by_kind[kind]["metadata"]["namespace"] == settings.k8s_namespace, kind
    assert by_kind["Secret"]["metadata"]["name"] == settings.k8s_env_secret
    secret_keys = set(by_kind["Secret"]["stringData"])
    assert {"LECTERN_DB_URL", "LECTERN_STORE_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= secret_keys
    assert secret_keys <= set(VARIABLES) | {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    assert "ReadWriteMany" in by_kind["PersistentVolumeClaim"]["spec"]["accessModes"]  # pods on several nodes
    vllm = by_kind["Deployment"]["spec"]["template"]["spec"]
    assert vllm["volumes"][0]["persistentVolumeClaim"]["claimName"] == by_kind["PersistentVolumeClaim"]["metadata"][
        "name"]


def test_the_role_grants_what_the_pod_operator_does():
    """Create, watch, read the log of and delete a pod; read its events when it fails to start."""
    role = next(manifest for _, manifest in manifests() if manifest["kind"] == "Role")
    granted = {(resource, verb) for rule in role["rules"] for resource in rule["resources"] for verb in rule["verbs"]}
    needed = {("pods", verb) for verb in ("create", "get", "list", "watch", "delete", "patch")} | {
        ("pods/log", "get"), ("events", "list")}
    assert needed <= granted
    binding = next(manifest for _, manifest in manifests() if manifest["kind"] == "RoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
