"""One inference node: `python -m reference_server.node --name node-0 --port 18001`.

The admin token comes from the environment (INFEROPS_ADMIN_TOKEN), never from argv, so it
does not show in `ps`. Exit status 2: bad arguments, no token, or no usable GPU backend.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

ENV_ADMIN_TOKEN = "INFEROPS_ADMIN_TOKEN"

logger = logging.getLogger("reference_server.node")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m reference_server.node",
        description="An InferOps reference inference node (OpenAI-compatible API, "
        f"Prometheus /metrics, bearer-token admin; token from ${ENV_ADMIN_TOKEN}).",
    )
    parser.add_argument("--name", default="node-0", help="node name (default: node-0)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18001)
    parser.add_argument("--gpu-backend", choices=("auto", "sim", "nvml"), default="auto")
    parser.add_argument("--gpu-type", default="H100-SXM5-80GB",
                        help="simulated GPU type (sim backend)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="where the model runs: auto = cuda (bfloat16) if available, else cpu")
    parser.add_argument("--model-name", default="inferops-tiny")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights")
    model = parser.add_argument_group("model and engine sizes")
    model.add_argument("--n-layers", type=int, default=4)
    model.add_argument("--d-model", type=int, default=256)
    model.add_argument("--n-heads", type=int, default=4)
    model.add_argument("--context-len", type=int, default=512)
    model.add_argument("--max-num-seqs", type=int, default=8,
                       help="most sequences in the running batch")
    model.add_argument("--kv-cache-tokens", type=int, default=4096,
                       help="KV cache budget in tokens (at least --context-len)")
    model.add_argument("--block-size", type=int, default=16,
                       help="tokens per KV-cache block (default 16)")
    model.add_argument("--no-prefix-caching", action="store_true",
                       help="do not reuse the KV blocks of a shared prompt prefix")
    model.add_argument("--stall-timeout", type=float, default=5.0,
                       help="seconds one engine step may run with requests in the batch "
                       "before /health answers 503 (a hung engine; default 5)")
    model.add_argument("--torch-threads", type=int, default=1,
                       help="torch CPU threads (default 1: nodes share the host's cores)")
    parser.add_argument("--profile-dir", default=None,
                        help="where POST /admin/profile saves Chrome traces "
                        "(default: a new temporary directory)")
    tracing = parser.add_argument_group("tracing (OpenTelemetry)")
    tracing.add_argument("--otlp-endpoint", default=None,
                         help="OTLP/HTTP endpoint to export spans to, e.g. http://127.0.0.1:4318 "
                         "(default: $OTEL_EXPORTER_OTLP_ENDPOINT; neither: no tracing)")
    tracing.add_argument("--trace-sample-ratio", type=float, default=1.0,
                         help="share of new traces sampled (a caller's decision is followed)")
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning"))
    return parser


def _check_sizes(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Fail fast (exit 2), before torch is imported, on sizes the model or engine refuses."""
    for flag in ("n_layers", "d_model", "n_heads", "context_len", "max_num_seqs",
                 "kv_cache_tokens", "block_size", "port"):
        if getattr(args, flag) < (0 if flag == "port" else 1):
            parser.error(f"--{flag.replace('_', '-')} must be positive, got {getattr(args, flag)}")
    if args.d_model % args.n_heads:
        parser.error(f"--d-model ({args.d_model}) must be divisible by --n-heads ({args.n_heads})")
    if not 0.0 <= args.trace_sample_ratio <= 1.0:
        parser.error(f"--trace-sample-ratio must be in [0, 1], got {args.trace_sample_ratio}")
    if not args.stall_timeout > 0:
        parser.error(f"--stall-timeout must be positive, got {args.stall_timeout}")
    if args.kv_cache_tokens // args.block_size * args.block_size < args.context_len:
        parser.error(f"--kv-cache-tokens ({args.kv_cache_tokens}) must hold at least one full "
                     f"context (--context-len {args.context_len})")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _check_sizes(parser, args)
    logging.basicConfig(
        level=args.log_level.upper(),
        format=f"%(asctime)s %(levelname)s {args.name} %(name)s: %(message)s",
    )
    token = os.environ.get(ENV_ADMIN_TOKEN, "")
    if not token.strip():
        print(f"error: the admin token is not set: export {ENV_ADMIN_TOKEN} (the node never "
              "takes it on the command line)", file=sys.stderr)
        return 2

    import torch
    import uvicorn

    from exporters import GpuBackendUnavailable

    from ._engine import EngineConfig
    from ._model import ModelConfig
    from ._node_app import create_node_app
    from ._node_runtime import Node, NodeConfig
    from ._tracing import TracingConfig, build_tracer_provider, resolve_otlp_endpoint

    torch.set_num_threads(max(1, args.torch_threads))
    try:
        config = NodeConfig(
            name=args.name,
            model_name=args.model_name,
            model=ModelConfig(n_layers=args.n_layers, d_model=args.d_model, n_heads=args.n_heads,
                              context_len=args.context_len, seed=args.seed),
            engine=EngineConfig(max_num_seqs=args.max_num_seqs,
                                kv_cache_tokens=args.kv_cache_tokens,
                                block_size=args.block_size,
                                prefix_caching=not args.no_prefix_caching,
                                stall_timeout_s=args.stall_timeout),
            profile_dir=args.profile_dir,
            device=args.device,
            gpu_backend=args.gpu_backend,
            gpu_type=args.gpu_type,
        )
        tracing = TracingConfig(
            service_name=args.name,
            otlp_endpoint=resolve_otlp_endpoint(args.otlp_endpoint, os.environ),
            sample_ratio=args.trace_sample_ratio,
            resource_attributes={"inferops.model_name": args.model_name},
        )
        node = Node(config, admin_token=token.strip())
    except (ValueError, GpuBackendUnavailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    provider = build_tracer_provider(tracing)
    logger.info("%s; serving on http://%s:%d%s", node.describe(), args.host, args.port,
                "" if tracing.otlp_endpoint is None
                else f"; exporting spans to {tracing.otlp_endpoint}")
    # uvicorn stops gracefully on SIGINT/SIGTERM (the engine and GPU backend are closed by the
    # app's lifespan), then re-raises the signal: the exit status says what stopped the node.
    uvicorn.run(create_node_app(node, tracer_provider=provider), host=args.host,
                port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
