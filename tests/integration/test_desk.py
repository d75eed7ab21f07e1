"""The web desk without a browser: sessions, CSRF, one-time links, scope, the live stream.

A running Vestnik on loopback (SQLite and PostgreSQL), called with aiohttp's client as a
browser would (forms, cookies, `Accept: text/html`); the browser scenarios themselves are
in tests/browser/.
"""

from __future__ import annotations

import asyncio
import html
import re
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from http.cookies import SimpleCookie

import pytest
from aiohttp import ClientResponse

from handlers.desk import sessions
from handlers.desk.config import DESK, DESK_LINKS
from storage.desk import tokens
from storage.types import utcnow
from tests.conftest import Service, make_settings, start_service
from tests.integration.desk_support import (
    CONFIRM_FIRST,
    HTML,
    OTHER_CLIENT,
    OTHER_MANAGER,
    csrf_of,
    order_ready,
    sign_in_as_admin,
    status_of,
)
from tests.integration.test_bot_support import add_manager


@pytest.fixture
async def desk_service(database_url: str) -> AsyncIterator[Service]:
    """Live mode without channels; orders ready for pickup wait for confirmation."""
    settings = make_settings(database_url, notify={"mode": "live"}, **CONFIRM_FIRST)
    running = await start_service(settings)
    try:
        yield running
    finally:
        await running.client.close()


def desk_cookie(response: ClientResponse) -> SimpleCookie:
    cookie = SimpleCookie()
    for header in response.headers.getall("Set-Cookie", []):
        cookie.load(header)
    return cookie


