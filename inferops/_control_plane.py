"""The control plane: scrape -> store -> SLOs and alert rules -> notifications -> remediation.

This module only composes the components from settings; each component owns its logic.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Sequence

import sqlalchemy
from fastapi import APIRouter
from opentelemetry.trace import Span

from alerting import (
    AlertEngine,
    AlertStore,
    DeliveryWorker,
    InhibitRule,
    Notifier,
    Outbox,
    SilenceStore,
    WebhookNotifier,
    create_alerting_router,
    watchdog_rule,
)
from collectors import (
    FileDiscovery,
    HttpDiscovery,
    MetricSource,
    PrometheusSource,
    Retention,
    SampleStore,
    Scraper,
    ScrapeTarget,
    TargetGroup,
    open_database,
)
from remediation import (
    DecisionLog,
    IncidentLog,
    ProfileLog,
    ProfilingDriver,
    RemediationEngine,
    create_remediation_router,
    load_remediation_policy,
)
from slo import (
    AlertingRule,
    BurnRateWindow,
    SloEvaluator,
    SloSpec,
    SloStatus,
    burn_rate_alert_rules,
    load_alerting_rules,
    load_burn_rate_windows,
    load_slo_specs,
)

from ._control_plane_tracing import ControlPlaneTracing
from ._fleet_driver import open_fleet_driver, remediation_limits
from ._notify_dispatch import BackgroundNotifier, RemediationNotifier
from ._remediation_pages import RemediationPager
from ._scrape_targets import scrape_targets
from ._settings import Settings
from ._slo_status_samples import slo_status_samples
from ._sources import open_metric_source

logger = logging.getLogger("inferops.control_plane")

__all__ = ["ControlPlane", "remediation_limits", "scrape_targets", "slo_status_samples"]


class ControlPlane:
    """Everything `inferops run` runs, built from one `Settings`."""

    def __init__(self, settings: Settings, *, admin_token: str | None = None,
                 tracing: ControlPlaneTracing | None = None) -> None:
        """`tracing` replaces the one built from `settings.tracing` (embedding, tests)."""
        self.settings = settings
        self.database: sqlalchemy.Engine = open_database(settings.store.url)
        self.store = SampleStore(self.database)
        self.source: MetricSource = open_metric_source(settings, self.store)
        self.retention = Retention(
            self.store,
            raw_s=settings.store.retention_raw,
            rollup_s=settings.store.retention_rollup,
        )
        self.discoveries: list[tuple[int, FileDiscovery | HttpDiscovery]] = [
            (
                index,
                FileDiscovery(
                    sd.files, refresh_interval_s=sd.refresh_interval, base_dir=settings.base_dir
                ),
            )
            for index, job in enumerate(settings.scrape_configs)
            for sd in job.file_sd_configs
        ]
        self.discoveries.extend(
            (
                index,
                HttpDiscovery(
                    http.url, refresh_interval_s=http.refresh_interval, timeout_s=http.timeout
                ),
            )
            for index, job in enumerate(settings.scrape_configs)
            for http in job.http_sd_configs
        )
        for _, discovery in self.discoveries:
            discovery.refresh()
        self._targets_lock = asyncio.Lock()
        self.scraper = Scraper(self.current_targets(), self.store)
        self.slo_specs: list[SloSpec] = [
            spec for file in settings.slo.files for spec in load_slo_specs(settings.resolve(file))
        ]
        self.windows: list[BurnRateWindow] = load_burn_rate_windows(
            settings.burn_rate_windows()
        )
        self.slo_evaluator = SloEvaluator(self.source)
        self.alert_store = AlertStore(self.database)
        self.decisions = DecisionLog(self.database)
        self.tracing = tracing or ControlPlaneTracing(settings.tracing)
        self._traced = self.tracing if self.tracing.enabled else None
        self._background: list[BackgroundNotifier] = []
        # Webhook receivers go through the durable outbox: written with the alert change in
        # one transaction, delivered (and retried with backoff) by a worker thread, so a
        # receiver that is down, or a control plane killed mid-delivery, loses nothing.
        self._webhooks: dict[str, WebhookNotifier] = {
            receiver.name: WebhookNotifier(
                receiver.url,
                secret=os.environ.get(receiver.secret_env) if receiver.secret_env else None,
                timeout_s=receiver.timeout,
                attempts=1,
            )
            for receiver in settings.alerting.receivers
        }
        self.delivery = DeliveryWorker(
            self.database, self._webhooks,
            initial_backoff_s=settings.alerting.delivery_initial_backoff,
            max_backoff_s=settings.alerting.delivery_max_backoff,
        )
        notifiers: list[Notifier] = []
        self.remediation: RemediationEngine | None = None
        if settings.remediation.enabled and settings.remediation.policy_file:
            self.remediation = RemediationEngine(
                # Every profile the engine takes is kept for the dashboard's kernels page.
                ProfilingDriver(open_fleet_driver(settings, admin_token),
                                ProfileLog(self.database)),
                self.decisions,
                load_remediation_policy(settings.resolve(settings.remediation.policy_file)),
                dry_run=settings.remediation.dry_run,
                cooldown_s=settings.remediation.cooldown,
                min_healthy_nodes=settings.remediation.min_healthy_nodes,
                verify_timeout_s=settings.remediation.verify_timeout,
                limits=remediation_limits(settings),
                source=self.source,
                recovery_deadline_s=settings.remediation.recovery_deadline,
                # Breaker pages, escalations and policy notify steps reach people through
                # the same durable outbox as every alert.
                notify=RemediationPager(
                    Outbox(self.database),
                    tuple(self._webhooks),
                    external_url=settings.alerting.external_url,
                    wake=self.delivery.wake,
                ),
            )
            notifiers.append(
                self._in_background(
                    RemediationNotifier(self.remediation, tracing=self._traced), "remediation"
                )
            )
        self.rules: list[AlertingRule] = [
            rule
            for file in settings.alerting.rule_files
            for rule in load_alerting_rules(settings.resolve(file))
        ]
        for spec in self.slo_specs:
            self.rules.extend(burn_rate_alert_rules(spec, self.windows))
        if settings.alerting.watchdog:
            self.rules.append(watchdog_rule())
        self.silences = SilenceStore(self.database)
        self.alert_engine = AlertEngine(
            self.source,
            self.alert_store,
            self.rules,
            notifiers,
            external_url=settings.alerting.external_url,
            group_by=tuple(settings.alerting.group_by),
            outbox_receivers=tuple(self._webhooks),
            repeat_interval_s=settings.alerting.repeat_interval,
            group_wait_s=settings.alerting.group_wait,
            group_interval_s=settings.alerting.group_interval,
            silences=self.silences,
            inhibit_rules=[
                InhibitRule.of(rule.source_matchers, rule.target_matchers, rule.equal)
                for rule in settings.alerting.inhibit_rules
            ],
        )
        # The HTTP API's routers (`inferops run` serves them): other components add theirs.
        self.api_routers: list[APIRouter] = [
            create_alerting_router(
                silences=self.silences,
                active_alerts=self.alert_engine.active,
                on_webhook=None if self.remediation is None
                else self.remediation.handle_notification,
                clock=time.time,
            ),
            create_remediation_router(
                self.remediation, self.decisions,
                self.remediation.incidents if self.remediation else IncidentLog(self.database)
            ),
        ]
        self.last_slo_statuses: list[SloStatus] = []

    def current_targets(self) -> list[ScrapeTarget]:
        """Static targets and what every file_sd config found at its last refresh."""
        discovered: dict[int, list[TargetGroup]] = {}
        for index, discovery in self.discoveries:
            discovered.setdefault(index, []).extend(discovery.groups)
        return scrape_targets(self.settings, discovered)

    async def _discovery_changed(self, _groups: Sequence[TargetGroup]) -> None:
        async with self._targets_lock:
            await self.scraper.set_targets(self.current_targets())

    def _in_background(self, notifier: Notifier, name: str) -> BackgroundNotifier:
        background = BackgroundNotifier(notifier, name=name, tracing=self._traced)
        self._background.append(background)
        return background

    def evaluate_once(self, at_s: float) -> None:
        """One evaluation round: alert rules (and their notifications), then SLO status;
        traced as one span (`_control_plane_tracing`)."""
        with self.tracing.evaluation_round(
            at_s, rules=len(self.rules), slos=len(self.slo_specs)
        ) as span:
            self._evaluate_round(at_s, span)

    def _evaluate_round(self, at_s: float, span: Span) -> None:
        # Per-slice SLIs (percentile, throughput, cost) are judged first, as Prometheus's
        # recording rule would, so the burn-rate rules read this round's slice too.
        slices = self.slo_evaluator.timeslice_samples(self.slo_specs, at_s)
        if slices:
            self.store.append(slices)
        span.set_attribute("inferops.alerts_changed", len(self.alert_engine.evaluate(at_s)))
        if self.remediation is not None:
            self.remediation.tick()  # an open circuit breaker closes once the fleet is healthy
        if self._webhooks:
            self.delivery.wake()
        statuses = [
            status
            for spec in self.slo_specs
            for status in self.slo_evaluator.evaluate_all(spec, at_s, self.windows)
        ]
        self.last_slo_statuses = statuses
        if statuses:
            self.store.append(slo_status_samples(statuses, at_s))

    async def run(self, *, api_token: str | None = None) -> None:
        """Scrape and evaluate until cancelled; with `api_token` (and `api.enabled`), serve
        the HTTP API with every router in `api_routers` in this loop too."""
        if api_token and self.settings.api.enabled:
            from ._api import create_control_plane_api, serve_api

            api = create_control_plane_api(token=api_token, routers=self.api_routers)
            async with serve_api(api, host=self.settings.api.host, port=self.settings.api.port):
                await self._run_loops()
        else:
            await self._run_loops()

    async def _run_loops(self) -> None:
        if self.remediation is not None:
            # A control plane killed mid-action left it started but unfinished: settle it
            # (found done, or started again) before acting on anything new.
            try:
                await asyncio.to_thread(self.remediation.resume_interrupted)
            except Exception:
                logger.exception("settling interrupted remediation decisions failed")
        background: list[asyncio.Task[None]] = []
        if self.settings.source.kind == "store":  # a Prometheus source scrapes for itself
            background.append(asyncio.create_task(self.scraper.run(), name="scraper"))
        background.extend(
            asyncio.create_task(discovery.run(self._discovery_changed), name="discovery")
            for _, discovery in self.discoveries
        )
        background.append(asyncio.create_task(self._compact_forever(), name="compaction"))
        if self._webhooks:
            self.delivery.start()
        try:
            await self._evaluate_forever()
        finally:
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            if self._webhooks:
                await asyncio.to_thread(self.delivery.stop)

    async def _evaluate_forever(self) -> None:
        interval = self.settings.global_.evaluation_interval
        while True:
            started = time.time()
            try:
                await asyncio.to_thread(self.evaluate_once, started)
            except Exception:
                logger.exception("evaluation round failed; trying again next interval")
            await asyncio.sleep(max(0.0, interval - (time.time() - started)))

    async def _compact_forever(self) -> None:
        """Enforce the store's retention now and every `store.compaction_interval`."""
        while True:
            try:
                await asyncio.to_thread(self.retention.compact, time.time())
            except Exception:
                logger.exception("store compaction failed; trying again next interval")
            await asyncio.sleep(self.settings.store.compaction_interval)

    def wait_notifications(self) -> None:
        """Hand every queued notification to its receiver once (the demo's shutdown)."""
        for background in self._background:
            background.wait_idle()
        if self._webhooks:
            self.delivery.deliver_due()

    def close(self) -> None:
        if self.remediation is not None:
            self.remediation.close()
        for _, discovery in self.discoveries:
            if isinstance(discovery, HttpDiscovery):
                discovery.close()
        if isinstance(self.source, PrometheusSource):
            self.source.close()
        for background in self._background:
            background.close()
        for webhook in self._webhooks.values():
            webhook.close()
        self.tracing.close()
        self.database.dispose()

