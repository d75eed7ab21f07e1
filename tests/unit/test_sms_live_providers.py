"""The providers follow the directory without losing what the delivery service knows about
the services nobody changed: their rate windows and their pauses (a provider out of money
stays paused when the admin edits another service)."""

from __future__ import annotations

import aiohttp

from dispatch.config import NotifySettings, SmsServiceConfig
from dispatch.delivery.channels.sms.live import LiveProviders
from dispatch.delivery.service import ChannelLimits
from dispatch.runtime_config import RuntimeConfig


def entry(name: str, **changes: object) -> SmsServiceConfig:
    values: dict[str, object] = {
        "name": name,
        "kind": "http",
        "base_url": f"http://127.0.0.1:9/{name}",
        "rate_per_second": 5,
    }
    return SmsServiceConfig.model_validate({**values, **changes})


async def test_an_edit_of_one_service_keeps_the_pause_and_window_of_the_other() -> None:
    config = RuntimeConfig(notify=NotifySettings(), event_types={}, has_webhook_secret=False)
    async with aiohttp.ClientSession() as http:
        providers = LiveProviders(http, config, [entry("main"), entry("backup")])
        limits = ChannelLimits.build(
            telegram_per_second=30, telegram_per_chat_per_second=1, providers=providers
        )
        main = providers["main"]
        main_window, main_pause = limits.sms_limits(main)
        main_pause.pause(300, "insufficient funds")
        backup_window, _ = limits.sms_limits(providers["backup"])

        providers.sync([entry("main"), entry("backup", rate_per_second=2), entry("third")])

        assert list(providers) == ["main", "backup", "third"]
        assert providers["main"] is main
        assert limits.sms_limits(providers["main"]) == (main_window, main_pause)
        assert main_pause.remaining() > 0
        new_window, new_pause = limits.sms_limits(providers["backup"])
        assert new_window is not backup_window and new_window.count == 2
        assert new_pause.remaining() == 0

        # A changed entry (the admin fixed the URL) is worth a try at once.
        providers.sync([entry("main", base_url="http://127.0.0.1:9/fixed")])
        assert list(providers) == ["main"]
        window, pause = limits.sms_limits(providers["main"])
        assert window is main_window  # same rate
        assert pause.remaining() == 0
        providers.close()
