"""A fake Kubernetes API server (FastAPI on 127.0.0.1) for the Kubernetes driver's tests: the
handful of endpoints the official client calls, with the semantics the driver relies on.

- `GET /api/v1/nodes` (`labelSelector`), `PATCH /api/v1/nodes/{name}` (merge patch of
  `spec.unschedulable`);
- `GET /api/v1/namespaces/{ns}/pods` (`labelSelector`, `fieldSelector=spec.nodeName=X`);
- `POST /api/v1/namespaces/{ns}/pods/{name}/eviction` (policy/v1 Eviction): 429 with the
  real API server's Status when a PodDisruptionBudget (`minAvailable` over ready pods that
  its selector matches) allows no disruption; otherwise the pod goes and its "Deployment"
  creates a replacement on a schedulable, ready node, ready `replacement_ready_after_s` later
  (as a controller would).

Bearer-token auth as the API server does it (401 Status). Selectors: equality terms only.
Not collected (no `test_` prefix)."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from served_app import serve

TOKEN = "fake-kubernetes-token"
NAMESPACE = "llm"
SERVING_LABELS = {"app": "llm-serving"}


@dataclass
class FakePod:
    name: str
    node: str
    labels: dict[str, str]
    ready_at_s: float = 0.0

    def ready(self) -> bool:
        return time.time() >= self.ready_at_s


@dataclass
class FakePdb:
    name: str
    match_labels: dict[str, str]
    min_available: int


@dataclass
class FakeKubernetes:
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    """name -> {"ready": bool, "unschedulable": bool, "labels": {...}}"""
    pods: dict[str, FakePod] = field(default_factory=dict)
    pdbs: list[FakePdb] = field(default_factory=list)
    replacement_ready_after_s: float = 0.0
    replace_evicted: bool = True
    seen: list[str] = field(default_factory=list)
    url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _names: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @classmethod
    def fleet(cls, nodes: int = 3) -> FakeKubernetes:
        """`nodes` ready GPU nodes, one serving pod on each, labelled as the driver selects."""
        fake = cls()
        for index in range(nodes):
            fake.nodes[f"gpu-{index}"] = {"ready": True, "unschedulable": False,
                                          "labels": {"pool": "llm"}}
            fake.pods[f"llm-serving-{index}"] = FakePod(f"llm-serving-{index}", f"gpu-{index}",
                                                         dict(SERVING_LABELS))
        return fake

    def reset(self, nodes: int = 3) -> None:
        """Back to `fleet(nodes)`'s state, keeping the served app (one server per module)."""
        fresh = FakeKubernetes.fleet(nodes)
        with self._lock:
            self.nodes, self.pods, self.pdbs = fresh.nodes, fresh.pods, []
            self.replacement_ready_after_s, self.replace_evicted = 0.0, True
            self.seen.clear()
            self._names = itertools.count(1)

    # --- JSON as the API server writes it ----------------------------------------------

    def _node_json(self, name: str) -> dict[str, Any]:
        node = self.nodes[name]
        return {
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": node["labels"]},
            "spec": {"unschedulable": True} if node["unschedulable"] else {},
            "status": {"conditions": [
                {"type": "MemoryPressure", "status": "False"},
                {"type": "Ready", "status": "True" if node["ready"] else "Unknown"},
            ]},
        }

    def _pod_json(self, pod: FakePod) -> dict[str, Any]:
        return {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": pod.name, "namespace": NAMESPACE, "labels": pod.labels},
            "spec": {"nodeName": pod.node, "containers": [{"name": "server", "image": "x"}]},
            "status": {"phase": "Running", "conditions": [
                {"type": "Ready", "status": "True" if pod.ready() else "False"}]},
        }

    def healthy(self, labels: dict[str, str]) -> int:
        return sum(1 for pod in self.pods.values()
                   if pod.ready() and _matches(labels, pod.labels))

    # --- the app -----------------------------------------------------------------------

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.middleware("http")
        async def authenticate(request: Request, call_next: Any) -> Any:
            self.seen.append(f"{request.method} {request.url.path}")
            if request.headers.get("authorization") != f"Bearer {TOKEN}":
                return _status(401, "Unauthorized", "Unauthorized")
            return await call_next(request)

        @app.get("/api/v1/nodes")
        def list_nodes(labelSelector: str | None = None) -> Any:
            wanted = _selector(labelSelector)
            with self._lock:
                items = [self._node_json(name) for name, node in self.nodes.items()
                         if _matches(wanted, node["labels"])]
            return {"apiVersion": "v1", "kind": "NodeList", "metadata": {}, "items": items}

        @app.patch("/api/v1/nodes/{name}")
        async def patch_node(name: str, request: Request) -> Any:
            if request.headers.get("content-type") != "application/merge-patch+json":
                return _status(415, "UnsupportedMediaType",
                               f"unsupported patch type {request.headers.get('content-type')}")
            patch = await request.json()
            with self._lock:
                if name not in self.nodes:
                    return _status(404, "NotFound", f'nodes "{name}" not found')
                self.nodes[name]["unschedulable"] = bool(patch["spec"]["unschedulable"])
                return self._node_json(name)

        @app.get("/api/v1/namespaces/{namespace}/pods")
        def list_pods(namespace: str, labelSelector: str | None = None,
                      fieldSelector: str | None = None) -> Any:
            wanted = _selector(labelSelector)
            on_node = _selector(fieldSelector).get("spec.nodeName")
            with self._lock:
                items = [self._pod_json(pod) for pod in self.pods.values()
                         if namespace == NAMESPACE and _matches(wanted, pod.labels)
                         and (on_node is None or pod.node == on_node)]
            return {"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": items}

        @app.post("/api/v1/namespaces/{namespace}/pods/{name}/eviction")
        async def evict(namespace: str, name: str, request: Request) -> Any:
            body = await request.json()
            if body.get("metadata", {}).get("name") != name:
                return _status(400, "BadRequest", "name in the eviction does not match")
            with self._lock:
                pod = self.pods.get(name) if namespace == NAMESPACE else None
                if pod is None:
                    return _status(404, "NotFound", f'pods "{name}" not found')
                for pdb in self.pdbs:
                    if not _matches(pdb.match_labels, pod.labels):
                        continue
                    healthy = self.healthy(pdb.match_labels)
                    if healthy - (1 if pod.ready() else 0) < pdb.min_available:
                        return _status(
                            429, "TooManyRequests",
                            "Cannot evict pod as it would violate the pod's disruption "
                            "budget.",
                            causes=[{"reason": "DisruptionBudget", "message":
                                     f"The disruption budget {pdb.name} needs "
                                     f"{pdb.min_available} healthy pods and has {healthy} "
                                     "currently"}],
                        )
                del self.pods[name]
                if self.replace_evicted:
                    self._replace(pod)
            return JSONResponse({"kind": "Status", "apiVersion": "v1", "metadata": {},
                                 "status": "Success"}, status_code=201)

        return app

    def _replace(self, evicted: FakePod) -> None:
        target = next((name for name, node in self.nodes.items()
                       if node["ready"] and not node["unschedulable"]), None)
        if target is None:
            return  # Pending: nowhere to schedule
        name = f"llm-serving-r{next(self._names)}"
        self.pods[name] = FakePod(name, target, dict(evicted.labels),
                                  ready_at_s=time.time() + self.replacement_ready_after_s)


def _selector(text: str | None) -> dict[str, str]:
    if not text:
        return {}
    return dict(term.split("=", 1) for term in text.split(","))


def _matches(wanted: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in wanted.items())


def _status(code: int, reason: str, message: str,
            causes: list[dict[str, str]] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {},
                            "status": "Failure", "message": message, "reason": reason,
                            "code": code}
    if causes:
        body["details"] = {"causes": causes}
    return JSONResponse(body, status_code=code)


def serve_fake_kubernetes(fake: FakeKubernetes) -> Iterator[FakeKubernetes]:
    with serve(fake.app()) as url:
        fake.url = url
        yield fake
