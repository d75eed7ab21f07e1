"""`create_app(settings)`: the one place where everything is built and wired.

Long-lived resources are `cleanup_ctx` generators, so they start in order and stop in
reverse: the database first in and last out.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import timedelta

import aiohttp
from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError

from bot.keys import (
    BOT,
    DELIVERY,
    ERP_BUTTONS,
    ERP_OUTBOX,
    SETTINGS,
    TELEGRAM_CHANNEL,
    WORKERS,
)
from bot.logs import redact_also, request_id_middleware
from bot.scheduler import setup_scheduler
from bot.settings import Settings
from bot.telegram import create_bot, create_channel, setup_bot
from dispatch.delivery.cards import TelegramCards
from dispatch.delivery.channels.sms.live import LiveProviders
from dispatch.delivery.retry import RetryPolicy
from dispatch.delivery.service import ChannelLimits, DeliveryService
from dispatch.delivery.wakeup import Wakeup
from dispatch.delivery.worker import Worker
from dispatch.erp_actions.buttons import ErpButtons
from dispatch.erp_actions.outbox import ErpOutbox
from dispatch.intake.ingest import EventIngestor
from dispatch.journal.service import JournalActions
from dispatch.journal.status_changes import StatusChanges
from dispatch.ops.metrics import Metrics
from dispatch.render.library import StoredTemplates
from dispatch.render.renderer import Renderer
from dispatch.render.versions import TemplateLibrary
from dispatch.runtime_config import RuntimeConfig
from handlers.common import signature
from handlers.common.context import HttpContext
from handlers.common.errors import error_middleware
from handlers.common.guard import edge_hosts, request_guard
from handlers.common.keys import (
    DB,
    HTTP_CONTEXT,
    INGESTOR,
    JOURNAL_ACTIONS,
    METRICS,
    RENDERER,
    RUNTIME_CONFIG,
    SMS_PROVIDERS,
    STATUS_CHANGES,
    TEMPLATE_LIBRARY,
    TEST_SMS_LIMITS,
    WAKEUP,
)
from handlers.desk.config import DeskConfig
from handlers.desk.setup import setup_desk
from handlers.http import (
    clients,
    erp,
    event_types,
    health,
    jobs,
    managers,
    metrics,
    notifications,
    openapi,
    previews,
    receipts,
    sms_admin,
    sms_services,
    telegram_link,
)
from handlers.http import settings as settings_views
from storage import migrate
from storage.database import create_database
from storage.errors import StorageError
from storage.listen import Listener

logger = logging.getLogger(__name__)

# Admin calls (settings, client cards) are small; the ERP webhook enforces its own limit.
CLIENT_MAX_SIZE = 1024 * 1024


def create_app(
    settings: Settings,
    *,
    run_migrations: bool = True,
    run_workers: bool = True,
    poll_telegram: bool = True,
) -> web.Application:
    """Build the aiohttp application from `settings`; nothing starts until it runs.

    `poll_telegram=False`: the bot sends but does not long-poll for updates (another
    process of `serve --workers` does: Telegram allows one poller per token)."""
    app = web.Application(
        # The guard runs inside the error middleware, so its refusals get the contract's body.
        middlewares=[request_id_middleware(), error_middleware, request_guard],
        client_max_size=CLIENT_MAX_SIZE,
    )
    app[SETTINGS] = settings
    allowed_hosts, origin_hosts = edge_hosts(
        settings.http.host, settings.http.public_url, settings.http.allowed_hosts
    )
    app[TEST_SMS_LIMITS] = settings.test_sms
    app[HTTP_CONTEXT] = HttpContext(
        webhook_secret=settings.webhook.secret,
        webhook_tolerance_seconds=settings.webhook.tolerance_seconds,
        webhook_max_body_bytes=settings.webhook.max_body_bytes,
        body_timeout_seconds=settings.http.body_timeout_seconds,
        admin_token=settings.admin.token,
        public_url=settings.http.public_url,
        metrics_token=settings.metrics.token,
        allowed_hosts=allowed_hosts,
        origin_hosts=origin_hosts,
        erp_callbacks=settings.erp.configured,
    )
    renderer = Renderer(override_dir=settings.templates.folder)
    app[RENDERER] = renderer
    stored_templates = StoredTemplates()
    app[RUNTIME_CONFIG] = RuntimeConfig(
        notify=settings.notify,
        event_types=settings.event_types,
        sms_services=settings.sms_services,
        # The file's rates come shared out among `serve --workers` processes already.
        rate_share=1 / settings.http.processes,
        has_webhook_secret=bool(settings.webhook.secret),
    )
    app[RUNTIME_CONFIG].on_secrets(redact_also)

    app[METRICS] = Metrics()
    app[STATUS_CHANGES] = StatusChanges()
    wakeup = Wakeup()
    app[WAKEUP] = wakeup
    erp_buttons = (
        ErpButtons(settings.erp.callback_secret)
        if settings.erp.configured and settings.erp.callback_secret
        else None
    )
    app[ERP_BUTTONS] = erp_buttons

    async def database_ctx(app: web.Application) -> AsyncIterator[None]:
        db = create_database(
            settings.database.url,
            pool_size=settings.database.pool_size,
            echo=settings.database.echo,
        )
        if run_migrations:
            await migrate.upgrade(db)
        app[DB] = db
        app[INGESTOR] = EventIngestor(
            db=db,
            config=app[RUNTIME_CONFIG],
            renderer=renderer,
            sms_available=bool(settings.sms_services),
            on_queued=wakeup,
            # SQLite has one connection and one writer.
            flushers=1 if db.dialect == "sqlite" else settings.database.ingest_flushers,
            summary_seconds=settings.log.ingest_summary_seconds,
            templates=stored_templates,
        )
        app[TEMPLATE_LIBRARY] = TemplateLibrary(
            db=db, config=app[RUNTIME_CONFIG], renderer=renderer, stored=stored_templates
        )
        app[JOURNAL_ACTIONS] = JournalActions(
            db=db, config=app[RUNTIME_CONFIG], status_changes=app[STATUS_CHANGES], wake=wakeup
        )
        try:
            yield
        finally:
            await db.dispose()

    async def channels_ctx(app: web.Application) -> AsyncIterator[None]:
        """HTTP clients of the SMS providers and the Telegram bot."""
        async with aiohttp.ClientSession() as http:
            providers = LiveProviders(http, app[RUNTIME_CONFIG], settings.sms_services)
            try:
                await providers.refresh(app[DB])
            except (StorageError, SQLAlchemyError, OSError) as exc:
                # The file's services until the database answers (the workers retry it).
                logger.warning("SMS services stored in the database not read yet: %s", exc)
            app[SMS_PROVIDERS] = providers
            bot = create_bot(settings.telegram)
            app[BOT] = bot
            app[TELEGRAM_CHANNEL] = create_channel(bot)
            try:
                yield
            finally:
                providers.close()
                if bot is not None:
                    await bot.session.close()

    async def workers_ctx(app: web.Application) -> AsyncIterator[None]:
        """Delivery workers, woken in-process and, on PostgreSQL, by NOTIFY."""
        delivery_settings = settings.delivery
        providers = app[SMS_PROVIDERS]
        delivery = DeliveryService(
            db=app[DB],
            config=app[RUNTIME_CONFIG],
            telegram=app[TELEGRAM_CHANNEL],
            providers=providers,
            limits=ChannelLimits.build(
                telegram_per_second=delivery_settings.telegram_per_second,
                telegram_per_chat_per_second=delivery_settings.telegram_per_chat_per_second,
                providers=providers,
            ),
            policy=RetryPolicy(
                max_attempts=delivery_settings.max_attempts,
                max_age=timedelta(seconds=delivery_settings.max_age_seconds),
                base_seconds=delivery_settings.retry_base_seconds,
                cap_seconds=delivery_settings.retry_cap_seconds,
            ),
            metrics=app[METRICS],
            summary_seconds=settings.log.ingest_summary_seconds,
            cards=TelegramCards(app[DB], renderer),
            erp_buttons=erp_buttons,
        )
        app[DELIVERY] = delivery
        workers = [
            Worker(
                db=app[DB],
                delivery=delivery,
                concurrency=delivery_settings.workers,
                lease_seconds=delivery_settings.lease_seconds,
                poll_seconds=delivery_settings.poll_seconds,
                telegram_lane=lane,
            )
            for lane in (True, False)
        ]
        app[WORKERS] = workers
        for worker in workers:
            wakeup.subscribe(worker.wake, lane=worker.lane)
        listener = None
        if app[DB].dialect == "postgresql":
            listener = Listener(settings.database.url, wakeup.ring_payload)
            listener.start()
        for worker in workers:
            worker.start()
        try:
            yield
        finally:
            for worker in workers:
                wakeup.unsubscribe(worker.wake)
            if listener is not None:
                await listener.stop()
            await asyncio.gather(
                *(
                    worker.stop(grace_seconds=delivery_settings.shutdown_grace_seconds)
                    for worker in workers
                )
            )

    async def erp_outbox_ctx(app: web.Application) -> AsyncIterator[None]:
        """The presses of the ERP's buttons, posted to `erp.callback_url` until taken."""
        outbox = ErpOutbox(settings.erp, db=app[DB], sign=signature.sign, header=signature.HEADER)
        app[ERP_OUTBOX] = outbox
        if erp_buttons is not None:
            erp_buttons.subscribe(outbox.wake)
        outbox.start()
        try:
            yield
        finally:
            await outbox.stop()

    app.cleanup_ctx.append(database_ctx)
    app.cleanup_ctx.append(channels_ctx)
    if run_workers:
        app.cleanup_ctx.append(workers_ctx)
        if erp_buttons is not None:
            app.cleanup_ctx.append(erp_outbox_ctx)
    # The bot and the scheduler start last and stop first.
    setup_bot(app, settings, poll=poll_telegram)
    if run_workers and settings.scheduler.enabled:
        setup_scheduler(app, settings)
    app.add_routes(health.routes)
    app.add_routes(metrics.routes)
    app.add_routes(erp.routes)
    app.add_routes(notifications.routes)
    app.add_routes(settings_views.routes)
    app.add_routes(event_types.routes)
    app.add_routes(previews.routes)
    app.add_routes(clients.routes)
    app.add_routes(managers.routes)
    app.add_routes(jobs.routes)
    app.add_routes(receipts.routes)
    app.add_routes(sms_admin.routes)
    app.add_routes(sms_services.routes)
    # The deep-link endpoints are served with or without a bot (409 without one).
    app.add_routes(telegram_link.routes)
    app.add_routes(openapi.routes)
    setup_desk(
        app,
        DeskConfig.build(
            secret=settings.desk.secret,
            admin_token=settings.admin.token,
            telegram_token=settings.telegram.token,
            public_url=settings.http.public_url,
            host=settings.http.host,
            port=settings.http.port,
            session_hours=settings.desk.session_hours,
            link_minutes=settings.desk.link_minutes,
            live_seconds=settings.desk.live_seconds,
            body_timeout_seconds=settings.http.body_timeout_seconds,
        ),
    )
    return app
