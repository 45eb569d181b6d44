"""An emulated Kubernetes cluster for the Kubernetes-mode tests: kmock's KubernetesEmulator serves the API (pods,
events, their state in memory) on loopback, and a small fake kubelet runs each pod created there: its container's
command as a local process with the pod's environment, its status moved Pending -> Running -> Succeeded/Failed with
the container's real exit code, and its output served as the pod's log. What the KubernetesPodOperator sees is what
it would see of a cluster, through its own clients (sync and async) and a kubeconfig."""

from __future__ import annotations

import asyncio
import base64
import datetime
import json
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable

import aiohttp.web
import kmock


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _selected(labels: dict, selector: str) -> bool:
    """Does a pod with `labels` match a label selector (k=v, k!=v, k, !k, comma-separated)?"""
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = term.split("=", 1)
            if labels.get(key.rstrip("=")) != value:
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


class _Emulator(kmock.KubernetesEmulator):
    """kmock's emulator, with what a pod's client needs beyond stored objects: label selectors on lists, and the
    log subresource (served from the fake kubelet's record)."""

    logs: dict = {}

    async def _handle(self, request):
        if request.subresource == "log":
            lines = self.logs.get((request.namespace, request.name), [])
            stamped = request.params.get("timestamps", "").lower() == "true"
            body = "".join(f"{stamp} {line}\n" if stamped else f"{line}\n" for stamp, line in lines)
            return aiohttp.web.Response(text=body, content_type="text/plain")
        return await super()._handle(request)

    async def _serve_list(self, request):
        listing = await super()._serve_list(request)
        selector = request.params.get("labelSelector")
        if selector:
            listing["items"] = [item for item in listing["items"]
                                if _selected(item.get("metadata", {}).get("labels") or {}, selector)]
        return listing


