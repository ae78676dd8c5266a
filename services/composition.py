"""The services beside one engine, built and stopped together."""

from __future__ import annotations

from engine.config import Settings
from engine.engine import Engine
from services.batch import BatchStore
from services.events import StateEventBus
from services.jobs import JobService
from services.loop_monitor import LoopLagMonitor
from services.metrics import MetricsRecorder
from services.store import Store
from services.webhooks.service import WebhookService


class Services:
    """Storage, metrics, jobs, batches and webhooks for ``engine``.

    Each service subscribes to the engine's events; the engine does not know
    them. Lifecycle: :meth:`start` after building, :meth:`stop_work` before
    the engine closes (no job starts on a closing engine), :meth:`close` after
    it (the engine's last events, such as ``model_unloaded``, still reach the
    webhook outbox).
    """

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self._engine = engine
        self.store = Store.from_settings(settings)
        self.state_events = StateEventBus()
        self.metrics = MetricsRecorder(
            self.store, retention_seconds=settings.metrics.retention_days * 86400.0
        )
        self.jobs = JobService(
            self.store,
            self.state_events,
            concurrency=settings.jobs.concurrency,
            max_attempts=settings.jobs.max_attempts,
            lease_seconds=settings.jobs.lease_seconds,
            poll_interval_seconds=settings.jobs.poll_interval_seconds,
        )
        self.batches = BatchStore(
            self.store, self.state_events, lease_seconds=settings.jobs.lease_seconds
        )
        self.webhooks = WebhookService(self.store, settings.webhooks)
        self.loop_monitor = LoopLagMonitor()
        self.state_events.subscribe(self.webhooks.on_state_event)
        engine.records.subscribe(self.metrics.record)
        engine.bus.subscribe(self.webhooks.on_engine_event)

    async def start(self) -> None:
        """Resume stored work: interrupted batches fail, queued jobs and deliveries run."""
        self.loop_monitor.start()
        self.metrics.start()
        await self.batches.start()
        await self.jobs.start()
        await self.webhooks.start()

    async def stop_work(self) -> None:
        """Stop running jobs (they resume at the next start)."""
        await self.jobs.stop()

    async def close(self) -> None:
        """Detach from the engine, stop deliveries, write pending metrics, close the database."""
        self._engine.records.unsubscribe(self.metrics.record)
        self._engine.bus.unsubscribe(self.webhooks.on_engine_event)
        await self.jobs.stop()
        await self.batches.stop()
        await self.webhooks.stop()
        await self.loop_monitor.stop()
        self.metrics.close()
        self.store.close()


async def shutdown(engine: Engine, services: Services) -> None:
    """Close an engine and its services in the order that loses nothing."""
    await services.stop_work()
    await engine.close()
    await services.close()
