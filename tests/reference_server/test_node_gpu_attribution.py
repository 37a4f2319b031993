"""A node's own GPU process is attributed to the node and its model on /metrics."""

from __future__ import annotations

import os

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from exporters import SimulatedGpuBackend
from reference_server._engine import EngineConfig
from reference_server._model import ModelConfig
from reference_server._node_runtime import Node, NodeConfig


def test_the_node_process_memory_series_names_the_node_and_its_model() -> None:
    config = NodeConfig(
        name="node-a", model=ModelConfig(n_layers=1, d_model=32, n_heads=2, context_len=64),
        engine=EngineConfig(kv_cache_tokens=256), device="cpu", gpu_backend="sim",
        model_name="tiny-chat",
    )
    node = Node(config, admin_token="t", gpu_backend=SimulatedGpuBackend(hostname="node-a"))
    text = generate_latest(node.registry).decode()
    series = [
        sample.labels
        for family in text_string_to_metric_families(text)
        if family.name == "inferops_gpu_process_memory_used_bytes"
        for sample in family.samples
    ]
    assert [(s["pid"], s["node"], s["model_name"], s["gpu"]) for s in series] == [
        (str(os.getpid()), "node-a", "tiny-chat", "0")
    ]
