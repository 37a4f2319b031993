"""The `inferops` command: one entry point for the fleet, the control plane and the demo.

Exit codes: 0 success, 1 a refused or failed action (or a demo whose loop did not close),
2 bad usage or bad input (unknown node, invalid settings).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from ._cli_options import ConfigOption
from ._exceptions import InferOpsError
from ._settings import ENV_ADMIN_TOKEN, load_settings

app = typer.Typer(
    name="inferops",
    help="InferOps: an SRE control plane for GPU LLM-inference fleets.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
fleet_app = typer.Typer(help="Run the bundled reference inference fleet.", no_args_is_help=True)
exporter_app = typer.Typer(help="Run a standalone exporter.", no_args_is_help=True)
app.add_typer(fleet_app, name="fleet")
app.add_typer(exporter_app, name="exporter")

from ._remediate_cli import remediate_app  # noqa: E402  (after the root app exists)

app.add_typer(remediate_app, name="remediate")

from ._incidents_cli import incidents_app  # noqa: E402  (after the root app exists)

app.add_typer(incidents_app, name="incidents")

from ._silences_cli import silences_app  # noqa: E402  (after the root app exists)

app.add_typer(silences_app, name="silences")

from ._slo_cli import slo_app  # noqa: E402  (after the root app exists)

app.add_typer(slo_app, name="slo")


def _logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


@app.command()
def demo(
    nodes: Annotated[int, typer.Option(help="Nodes in the fleet.")] = 3,
    fault: Annotated[
        str, typer.Option(help="error-burst | latency | crash | gpu-xid")
    ] = "error-burst",
    duration: Annotated[
        float, typer.Option(help="Seconds before the demo stops and reports.")
    ] = 60.0,
    report: Annotated[Path | None, typer.Option(help="Write the JSON report here too.")] = None,
    no_dashboard: Annotated[
        bool, typer.Option("--no-dashboard", help="Do not start the dashboard.")
    ] = False,
    keep_running: Annotated[
        bool, typer.Option("--keep-running", help="Stay up after the report until Ctrl-C.")
    ] = False,
    warmup: Annotated[float, typer.Option(help="Seconds of load before the fault.")] = 12.0,
) -> None:
    """Fleet + load + control plane + dashboard; inject a fault; print the incident."""
    from ._demo import Demo, DemoOptions

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    options = DemoOptions(
        nodes=nodes,
        fault=fault,
        duration_s=duration,
        warmup_s=warmup,
        report_path=report,
        dashboard=not no_dashboard,
        keep_running=keep_running,
    )
    try:
        code = Demo(options, out=typer.echo).run()
    except KeyboardInterrupt:
        code = 130
    raise typer.Exit(code)


@app.command()
def gameday(
    scenario: Annotated[str, typer.Option(help="A scenario name, or all (docs/gamedays.md).")],
    report: Annotated[
        Path | None, typer.Option(help="Directory for the JSON reports and gameday.md.")
    ] = None,
    short: Annotated[bool, typer.Option("--short", help="Shorter observation windows.")] = False,
) -> None:
    """Chaos drills against the reference fleet under load; exit 1 if any scenario fails."""
    from ._gameday import GameDay, GameDayOptions
    from ._gameday_scenarios import select_scenarios

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        chosen = tuple(select_scenarios(scenario))
    except InferOpsError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    options = GameDayOptions(scenarios=chosen, short=short, report_dir=report)
    try:
        code = GameDay(options, out=typer.echo).run()
    except KeyboardInterrupt:
        code = 130
    raise typer.Exit(code)


@fleet_app.command("up")
def fleet_up(
    nodes: Annotated[int, typer.Option(min=1, help="Number of node processes.")] = 3,
    port: Annotated[
        int, typer.Option(min=1, max=65000, help="Router port; nodes take the next N ports.")
    ] = 8000,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    gpu_backend: Annotated[str, typer.Option(help="nvml | sim | auto")] = "auto",
    gpu_type: Annotated[str, typer.Option(help="Simulated GPU type.")] = "H100-SXM5-80GB",
    device: Annotated[str, typer.Option(help="auto | cpu | cuda")] = "auto",
    api_keys_file: Annotated[
        Path | None,
        typer.Option(help="Client API keys with per-key limits (YAML or JSON); see README."),
    ] = None,
    routing: Annotated[
        str, typer.Option(help="least-outstanding | round-robin | session-affinity")
    ] = "least-outstanding",
    otlp_endpoint: Annotated[
        str | None,
        typer.Option(help="OTLP/HTTP endpoint for the router's and nodes' spans, e.g. "
                     "http://127.0.0.1:4318 (default: $OTEL_EXPORTER_OTLP_ENDPOINT)."),
    ] = None,
    trace_sample_ratio: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of new traces sampled.")
    ] = 1.0,
    eject_after: Annotated[
        int, typer.Option(min=0, help="Eject a node after this many consecutive failures "
                          "(5xx, connect/read errors, first-byte timeouts); 0: off.")
    ] = 3,
    first_byte_timeout: Annotated[
        float, typer.Option(help="Seconds a stream waits for its first byte before the "
                            "router tries another node.")
    ] = 10.0,
) -> None:
    """Start the router on PORT and NODES node processes on the next ports.

    Clients need an API key (Authorization: Bearer KEY) from $INFEROPS_API_KEYS
    (comma-separated) or --api-keys-file; with neither, one is generated and printed."""
    import os
    import secrets

    from reference_server import (
        ENV_API_KEYS,
        FleetConfig,
        FleetConfigError,
        OutlierPolicy,
        generate_api_key,
        load_api_keys,
        parse_api_keys_env,
        resolve_otlp_endpoint,
        run_fleet,
    )

    _logging(False)
    token = os.environ.get(ENV_ADMIN_TOKEN)
    if not token:
        token = secrets.token_urlsafe(24)
        typer.echo(f"{ENV_ADMIN_TOKEN} is not set; generated an admin token for this run: {token}")
    try:
        keys = load_api_keys(env_text=os.environ.get(ENV_API_KEYS), file=api_keys_file)
        if not keys:
            key = generate_api_key()
            keys = parse_api_keys_env(key)
            typer.echo(f"{ENV_API_KEYS} is not set and no --api-keys-file; generated a client "
                       f"API key for this run: {key}")
        else:
            typer.echo(f"Client API keys: {', '.join(k.name for k in keys)}")
        config = FleetConfig(
            nodes=nodes,
            host=host,
            port=port,
            admin_token=token,
            gpu_backend=gpu_backend,
            gpu_type=gpu_type,
            device=device,
            routing_policy=routing,
            api_keys=keys,
            otlp_endpoint=resolve_otlp_endpoint(otlp_endpoint, os.environ),
            trace_sample_ratio=trace_sample_ratio,
            outlier=OutlierPolicy(consecutive_failures=eject_after,
                                  first_byte_timeout_s=first_byte_timeout),
        )
    except FleetConfigError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    run_fleet(config)


@exporter_app.command("gpu")
def exporter_gpu(
    backend: Annotated[str, typer.Option(help="nvml | sim | auto")] = "auto",
    port: Annotated[int, typer.Option(help="Port for /metrics.")] = 9400,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    gpus: Annotated[int, typer.Option(min=1, help="Simulated GPUs (sim backend).")] = 1,
    gpu_type: Annotated[str, typer.Option(help="Simulated GPU type.")] = "H100-SXM5-80GB",
    poll_interval: Annotated[float, typer.Option(help="Seconds between NVML polls.")] = 1.0,
    attribution_file: Annotated[
        Path | None,
        typer.Option(help='GPU process owners: JSON {"<pid>": {"node": .., "model_name": ..}}.'),
    ] = None,
    attribution_url: Annotated[
        str | None,
        typer.Option(help="GPU process owners from the fleet router's /sd/targets URL."),
    ] = None,
) -> None:
    """Serve dcgm-exporter-compatible GPU metrics, as dcgm-exporter runs on each GPU node."""
    import socket

    from exporters import (
        FileAttribution,
        ProcessAttribution,
        RegistryAttribution,
        select_gpu_backend,
        serve_gpu_exporter,
    )

    _logging(False)
    if attribution_file is not None and attribution_url is not None:
        typer.echo("error: give --attribution-file or --attribution-url, not both", err=True)
        raise typer.Exit(2)
    attribution: ProcessAttribution | None = None
    if attribution_file is not None:
        attribution = FileAttribution(attribution_file)
    elif attribution_url is not None:
        attribution = RegistryAttribution(attribution_url)
    hostname = socket.gethostname()
    gpu_backend = select_gpu_backend(backend, gpus=gpus, gpu_type=gpu_type, hostname=hostname)
    handle = serve_gpu_exporter(
        gpu_backend, host=host, port=port, hostname=hostname, poll_interval_s=poll_interval,
        attribution=attribution,
    )
    typer.echo(f"GPU exporter ({gpu_backend.name} backend) on http://{host}:{port}/metrics")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        handle.stop()


@app.command()
def run(
    config: ConfigOption = None, verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False
) -> None:
    """Run the control plane: scrape, store, evaluate SLOs and alerts, notify, remediate."""
    from ._control_plane import ControlPlane
    from ._sources import source_description

    _logging(verbose)
    settings = load_settings(config)
    plane = ControlPlane(settings)
    typer.echo(
        f"Control plane: {len(plane.current_targets())} targets, {len(plane.slo_specs)} SLOs, "
        f"{len(plane.rules)} alert rules, store {settings.store.url.split('@')[-1]}, "
        f"queries from the {source_description(settings)}"
    )
    api_token: str | None = None
    if settings.api.enabled:
        from ._api import server_token

        api_token, generated = server_token(settings)
        if generated:
            typer.echo(f"{settings.api.token_env} is not set; generated an API token for this "
                       f"run (saved for local clients): {api_token}", err=True)
        typer.echo(f"API on http://{settings.api.host}:{settings.api.port}")
    try:
        asyncio.run(plane.run(api_token=api_token))
    except KeyboardInterrupt:
        pass
    except OSError as error:  # the API's port is taken: say which, exit 2
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    finally:
        plane.close()


from ._query_cli import query_command  # noqa: E402  (after the root app exists)

app.command("query")(query_command)


@app.command()
def dashboard(
    config: ConfigOption = None,
    store: Annotated[str | None, typer.Option(help="Store URL (overrides the settings).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (overrides the settings).")] = None,
    api_url_option: Annotated[str | None, typer.Option(
        "--api-url", help="Control-plane API for approvals (else INFEROPS_API_URL, settings)."
    )] = None,
) -> None:
    """Serve the Dash dashboard from the store; approvals go through the control-plane API
    with the token each engineer enters in the browser."""
    from alerting import AlertStore
    from collectors import SampleStore, open_database
    from dashboards import ControlPlaneClient, DashboardData, create_app, serve_dashboard
    from remediation import DecisionLog, ProfileLog

    from ._sources import open_metric_source

    _logging(False)
    overrides: dict[str, object] = {}
    if store:
        overrides["store.url"] = store
    if port:
        overrides["dashboard.port"] = port
    settings = load_settings(config, overrides=overrides)
    database = open_database(settings.store.url)
    from slo import CostSli, load_slo_specs

    costs = [spec.sli for file in settings.slo.files
             for spec in load_slo_specs(settings.resolve(file)) if isinstance(spec.sli, CostSli)]
    data = DashboardData(
        open_metric_source(settings, SampleStore(database)),
        AlertStore(database),
        DecisionLog(database),
        cost=costs[0] if costs else None,  # the cost page prices GPUs by the first cost SLO
        profiles=ProfileLog(database),
    )
    from ._api import api_url

    api = ControlPlaneClient(api_url(settings, api_url_option)) if settings.api.enabled else None
    application = create_app(data, refresh_s=settings.dashboard.refresh, api=api)
    typer.echo(f"Dashboard on http://{settings.dashboard.host}:{settings.dashboard.port}/")
    serve_dashboard(application, host=settings.dashboard.host, port=settings.dashboard.port)


def main() -> None:
    try:
        app()
    except InferOpsError as error:
        typer.echo(f"error: {error}", err=True)
        sys.exit(2)
    except Exception as error:  # a component's own error type: still a clear message
        if type(error).__module__.split(".")[0] in (
            "slo",
            "alerting",
            "collectors",
            "remediation",
            "exporters",
            "reference_server",
            "dashboards",
        ):
            typer.echo(f"error: {error}", err=True)
            sys.exit(2)
        raise
