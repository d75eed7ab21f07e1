"""SMS services in the desk: the run-time directory listed, added, edited with write-only
secrets, checked against the provider and removed (or refused with the reason), through
the code behind `/api/v1/sms-services`.

A running Vestnik on loopback (SQLite and PostgreSQL) with the fake `http` SMS gateway
`main`, called with aiohttp's client as a browser would.
"""

from __future__ import annotations

import html
import re

from tests.conftest import Service
from tests.fakes.sms_http import FakeHttpGateway
from tests.integration.desk_support import HTML, sign_in_as_admin

PATH = "/desk/sms-services"


def visible(page: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


async def test_an_admin_adds_edits_and_checks_a_service(
    sms_service: Service, sms_gateway: FakeHttpGateway
) -> None:
    csrf = await sign_in_as_admin(sms_service)
    listing = await (await sms_service.client.get(PATH, headers=HTML)).text()
    assert 'id="s-main"' in listing and "используется" in listing

    form = {"name": "reserve", "kind": "http", "base_url": sms_gateway.base_url}
    refused = await sms_service.client.post(
        PATH, data={**form, "base_url": "", "csrf": csrf}, headers=HTML
    )
    assert refused.status == 422
    assert 'id="err-base_url"' in await refused.text()
    added = await sms_service.client.post(
        PATH,
        data={**form, "token": sms_gateway.token, "sender": "PARTS", "csrf": csrf},
        headers=HTML,
        allow_redirects=False,
    )
    assert (added.status, added.headers["Location"]) == (303, PATH + "?done=saved")
    status, entry = await sms_service.admin("GET", "/api/v1/sms-services/reserve")
    assert status == 200 and entry["token"] == "***" and entry["sender"] == "PARTS"

    # The edit form never shows the secret; left empty, it is kept.
    page = await (await sms_service.client.get(PATH + "/reserve/edit", headers=HTML)).text()
    assert sms_gateway.token not in page and "Оставьте пустым, чтобы не менять" in page
    edited = await sms_service.client.post(
        PATH,
        data={**form, "editing": "reserve", "token": "", "sender": "SHOP", "csrf": csrf},
        headers=HTML,
        allow_redirects=False,
    )
    assert edited.status == 303
    _, entry = await sms_service.admin("GET", "/api/v1/sms-services/reserve")
    assert (entry["token"], entry["sender"]) == ("***", "SHOP")
    checked = await sms_service.client.post(
        PATH + "/reserve/check", data={"csrf": csrf}, headers=HTML
    )
    text = visible(await checked.text())
    assert "«reserve» отвечает: баланс 1000" in text, text

    twice = await sms_service.client.post(PATH, data={**form, "csrf": csrf}, headers=HTML)
    assert twice.status == 409 and "уже есть" in await twice.text()


async def test_a_wrong_token_shows_in_the_check_and_removal_says_why_not(
    sms_service: Service, sms_gateway: FakeHttpGateway
) -> None:
    csrf = await sign_in_as_admin(sms_service)
    await sms_service.client.post(
        PATH,
        data={
            "name": "spare",
            "kind": "http",
            "base_url": sms_gateway.base_url,
            "token": "not-the-token",
            "csrf": csrf,
        },
        headers=HTML,
    )
    checked = await sms_service.client.post(
        PATH + "/spare/check", data={"csrf": csrf}, headers=HTML
    )
    assert "«spare» не отвечает" in visible(await checked.text())

    removed = await sms_service.client.post(
        PATH + "/spare/delete", data={"csrf": csrf}, headers=HTML, allow_redirects=False
    )
    assert (removed.status, removed.headers["Location"]) == (303, PATH + "?done=removed")
    status, _ = await sms_service.admin("GET", "/api/v1/sms-services/spare")
    assert status == 404
    last = await sms_service.client.post(PATH + "/main/delete", data={"csrf": csrf}, headers=HTML)
    assert last.status == 409
    assert "is the last SMS service" in visible(await last.text())
    forged = await sms_service.client.post(PATH + "/main/delete", data={}, headers=HTML)
    assert forged.status == 403
    status, _ = await sms_service.admin("GET", "/api/v1/sms-services/main")
    assert status == 200