class EmulatedCluster:
    """with EmulatedCluster(tmp_path) as cluster: the API on loopback, `cluster.kubeconfig` to reach it,
    `cluster.apply(manifest)` to create objects there, and a kubelet that runs each pod with the keys of the
    Secrets its envFrom names, read from the API (a pod whose Secret or claim is missing waits, as on a node).
    `before_start(pod)` runs before a pod's process starts (a takedown racing a scheduled pod, say); `node_env` is
    what this node adds to every pod (a node without a GPU: its devices)."""

    def __init__(self, folder: Path, before_start: Callable[[dict], None] | None = None,
                 node_env: dict[str, str] | None = None):
        self.folder, self.before_start, self.node_env = folder, before_start, node_env or {}
        self.kubeconfig = folder / "kubeconfig"
        self.created: dict[tuple[str, str], dict] = {}  # every pod ever created, as created
        self.exit_codes: dict[tuple[str, str], int] = {}
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._processes: dict[tuple[str, str], subprocess.Popen] = {}

    # --- the API server

    def __enter__(self) -> "EmulatedCluster":
        logging.getLogger("aiohttp.access").setLevel(logging.WARNING)  # the kubelet polls: a line per poll
        threading.Thread(target=self._loop.run_until_complete, args=(self._serve(),), daemon=True).start()
        if not self._ready.wait(30):
            raise RuntimeError("the Kubernetes emulator did not start")
        self.kubeconfig.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "emulated",
            "clusters": [{"name": "emulated", "cluster": {"server": self.url}}],
            "users": [{"name": "tester", "user": {"token": "emulated"}}],
            "contexts": [{"name": "emulated", "context": {"cluster": "emulated", "user": "tester",
                                                          "namespace": "lectern"}}]}))
        threading.Thread(target=self._kubelet, daemon=True).start()
        return self

    def __exit__(self, *_) -> None:
        self._stop.set()
        for process in self._processes.values():
            process.kill()
        time.sleep(0.3)

    async def _serve(self) -> None:
        async with _Emulator() as handler, kmock.Server(handler) as server:
            handler.logs = {}
            for resource in ("v1/pods", "v1/events", "v1/secrets", "v1/namespaces", "v1/persistentvolumeclaims"):
                handler.resources[resource] = {}
            self.handler, self.url = handler, str(server.url).rstrip("/")
            self._ready.set()
            while not self._stop.is_set():
                await asyncio.sleep(0.05)

    def apply(self, manifest: dict) -> dict:
        """Create one namespaced object (a manifest's document) through the API, as `kubectl apply` would."""
        group_version = manifest["apiVersion"]
        prefix = f"/api/{group_version}" if "/" not in group_version else f"/apis/{group_version}"
        plural = {"PersistentVolumeClaim": "persistentvolumeclaims", "RoleBinding": "rolebindings"}.get(
            manifest["kind"], manifest["kind"].lower() + "s")
        path = f"{prefix}/namespaces/{manifest['metadata']['namespace']}/{plural}"
        return self._call(self._post(path, manifest))

    async def _post(self, path: str, body: dict) -> dict:
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{self.url}{path}", json=body) as response:
                response.raise_for_status()
                return await response.json()

    async def _get(self, path: str) -> dict | None:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{self.url}{path}") as response:
                return None if response.status == 404 else await response.json()

    def _call(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(30)

    def pods(self) -> dict[tuple[str, str], dict]:
        """The pods the API holds now (deleted ones gone), by (namespace, name)."""
        listing = self._call(self._list())
        return {(p["metadata"].get("namespace"), p["metadata"]["name"]): p for p in listing}

    async def _list(self) -> list[dict]:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{self.url}/api/v1/pods") as response:
                return (await response.json())["items"]

    async def _patch_status(self, namespace: str, name: str, status: dict) -> None:
        async with aiohttp.ClientSession() as session:
            await session.patch(f"{self.url}/api/v1/namespaces/{namespace}/pods/{name}/status",
                                json={"status": status},
                                headers={"Content-Type": "application/merge-patch+json"})

    # --- the kubelet

    def _kubelet(self) -> None:
        while not self._stop.is_set():
            try:
                pods = self.pods()
            except Exception:  # the loop is going away
                return
            for key, pod in pods.items():
                if key not in self.created:
                    self.created[key] = pod
                    threading.Thread(target=self._run_pod, args=(key, pod), daemon=True).start()
            for key, process in list(self._processes.items()):
                if key not in pods and process.poll() is None:
                    process.kill()  # deleted while running
            time.sleep(0.1)

    def _status(self, phase: str, state: dict) -> dict:
        return {"phase": phase, "conditions": [{"type": "Ready", "status": str(phase == "Running")}],
                "containerStatuses": [{"name": "base", "ready": phase == "Running", "restartCount": 0,
                                       "image": "lectern-worker", "imageID": "", "state": state}]}

    def _run_pod(self, key: tuple[str, str], pod: dict) -> None:
        namespace, name = key
        container = pod["spec"]["containers"][0]
        command = [*container.get("command", []), *container.get("args", [])]
        if command[:1] == ["python"]:
            command[0] = sys.executable  # the worker image's python: this venv's
        secrets, missing = {}, []
        for source in container.get("envFrom", []):
            secret_name = (source.get("secretRef") or {}).get("name")
            secret = self._call(self._get(f"/api/v1/namespaces/{namespace}/secrets/{secret_name}"))
            if secret is None:
                missing.append(f'secret "{secret_name}" not found')
                continue
            secrets.update({k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()})
            secrets.update(secret.get("stringData") or {})  # as applied (the API server would encode it)
        for volume in pod["spec"].get("volumes") or []:
            claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
            if claim and self._call(self._get(f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/{claim}")) \
                    is None:
                missing.append(f'persistentvolumeclaim "{claim}" not found')
        if missing:  # a node waits for them: the pod never starts
            self._call(self._patch_status(namespace, name, self._status("Pending", {"waiting": {
                "reason": "CreateContainerConfigError", "message": "; ".join(missing)}})))
            return
        env = {**os.environ, **secrets,
               **{e["name"]: e.get("value", "") for e in container.get("env", []) if "value" in e},
               **self.node_env}
        self._call(self._patch_status(namespace, name, self._status("Pending", {"waiting": {"reason": "Pulling"}})))
        if self.before_start:
            self.before_start(pod)
        started = _now()
        process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self._processes[key] = process
        self._call(self._patch_status(namespace, name, self._status("Running", {"running": {"startedAt": started}})))
        lines = self.handler.logs.setdefault(key, [])
        for line in process.stdout:
            lines.append((datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z"),
                          line.rstrip("\n")))
        code = process.wait()
        self.exit_codes[key] = code
        terminated = {"terminated": {"exitCode": code, "reason": "Completed" if code == 0 else "Error",
                                     "startedAt": started, "finishedAt": _now()}}
        self._call(self._patch_status(namespace, name, self._status("Succeeded" if code == 0 else "Failed",
                                                                     terminated)))
