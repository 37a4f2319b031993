"""`inferops slo validate|rules|status`: check specs, generate Prometheus rules, show budgets."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from ._cli_options import ConfigOption
from ._settings import load_settings

slo_app = typer.Typer(
    help="Validate SLO specs, show their status, generate Prometheus rules.", no_args_is_help=True
)


@slo_app.command("validate")
def slo_validate(files: Annotated[list[Path], typer.Argument(help="SLO spec files.")]) -> None:
    """Check SLO spec files; errors name file, line and field."""
    from slo import load_slo_specs

    for file in files:
        specs = load_slo_specs(file)
        typer.echo(f"{file}: {len(specs)} SLO(s) OK: {', '.join(s.name for s in specs)}")


@slo_app.command("rules")
def slo_rules(
    files: Annotated[list[Path], typer.Argument(help="SLO spec files.")],
    windows: Annotated[
        str, typer.Option(help="Burn-rate windows: a name or a YAML path.")
    ] = "sre-workbook-v1",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
) -> None:
    """Generate Prometheus recording and alerting rules from SLO specs."""
    from slo import generate_rules, load_burn_rate_windows, load_slo_specs, render_rules_yaml

    specs = [spec for file in files for spec in load_slo_specs(file)]
    text = render_rules_yaml(generate_rules(specs, load_burn_rate_windows(windows)))
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {output}", err=True)


@slo_app.command("status")
def slo_status(
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Evaluate every configured SLO now: SLI, error budget remaining, burn rates."""
    from collectors import SampleStore, open_database
    from slo import SloEvaluator, format_duration, load_burn_rate_windows, load_slo_specs

    from ._sources import open_metric_source

    settings = load_settings(config)
    source = open_metric_source(settings, SampleStore(open_database(settings.store.url)))
    windows = load_burn_rate_windows(settings.burn_rate_windows())
    evaluator = SloEvaluator(source)
    now = time.time()
    rows = [
        status
        for file in settings.slo.files
        for spec in load_slo_specs(settings.resolve(file))
        for status in evaluator.evaluate_all(spec, now, windows)  # one per group_by group
    ]
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {
                        "name": r.name,
                        **({"group": dict(r.group)} if r.group else {}),
                        "objective": r.objective,
                        "sli": r.sli_value,
                        "budget_remaining": r.error_budget_remaining,
                        "burn_rates": {format_duration(w): b for w, b in r.burn_rates.items()},
                    }
                    for r in rows
                ],
                indent=2,
            )
        )
        return
    for r in rows:
        burns = " ".join(f"{format_duration(w)}={b:.2f}x" for w, b in sorted(r.burn_rates.items()))
        budget = "n/a" if r.error_budget_remaining is None else f"{r.error_budget_remaining:.1%}"
        group = "".join(f" {k}={v}" for k, v in r.group.items())
        typer.echo(
            f"{r.name}{group}: objective {r.objective:.3%} budget remaining {budget} {burns}"
        )
