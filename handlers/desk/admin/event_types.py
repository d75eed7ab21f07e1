"""Event types: the 16 types with their five flags (saved through
`RuntimeConfig.update_event_type`, as `PUT /api/v1/event-types/{code}`), and the template
editor per type and recipient over the template library (`TemplateLibrary`: versions,
history, revert), with a preview that follows the typing."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from dispatch.catalogue import EVENT_TYPES
from dispatch.render.library import RECIPIENTS, TemplateRecipient
from dispatch.render.versions import MAX_TEMPLATE_CHARS, TemplateRefused
from handlers.common.keys import DB, RUNTIME_CONFIG, TEMPLATE_LIBRARY
from handlers.desk.admin import editor
from handlers.desk.admin.access import admin, admin_form, field_errors
from handlers.desk.pages import DeskError, page, render, see_other
from handlers.desk.sessions import DeskUser

logger = logging.getLogger(__name__)

routes = web.RouteTableDef()

PATH = "/desk/event-types"
FLAGS = (
    ("confirm_before_send", "Запрос перед отправкой"),
    ("send_to_client", "Клиенту"),
    ("send_to_manager", "Менеджеру"),
    ("tracked_by_manager", "Отслеживается менеджером"),
    ("default_for_new_clients", "Для новых клиентов"),
)
"""The seed's five flags, in its order, with the column headings."""
RECIPIENT_NAMES = {
    "client": "SMS клиенту",
    "manager": "SMS менеджеру",
    "client_telegram": "Telegram клиенту",
    "manager_telegram": "Telegram менеджеру",
}
_FLAG_FIELDS = len(EVENT_TYPES) * len(FLAGS) + 1


def _code(request: web.Request) -> str:
    code = request.match_info["code"]
    if code not in EVENT_TYPES:
        raise DeskError(404, "not_found", f"unknown event type {code!r}", "Такого типа нет.")
    return code


def _recipient(request: web.Request) -> TemplateRecipient:
    recipient = request.match_info["recipient"]
    for known in RECIPIENTS:
        if recipient == known:
            return known
    raise DeskError(404, "not_found", f"unknown recipient {recipient!r}", "Такого текста нет.")


def _editor_path(code: str, recipient: str) -> str:
    return f"{PATH}/{code}/{recipient}"


@routes.get(PATH)
@page
async def table(request: web.Request) -> web.StreamResponse:
    user = await admin(request)
    return await _table(request, user)


async def _table(
    request: web.Request, user: DeskUser, *, status: int = 200, problems: Any = None
) -> web.Response:
    async with request.app[DB].sessions() as session:
        effective = await request.app[RUNTIME_CONFIG].current(session)
    return render(
        "event_types.html.j2",
        status=status,
        user=user,
        section="event_types",
        rows=[(code, kind, effective.event_type(code)) for code, kind in EVENT_TYPES.items()],
        flags=FLAGS,
        recipients=RECIPIENT_NAMES,
        saved=request.query.get("done") == "saved",
        problems=problems or {},
    )


@routes.post(PATH)
@page
async def save_flags(request: web.Request) -> web.StreamResponse:
    """Every type's flags as ticked; only the types whose flags changed are stored."""
    user, form = await admin_form(request, max_fields=_FLAG_FIELDS)
    config = request.app[RUNTIME_CONFIG]
    problems: dict[str, str] = {}
    changed: list[str] = []
    async with request.app[DB].sessions() as session:
        effective = await config.current(session)
    for code in EVENT_TYPES:
        current = effective.event_type(code)
        wanted = {flag: form.get(f"{code}.{flag}") == "on" for flag, _ in FLAGS}
        changes = {
            flag: value for flag, value in wanted.items() if getattr(current, flag) != value
        }
        if not changes:
            continue
        try:
            async with request.app[DB].transaction() as session:
                await config.update_event_type(session, code, changes, actor=user.actor)
        except ValidationError as exc:
            problems[code] = "; ".join(field_errors(exc).values())
            continue
        changed.append(code)
    if changed:
        logger.info("event type flags changed in the desk: %s", ", ".join(changed))
    if problems:
        return await _table(request, user, status=422, problems=problems)
    return see_other(f"{PATH}?done=saved")


async def _editor(
    request: web.Request,
    user: DeskUser,
    code: str,
    recipient: TemplateRecipient,
    *,
    source: str | None = None,
    status: int = 200,
    refused: TemplateRefused | None = None,
) -> web.Response:
    view = await request.app[TEMPLATE_LIBRARY].view(code, recipient)
    shown = view.source if source is None else source
    shown_preview = (
        await editor.preview(request, code, recipient, shown) if shown is not None else None
    )
    done = request.query.get("done")
    return render(
        "template_editor.html.j2",
        status=status,
        user=user,
        section="event_types",
        code=code,
        kind=EVENT_TYPES[code],
        recipient=recipient,
        recipients=RECIPIENT_NAMES,
        view=view,
        source=shown or "",
        preview=shown_preview,
        refused=refused,
        done=done if done in ("saved", "reverted") else None,
        max_chars=MAX_TEMPLATE_CHARS,
        path=_editor_path(code, recipient),
    )


@routes.get(PATH + "/{code}/{recipient}")
@page
async def template_editor(request: web.Request) -> web.StreamResponse:
    user = await admin(request)
    return await _editor(request, user, _code(request), _recipient(request))


@routes.post(PATH + "/{code}/{recipient}/preview")
@page
async def template_preview(request: web.Request) -> web.StreamResponse:
    """htmx swaps in the preview alone; without JS the whole editor comes back with it."""
    user, form = await admin_form(request)
    code, recipient = _code(request), _recipient(request)
    source = form.get("source", "")[:MAX_TEMPLATE_CHARS]
    if not editor.from_htmx(request):
        return await _editor(request, user, code, recipient, source=source)
    return editor.fragment(await editor.preview(request, code, recipient, source))


@routes.post(PATH + "/{code}/{recipient}/save")
@page
async def template_save(request: web.Request) -> web.StreamResponse:
    user, form = await admin_form(request)
    code, recipient = _code(request), _recipient(request)
    source = form.get("source", "")
    library = request.app[TEMPLATE_LIBRARY]
    try:
        if not source.strip() or len(source) > MAX_TEMPLATE_CHARS:
            raise TemplateRefused(
                f"the text must be 1 to {MAX_TEMPLATE_CHARS} characters",
                field="source",
                kind="length",
            )
        await library.save(code, recipient, source, actor=user.actor)
    except TemplateRefused as exc:
        return await _editor(
            request, user, code, recipient, source=source, status=422, refused=exc
        )
    return see_other(f"{_editor_path(code, recipient)}?done=saved")


@routes.post(PATH + "/{code}/{recipient}/revert")
@page
async def template_revert(request: web.Request) -> web.StreamResponse:
    user, form = await admin_form(request)
    code, recipient = _code(request), _recipient(request)
    text = form.get("version", "")
    # The column is a 32-bit integer, as the API's RevertIn bounds it.
    if not text.isdigit() or int(text) > 2**31 - 1:
        raise DeskError(422, "validation_error", "version: a number", "Версия — это число.")
    version = int(text)
    try:
        await request.app[TEMPLATE_LIBRARY].revert(code, recipient, version, actor=user.actor)
    except TemplateRefused as exc:
        return await _editor(request, user, code, recipient, status=422, refused=exc)
    return see_other(f"{_editor_path(code, recipient)}?done=reverted")