async def test_an_admin_signs_in_with_the_token_and_out_again(desk_service: Service) -> None:
    client = desk_service.client
    entrance = await client.get("/desk/", headers=HTML, allow_redirects=False)
    assert (entrance.status, entrance.headers["Location"]) == (303, "/desk/signin")

    wrong = await client.post("/desk/signin", data={"token": "x" * 20}, headers=HTML)
    assert wrong.status == 401
    assert "Неверный токен администратора" in await wrong.text()
    assert "Set-Cookie" not in wrong.headers
    assert "vestnik_desk" not in {cookie.key for cookie in client.session.cookie_jar}

    signed = await client.post(
        "/desk/signin",
        data={"token": "test-admin-token"},
        headers=HTML,
        allow_redirects=False,
    )
    assert signed.status == 303
    morsel = desk_cookie(signed)["vestnik_desk"]
    assert morsel["httponly"] is True
    assert morsel["samesite"] == "Strict"
    assert morsel["path"] == "/desk"
    assert not morsel["secure"]  # plain http here; https public_url would make it Secure
    page = await client.get("/desk/journal", headers=HTML)
    assert page.status == 200
    body = await page.text()
    assert "Журнал уведомлений" in body and "Администратор" in body
    assert page.headers["Cache-Control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]

    refused = await client.post("/desk/signout", data={}, headers=HTML)
    assert refused.status == 403
    assert (await client.get("/desk/journal", headers=HTML)).url.path == "/desk/journal"

    out = await client.post(
        "/desk/signout", data={"csrf": csrf_of(body)}, headers=HTML, allow_redirects=False
    )
    assert (out.status, out.headers["Location"]) == (303, "/desk/signin")
    after = await client.get("/desk/journal", headers=HTML, allow_redirects=False)
    assert (after.status, after.headers["Location"]) == (303, "/desk/signin")


async def test_a_session_ends_by_itself_and_a_forged_one_never_starts(
    database_url: str,
) -> None:
    # 0.0005 hours: a session of 1.8 s.
    service = await start_service(make_settings(database_url, desk={"session_hours": 0.0005}))
    jar = service.client.session.cookie_jar
    try:
        await sign_in_as_admin(service)
        cookie = jar.filter_cookies(service.client.make_url("/desk/"))["vestnik_desk"].value
        payload, _, signature = cookie.partition(".")
        forged = sessions.encode(
            b"another key of 32 bytes, not ours",
            sessions.Session("admin", None, time.time() + 3600, "csrf", None),
        )
        # Signed with another key, changed after signing, not a session at all.
        for value in (forged, payload[:-2] + "AA." + signature, "garbage"):
            jar.clear()
            jar.update_cookies({"vestnik_desk": value})
            page = await service.client.get("/desk/journal", headers=HTML, allow_redirects=False)
            assert page.headers.get("Location") == "/desk/signin", value

        jar.clear()
        jar.update_cookies({"vestnik_desk": cookie})
        page = await service.client.get("/desk/journal", headers=HTML, allow_redirects=False)
        assert page.status == 200
        await asyncio.sleep(2.0)
        page = await service.client.get("/desk/journal", headers=HTML, allow_redirects=False)
        assert page.headers.get("Location") == "/desk/signin"
    finally:
        await service.client.close()


async def test_changing_the_admin_token_signs_the_admins_out(database_url: str) -> None:
    secret = {"secret": "desk-secret-kept-the-same"}
    first = await start_service(make_settings(database_url, desk=secret))
    try:
        await sign_in_as_admin(first)
        jar = first.client.session.cookie_jar
        value = jar.filter_cookies(first.client.make_url("/desk/"))["vestnik_desk"].value
    finally:
        await first.client.close()
    second = await start_service(
        make_settings(database_url, desk=secret, admin={"token": "a-new-admin-token-here"})
    )
    try:
        second.client.session.cookie_jar.update_cookies({"vestnik_desk": value})
        page = await second.client.get("/desk/journal", headers=HTML, allow_redirects=False)
        assert page.headers.get("Location") == "/desk/signin"
    finally:
        await second.client.close()


async def test_a_form_without_its_csrf_token_changes_nothing(desk_service: Service) -> None:
    notification_id = await order_ready(desk_service, "ЗК-000501")
    assert await status_of(desk_service, notification_id) == "awaiting_confirmation"
    csrf = await sign_in_as_admin(desk_service)
    path = f"/desk/notifications/{notification_id}/confirm"

    for form in ({}, {"csrf": ""}, {"csrf": csrf[:-1] + "x"}, {"csrf": csrf + "x"}):
        refused = await desk_service.client.post(path, data=form, allow_redirects=False)
        assert refused.status == 403, form
        # Not a browser page (no Accept: text/html): the contract's error body.
        assert (await refused.json())["error"]["code"] == "forbidden"
    page = await desk_service.client.post(path, data={}, headers=HTML)
    assert page.status == 403 and "Форма устарела" in await page.text()
    assert await status_of(desk_service, notification_id) == "awaiting_confirmation"
    assert len(await desk_service.history(notification_id)) == 1

    done = await desk_service.client.post(
        path, data={"csrf": csrf, "note": "клиент ждёт"}, allow_redirects=False
    )
    assert done.status == 303
    assert done.headers["Location"] == f"/desk/notifications/{notification_id}?done=confirm"
    # Released to the workers (who find no channel configured here: skipped).
    history = await desk_service.history(notification_id)
    assert history[1] == ("awaiting_confirmation", "pending", "клиент ждёт")
    card = await (await desk_service.client.get(done.headers["Location"], headers=HTML)).text()
    assert "Отправка подтверждена" in card and "admin:desk" in card

    again = await desk_service.client.post(path, data={"csrf": csrf}, allow_redirects=False)
    assert again.headers["Location"].endswith("?refused=confirm")


async def test_a_manager_link_signs_in_once_and_shows_only_their_clients(
    desk_service: Service,
) -> None:
    mine = await order_ready(desk_service, "ЗК-000601")
    theirs = await order_ready(
        desk_service, "ЗК-000602", client=OTHER_CLIENT, manager=OTHER_MANAGER
    )
    await add_manager(desk_service)  # M-7, not an admin
    link = await desk_service.app[DESK_LINKS].issue(desk_service.db, "M-7")
    path = link.url.removeprefix(desk_service.app[DESK].link_base)
    assert path.startswith("/desk/link/") and link.minutes == 10

    opened = await desk_service.client.get(path, headers=HTML)
    assert opened.status == 200 and "Войти как Иван Петров" in await opened.text()
    token = path.rsplit("/", 1)[1]
    used = await desk_service.client.post(
        "/desk/link", data={"token": token}, headers=HTML, allow_redirects=False
    )
    assert (used.status, used.headers["Location"]) == (303, "/desk/journal")
    journal = await (await desk_service.client.get("/desk/journal", headers=HTML)).text()
    assert "ЗК-000601" in journal and "ЗК-000602" not in journal
    assert "только ваши клиенты" in journal
    by_number = await desk_service.client.get(
        "/desk/journal", params={"number": "ЗК-000602"}, headers=HTML
    )
    assert "Уведомлений нет" in await by_number.text()

    csrf = csrf_of(journal)
    card = await desk_service.client.get(f"/desk/notifications/{theirs}", headers=HTML)
    assert card.status == 404
    acted = await desk_service.client.post(
        f"/desk/notifications/{theirs}/cancel", data={"csrf": csrf}, headers=HTML
    )
    assert acted.status == 404
    assert await status_of(desk_service, theirs) == "awaiting_confirmation"
    cancelled = await desk_service.client.post(
        f"/desk/notifications/{mine}/cancel", data={"csrf": csrf}, allow_redirects=False
    )
    assert cancelled.status == 303
    _, detail = await desk_service.admin("GET", f"/api/v1/notifications/{mine}")
    assert detail["status"] == "cancelled"
    assert detail["history"][-1]["actor"] == "manager:M-7"

    # The link is spent: neither its page nor its button work again.
    for response in (
        await desk_service.client.get(path, headers=HTML),
        await desk_service.client.post("/desk/link", data={"token": token}, headers=HTML),
    ):
        assert response.status == 410
        assert "уже использована или её срок истёк" in await response.text()


async def test_an_expired_or_unknown_link_is_refused(desk_service: Service) -> None:
    await add_manager(desk_service)
    old = "o" * 43
    async with desk_service.db.transaction() as session:
        await tokens.issue(
            session, old, manager_id="M-7", expires_at=utcnow() - timedelta(seconds=1)
        )
    for token in (old, "u" * 43, "short", "<script>" * 6):
        response = await desk_service.client.post(
            "/desk/link", data={"token": token}, headers=HTML, allow_redirects=False
        )
        assert response.status == 410, token
        assert "Set-Cookie" not in response.headers


async def test_the_journal_filters_and_pages(desk_service: Service) -> None:
    ids = [await order_ready(desk_service, f"ЗК-{700 + n:06d}") for n in range(3)]
    await sign_in_as_admin(desk_service)
    client = desk_service.client

    page = await (await client.get("/desk/journal?number=ЗК-000701", headers=HTML)).text()
    assert f"№{ids[1]}<" in page and f"№{ids[0]}<" not in page
    assert "Заказ ЗК-000701" in page

    bad = await client.get("/desk/journal?status=lost&from=2026-13-01", headers=HTML)
    assert bad.status == 400
    text = await bad.text()
    assert "неизвестный статус «lost»" in text and "ГГГГ-ММ-ДД" in text

    today = utcnow().date().isoformat()
    dated = await (await client.get(f"/desk/journal?from={today}&to={today}", headers=HTML)).text()
    assert all(f"№{n}<" in dated for n in ids)
    empty = await (await client.get("/desk/journal?to=2020-01-01", headers=HTML)).text()
    assert "Уведомлений нет" in empty


async def test_the_live_stream_brings_new_rows_and_status_changes(
    desk_service: Service,
) -> None:
    csrf = await sign_in_as_admin(desk_service)
    stream = await desk_service.client.get(
        "/desk/journal/events", params={"since": "0"}, headers={"Accept": "text/event-stream"}
    )
    assert stream.status == 200
    assert stream.headers["Content-Type"].startswith("text/event-stream")

    async def next_row(containing: str) -> str:
        async with asyncio.timeout(10):
            event: list[str] = []
            while True:
                line = (await stream.content.readline()).decode()
                if line.strip():
                    event.append(line)
                    continue
                block = "".join(event)
                event = []
                if "event: row" in block and containing in block:
                    return block

    notification_id = await order_ready(desk_service, "ЗК-000801")
    row = await next_row("ЗК-000801")
    assert f'"id":{notification_id}' in row and "ждёт подтверждения" in row
    await desk_service.client.post(
        f"/desk/notifications/{notification_id}/cancel", data={"csrf": csrf}
    )
    changed = await next_row(f'"id":{notification_id}')
    assert "отменено" in changed
    stream.close()


async def test_a_manager_stream_carries_only_their_clients(desk_service: Service) -> None:
    await add_manager(desk_service)
    link = await desk_service.app[DESK_LINKS].issue(desk_service.db, "M-7")
    token = link.url.rsplit("/", 1)[1]
    signed = await desk_service.client.post(
        "/desk/link", data={"token": token}, allow_redirects=False
    )
    assert signed.status == 303
    stream = await desk_service.client.get("/desk/journal/events")
    assert stream.status == 200

    theirs = await order_ready(
        desk_service, "ЗК-000851", client=OTHER_CLIENT, manager=OTHER_MANAGER
    )
    mine = await order_ready(desk_service, "ЗК-000852")
    seen: list[str] = []
    async with asyncio.timeout(10):
        while not any("ЗК-000852" in line for line in seen):
            seen.append((await stream.content.readline()).decode())
    stream.close()
    text = "".join(seen)
    assert f'"id":{mine}' in text
    assert f'"id":{theirs}' not in text and "ЗК-000851" not in text


async def test_the_journal_pages_back_fifty_at_a_time(desk_service: Service) -> None:
    ids = await asyncio.gather(*(order_ready(desk_service, f"ЗК-{n:06d}") for n in range(55)))
    await sign_in_as_admin(desk_service)
    first = await (await desk_service.client.get("/desk/journal", headers=HTML)).text()
    assert first.count('<tr id="n-') == 50
    cursor = re.search(r'href="/desk/journal\?(before=[^"]+)">Более старые', first)
    assert cursor is not None
    older = await desk_service.client.get(f"/desk/journal?{html.unescape(cursor.group(1))}")
    rest = await older.text()
    assert sorted(int(n) for n in re.findall(r'<tr id="n-(\d+)"', rest)) == sorted(ids)[:5]
    assert "Более старые" not in rest and "← К новым" in rest


async def test_static_files_are_served_for_a_year(desk_service: Service) -> None:
    page = await (await desk_service.client.get("/desk/signin", headers=HTML)).text()
    src = re.search(r'<script src="(/desk/static/htmx\.min\.js\?v=[0-9a-f]+)"', page)
    assert src is not None
    script = await desk_service.client.get(src.group(1))
    assert script.status == 200
    assert script.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert script.content_type == "text/javascript"
    assert b"htmx" in await script.read()
    missing = await desk_service.client.get("/desk/static/../settings.py")
    assert missing.status == 404


async def test_without_an_admin_token_the_desk_is_closed_to_admins(database_url: str) -> None:
    for desk, says in (
        # A key for the managers' sessions, but no admin token.
        ({"secret": "desk-secret-for-managers"}, "Вход для администраторов закрыт"),
        # No key at all (no desk.secret, admin token or bot): nobody can sign in.
        ({}, "Рабочее место закрыто"),
    ):
        service = await start_service(
            make_settings(database_url, admin={"token": None}, desk=desk)
        )
        try:
            page = await service.client.get("/desk/signin", headers=HTML)
            assert says in await page.text()
            tried = await service.client.post(
                "/desk/signin", data={"token": "anything-at-all-here"}, allow_redirects=False
            )
            assert tried.status == 403
            assert "Set-Cookie" not in tried.headers
        finally:
            await service.client.close()
