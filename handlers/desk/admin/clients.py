"""Clients: search, the client card with its per-type overrides (send on/off, own
templates with the editor's preview) and the Telegram deep link with its QR code.

Overrides are checked and stored as `PUT /api/v1/clients/{id}` stores them
(`ClientOverrideIn`, `check_client_templates`, `put_client_type_setting`); the deep link is
the one `GET /api/v1/clients/{id}/telegram-link` issues."""

from __future__ import annotations

import logging
from typing import Any

import segno
from aiohttp import web
from pydantic import ValidationError

from dispatch.catalogue import EVENT_TYPES
from dispatch.conversation import subscriptions
from dispatch.render.preview import check_client_templates
from handlers.common.errors import ApiError
from handlers.common.ids import card_id
from handlers.common.keys import DB, RENDERER, RUNTIME_CONFIG
from handlers.desk.admin import editor
from handlers.desk.admin.access import admin, admin_form, field_errors
from handlers.desk.pages import DeskError, page, render, see_other
from handlers.desk.sessions import DeskUser
from handlers.http.clients import ClientOverrideIn
from handlers.http.telegram_link import T_ME
from handlers.http.telegram_link import _username as bot_username
from storage import directory
from storage.desk import clients as found_clients

logger = logging.getLogger(__name__)

routes = web.RouteTableDef()

PATH = "/desk/clients"
OWN_FIELDS = {"template_client": "SMS клиенту", "template_manager": "SMS менеджеру"}
"""The card's own texts the desk edits (the attachment's HTML stays with the API)."""
SEND_CHOICES = {"": "как у типа", "on": "отправлять", "off": "не отправлять"}
NO_OWN_TEXT = "Своего текста нет: уходит текст типа."
_SEND_FIELDS = len(EVENT_TYPES) + 1


def _not_found(client_id: str) -> DeskError:
    return DeskError(404, "not_found", f"client {client_id} does not exist", "Такого клиента нет.")


@routes.get(PATH)
@page
async def search(request: web.Request) -> web.StreamResponse:
    user = await admin(request)
    query = request.query.get("q", "").strip()[:100]
    found: list[found_clients.FoundClient] = []
    if query:
        async with request.app[DB].sessions() as session:
            found = await found_clients.search(session, query)
    return render(
        "clients.html.j2",
        user=user,
        section="clients",
        query=query,
        found=found,
        limit=found_clients.SEARCH_LIMIT,
    )


async def _card(
    request: web.Request,
    user: DeskUser,
    client_id: str,
    *,
    status: int = 200,
    link: dict[str, Any] | None = None,
    link_problem: str | None = None,
) -> web.Response:
    async with request.app[DB].sessions() as session:
        client = await directory.get_client(session, client_id)
        if client is None:
            raise _not_found(client_id)
        overrides = {
            row.event_type: row
            for row in await directory.list_client_type_settings(session, client_id)
        }
        chats = await directory.active_chat_ids(session, client_id=client_id)
        manager = (
            await directory.manager_ref(session, client.manager_id) if client.manager_id else None
        )
    return render(
        "client.html.j2",
        status=status,
        user=user,
        section="clients",
        client=client,
        manager=manager,
        linked=bool(chats),
        overrides=overrides,
        own_fields=OWN_FIELDS,
        send_choices=SEND_CHOICES,
        saved=request.query.get("done") == "saved",
        link=link,
        link_problem=link_problem,
    )


@routes.get(PATH + "/{id}")
@page
async def card(request: web.Request) -> web.StreamResponse:
    user = await admin(request)
    return await _card(request, user, card_id(request, "client"))


@routes.post(PATH + "/{id}/overrides")
@page
async def save_sends(request: web.Request) -> web.StreamResponse:
    """Send on/off per type; «как у типа» clears the card's choice."""
    _, form = await admin_form(request, max_fields=_SEND_FIELDS)
    client_id = card_id(request, "client")
    async with request.app[DB].transaction() as session:
        if await directory.client_ref(session, client_id) is None:
            raise _not_found(client_id)
        current = {
            row.event_type: row.send
            for row in await directory.list_client_type_settings(session, client_id)
        }
        for code in EVENT_TYPES:
            choice = form.get(f"{code}.send", "")
            send = None if choice not in ("on", "off") else choice == "on"
            if current.get(code) != send:
                values = ClientOverrideIn(send=send).model_dump(include={"send"})
                await directory.put_client_type_setting(session, client_id, code, values)
    logger.info("client %s: sends per type changed in the desk", client_id)
    return see_other(f"{PATH}/{client_id}?done=saved")


