"""The configuration example in the README is one a user can paste: it parses as written."""

from __future__ import annotations

from pathlib import Path

from inferops import parse_settings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_configuration_example_is_valid_settings() -> None:
    text = README.read_text(encoding="utf-8")
    start = text.index("```yaml\nstore:") + len("```yaml\n")
    example = text[start : text.index("```", start)]
    settings = parse_settings(example, filename="README.md", environ={})
    assert settings.store.url == "sqlite:///.inferops/inferops.db"
    assert [job.job_name for job in settings.scrape_configs] == ["nodes"]
    assert settings.alerting.receivers[0].secret_env == "INFEROPS_WEBHOOK_SECRET"
    assert settings.remediation.cooldown == 300.0
