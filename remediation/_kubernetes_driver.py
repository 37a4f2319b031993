"""The `FleetDriver` for fleets that Kubernetes runs, through the official `kubernetes` client.

Nodes are Kubernetes nodes (optionally those a label selector picks); the serving workload is
the pods `pod_selector` picks in `namespace`. drain = cordon, then evict the workload's pods
on the node through the Eviction API, which honours PodDisruptionBudgets: a 429 means the
budget forbids it now, so the driver retries with exponential backoff until
`eviction_deadline_s`, then reports which pods the budget held (the node stays cordoned, as
`kubectl drain` leaves it). undrain = uncordon. cycle = drain, wait until the workload has
as many ready pods as before (the replacements), uncordon. Status: the node's Ready
condition and `spec.unschedulable`. Only the workload's pods are evicted; DaemonSets and
other tenants stay. Tested against a fake API server only (docs/kubernetes.md).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_exponential

from ._driver import NodeState, NodeStatus
from ._exceptions import FleetDriverError, UnknownNodeError

if TYPE_CHECKING:
    from ._diagnosis import ProfileTable

logger = logging.getLogger("remediation.kubernetes")

MERGE_PATCH = "application/merge-patch+json"


def _pdb_blocked(error: BaseException) -> bool:
    return isinstance(error, ApiException) and error.status == 429


class KubernetesFleetDriver:
    """`api_client`: a configured `kubernetes.client.ApiClient` (see `connect` and
    `from_kubeconfig`); every call carries `request_timeout_s`."""

    def __init__(
        self,
        api_client: k8s.ApiClient,
        *,
        namespace: str,
        pod_selector: str,
        node_selector: str | None = None,
        request_timeout_s: float = 10.0,
        eviction_deadline_s: float = 120.0,
        eviction_backoff_s: float = 0.5,
        replacement_timeout_s: float = 300.0,
        poll_interval_s: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._api_client = api_client
        self._core = k8s.CoreV1Api(api_client)
        self._namespace = namespace
        self._pod_selector = pod_selector
        self._node_selector = node_selector
        self._timeout_s = request_timeout_s
        self._eviction_deadline_s = eviction_deadline_s
        self._eviction_backoff_s = eviction_backoff_s
        self._replacement_timeout_s = replacement_timeout_s
        self._poll_interval_s = poll_interval_s
        self._sleep = sleep
        self.host = str(api_client.configuration.host)

    @classmethod
    def connect(cls, host: str, *, token: str | None = None, verify_tls: bool = True,
                ca_file: str | None = None, **options: Any) -> KubernetesFleetDriver:
        """A driver for the API server at `host` with a bearer token."""
        configuration = k8s.Configuration(host=host)
        if token:
            configuration.api_key = {"BearerToken": token}
            configuration.api_key_prefix = {"BearerToken": "Bearer"}
        configuration.verify_ssl = verify_tls
        if ca_file:
            configuration.ssl_ca_cert = ca_file
        return cls(k8s.ApiClient(configuration), **options)

    @classmethod
    def from_kubeconfig(cls, *, config_file: str | None = None, context: str | None = None,
                        **options: Any) -> KubernetesFleetDriver:
        """A driver from the kubeconfig `config_file` (None: `~/.kube/config`), or, when
        there is none, the in-cluster service account of the pod it runs in."""
        from kubernetes import config

        try:
            api_client = config.new_client_from_config(  # type: ignore[no-untyped-call]
                config_file=config_file, context=context)
        except (config.ConfigException, OSError) as kubeconfig_error:
            try:
                config.load_incluster_config()  # type: ignore[no-untyped-call]
            except config.ConfigException as error:
                raise FleetDriverError(
                    f"no Kubernetes credentials: kubeconfig {config_file or '~/.kube/config'}: "
                    f"{kubeconfig_error}; in-cluster: {error}"
                ) from None
            api_client = k8s.ApiClient()
        return cls(api_client, **options)

    def close(self) -> None:
        self._api_client.close()  # type: ignore[no-untyped-call]

    # --- reading -------------------------------------------------------------------------

    def _call(self, what: str, function: Callable[..., Any], *args: Any,
              passthrough: tuple[int, ...] = (), **kwargs: Any) -> Any:
        """`function` with the timeout; API errors become `FleetDriverError`s naming `what`,
        except the statuses in `passthrough` (the caller handles those)."""
        try:
            return function(*args, _request_timeout=self._timeout_s, **kwargs)
        except ApiException as error:
            if error.status in passthrough:
                raise
            raise FleetDriverError(
                f"the Kubernetes API at {self.host} answered {what} with {error.status}: "
                f"{_message(error)}"
            ) from None
        except Exception as error:  # urllib3 connection errors, timeouts
            raise FleetDriverError(
                f"cannot reach the Kubernetes API at {self.host} ({what}): "
                f"{type(error).__name__}: {error}"
            ) from None

    def _pods(self, node: str | None = None) -> list[Any]:
        field = None if node is None else f"spec.nodeName={node}"
        found = self._call(
            f"list pods {self._pod_selector!r} in {self._namespace}",
            self._core.list_namespaced_pod, self._namespace,
            label_selector=self._pod_selector, field_selector=field,
        )
        return [pod for pod in found.items if pod.metadata.deletion_timestamp is None]

    def nodes(self) -> list[NodeState]:
        listed = self._call("list nodes", self._core.list_node, label_selector=self._node_selector)
        pods_on: dict[str, int] = {}
        for pod in self._pods():
            pods_on[pod.spec.node_name or ""] = pods_on.get(pod.spec.node_name or "", 0) + 1
        states = []
        for item in listed.items:
            name = str(item.metadata.name)
            ready = any(
                condition.type == "Ready" and condition.status == "True"
                for condition in (item.status.conditions or []) if item.status is not None
            )
            cordoned = bool(item.spec is not None and item.spec.unschedulable)
            if not ready:
                status = NodeStatus.DOWN
            elif cordoned:
                status = NodeStatus.DRAINING if pods_on.get(name) else NodeStatus.DRAINED
            else:
                status = NodeStatus.SERVING
            states.append(NodeState(name, status, healthy=ready, in_flight=0))
        return states

    def _require(self, node: str) -> None:
        names = [state.name for state in self.nodes()]
        if node not in names:
            raise UnknownNodeError(node, names)

    def _ready_pods(self) -> int:
        return sum(
            1 for pod in self._pods()
            if any(c.type == "Ready" and c.status == "True"
                   for c in (pod.status.conditions or []) if pod.status is not None)
        )

    # --- acting --------------------------------------------------------------------------

    def _cordon(self, node: str, unschedulable: bool) -> None:
        self._call(f"{'cordon' if unschedulable else 'uncordon'} {node}", self._core.patch_node,
                   node, {"spec": {"unschedulable": unschedulable}}, _content_type=MERGE_PATCH)

    def drain(self, node: str) -> None:
        """Cordon `node`, then evict the workload's pods on it, honouring PDBs."""
        self._require(node)
        self._cordon(node, True)
        blocked: list[str] = []
        for pod in self._pods(node):
            name = f"{pod.metadata.namespace}/{pod.metadata.name}"
            try:
                self._evict(pod.metadata.name, pod.metadata.namespace)
            except ApiException as error:
                blocked.append(f"{name} ({_message(error)})")
        if blocked:
            raise FleetDriverError(
                f"{node} is cordoned, but the PodDisruptionBudget still refused to evict "
                f"{', '.join(blocked)} after retrying for {self._eviction_deadline_s:g} s"
            )

    def _evict(self, pod: str, namespace: str) -> None:
        body = k8s.V1Eviction(metadata=k8s.V1ObjectMeta(name=pod, namespace=namespace))
        retrying = Retrying(
            retry=retry_if_exception(_pdb_blocked),
            wait=wait_exponential(multiplier=self._eviction_backoff_s,
                                  max=max(self._eviction_backoff_s, 10.0)),
            stop=stop_after_delay(self._eviction_deadline_s),
            sleep=self._sleep,
            reraise=True,
        )
        for attempt in retrying:
            with attempt:
                try:
                    self._call(f"evict {namespace}/{pod}",
                               self._core.create_namespaced_pod_eviction, pod, namespace, body,
                               passthrough=(404, 429), _preload_content=False)
                except ApiException as error:
                    if error.status == 404:
                        return  # already gone: what eviction wanted
                    raise
                logger.info("evicted %s/%s", namespace, pod)

    def undrain(self, node: str) -> None:
        self._require(node)
        self._cordon(node, False)

    def cycle(self, node: str) -> None:
        """Drain, wait for the replacements to be ready elsewhere, uncordon."""
        wanted = self._ready_pods()
        self.drain(node)
        deadline = time.monotonic() + self._replacement_timeout_s
        while (ready := self._ready_pods()) < wanted:
            if time.monotonic() >= deadline:
                raise FleetDriverError(
                    f"{node} was drained, but only {ready} of {wanted} pods of "
                    f"{self._pod_selector!r} were ready {self._replacement_timeout_s:g} s later; "
                    f"{node} stays cordoned"
                )
            self._sleep(self._poll_interval_s)
        self._cordon(node, False)

    def set_weight(self, node: str, weight: float) -> None:
        raise FleetDriverError(
            "reroute is not supported by the Kubernetes driver: Kubernetes Services have no "
            "per-node weights (use drain, or weights in your gateway)"
        )

    def profile(self, node: str, seconds: float) -> ProfileTable:
        raise FleetDriverError(
            "profile is not supported by the Kubernetes driver: it needs the serving pod's "
            "profiler endpoint (the reference fleet's router offers it)"
        )


def _message(error: ApiException) -> str:
    """The `message` of the Kubernetes Status in an error's body, else its reason."""
    try:
        body = json.loads(error.body or "")
    except (TypeError, ValueError):
        return str(error.reason)
    return str(body.get("message") or error.reason) if isinstance(body, dict) else str(
        error.reason)