@routes.post(PATH + "/{id}/telegram-link")
@page
async def telegram_link(request: web.Request) -> web.StreamResponse:
    user, _ = await admin_form(request)
    client_id = card_id(request, "client")
    try:
        username = await bot_username(request)
    except ApiError as exc:
        return await _card(request, user, client_id, status=exc.status, link_problem=exc.message)
    issued = await subscriptions.issue_link_token(request.app[DB], client_id=client_id)
    if issued is None:
        raise _not_found(client_id)
    url = f"{T_ME}{username}?start={issued.token}"
    qr = segno.make(url, error="m").svg_inline(scale=4, title="QR-код ссылки в Telegram")
    logger.info("deep link issued for client %s in the desk", client_id)
    link = {"url": url, "qr": qr, "expires_at": issued.expires_at}
    return await _card(request, user, client_id, link=link)


def _own(request: web.Request) -> tuple[str, str, str]:
    client_id = card_id(request, "client")
    code, field = request.match_info["code"], request.match_info["field"]
    if code not in EVENT_TYPES or field not in OWN_FIELDS:
        raise DeskError(404, "not_found", "no such template", "Такого шаблона нет.")
    return client_id, code, field


async def _own_editor(
    request: web.Request,
    user: DeskUser,
    *,
    source: str | None = None,
    status: int = 200,
    problem: str | None = None,
) -> web.Response:
    client_id, code, field = _own(request)
    async with request.app[DB].sessions() as session:
        client = await directory.get_client(session, client_id)
        own = await directory.get_client_type_setting(session, client_id, code)
    if client is None:
        raise _not_found(client_id)
    saved_source = getattr(own, field) if own is not None else None
    shown = saved_source or "" if source is None else source
    return render(
        "client_template.html.j2",
        status=status,
        user=user,
        section="clients",
        client=client,
        code=code,
        kind=EVENT_TYPES[code],
        field=field,
        field_name=OWN_FIELDS[field],
        source=shown,
        has_own=saved_source is not None,
        preview=await editor.preview_own(request, code, field, shown) if shown else None,
        problem=problem,
        saved=request.query.get("done") == "saved",
        path=f"{PATH}/{client_id}/templates/{code}/{field}",
    )


@routes.get(PATH + "/{id}/templates/{code}/{field}")
@page
async def own_template(request: web.Request) -> web.StreamResponse:
    return await _own_editor(request, await admin(request))


@routes.post(PATH + "/{id}/templates/{code}/{field}/preview")
@page
async def own_preview(request: web.Request) -> web.StreamResponse:
    user, form = await admin_form(request)
    _, code, field = _own(request)
    source = form.get("source", "")
    if not editor.from_htmx(request):
        return await _own_editor(request, user, source=source)
    shown = await editor.preview_own(request, code, field, source) if source.strip() else None
    return editor.fragment(shown, empty_text=NO_OWN_TEXT)


@routes.post(PATH + "/{id}/templates/{code}/{field}/save")
@page
async def own_save(request: web.Request) -> web.StreamResponse:
    """An empty text clears the card's own template: the type's is used again."""
    user, form = await admin_form(request)
    client_id, code, field = _own(request)
    source = form.get("source", "")
    try:
        values = ClientOverrideIn.model_validate({field: source}).model_dump(include={field})
    except ValidationError as exc:
        problem = "; ".join(field_errors(exc).values())
        return await _own_editor(request, user, source=source, status=422, problem=problem)
    if values[field] is not None:
        async with request.app[DB].sessions() as session:
            notify = (await request.app[RUNTIME_CONFIG].current(session)).notify
        found = await check_client_templates(
            request.app[RENDERER], {code: {field: values[field]}}, notify
        )
        if found:
            where = f" (строка {found[0].lineno})" if found[0].lineno else ""
            return await _own_editor(
                request, user, source=source, status=422, problem=found[0].message + where
            )
    async with request.app[DB].transaction() as session:
        if await directory.client_ref(session, client_id) is None:
            raise _not_found(client_id)
        await directory.put_client_type_setting(session, client_id, code, values)
    logger.info("client %s: own %s of %s changed in the desk", client_id, field, code)
    return see_other(f"{PATH}/{client_id}/templates/{code}/{field}?done=saved")
