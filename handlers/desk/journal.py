"""The journal page and a notification's card with the actions of CONTRACT §6.

The actions are `JournalActions`' (the same code as the admin API and the bot, with their
side effects: the workers woken, the managers' prompts edited); a view only checks who may
act, and turns the outcome into the card again (post/redirect/get) with a line saying what
happened.
"""

from __future__ import annotations

from aiohttp import web

from dispatch.journal import actions
from dispatch.journal.actions import CONFIRMABLE, RESENDABLE, ActionResult
from handlers.common.cursors import encode_cursor
from handlers.common.ids import row_id
from handlers.common.keys import DB, JOURNAL_ACTIONS
from handlers.desk import sessions
from handlers.desk.config import DESK_FEED
from handlers.desk.forms import read_form
from handlers.desk.pages import DeskError, page, render, see_other
from handlers.desk.rows import RowNames, parse_filters
from handlers.http.notifications import CURSOR_PREFIX, NOTE_MAX_CHARS
from storage import directory, notifications
from storage.desk import feed
from storage.statuses import MANUAL_TRANSITIONS, Status

routes = web.RouteTableDef()

ACTIONS = ("confirm", "cancel", "resend", "sent_manually", "cancelled")
"""`cancel` declines a confirmation; `cancelled` and `sent_manually` set the status by hand."""


def _not_found(notification_id: int) -> DeskError:
    return DeskError(
        404,
        "not_found",
        f"notification {notification_id} does not exist",
        f"Уведомление №{notification_id} не найдено среди ваших.",
    )


def _card_path(notification_id: int) -> str:
    return f"/desk/notifications/{notification_id}"


@routes.get("/desk/journal")
@page
async def journal(request: web.Request) -> web.StreamResponse:
    user = await sessions.signed_in(request)
    filters = parse_filters(request.query, user)
    db = request.app[DB]
    async with db.sessions() as session:
        # Read before the rows: a change made in between reaches the page by its stream.
        last_change = await feed.last_change(session)
    entries: list[actions.JournalEntry] = []
    following = None
    if not filters.errors:
        journal_page = await actions.journal_page(db, filters.where)
        entries = list(journal_page.entries)
        following = journal_page.next_before_id
    rows = [entry.notification for entry in entries]
    async with db.sessions() as session:
        names = await RowNames.read(session, rows)
    return render(
        "journal.html.j2",
        status=400 if filters.errors else 200,
        user=user,
        section="journal",
        filters=filters,
        rows=rows,
        names=names,
        first_page=filters.where.before_id is None,
        next_query=(
            filters.query(before=encode_cursor(following, CURSOR_PREFIX)) if following else None
        ),
        live_query=filters.query(since=str(last_change)),
    )


@routes.get("/desk/notifications/{id}")
@page
async def card(request: web.Request) -> web.StreamResponse:
    user = await sessions.signed_in(request)
    notification_id = row_id(request, "notification")
    async with request.app[DB].sessions() as session:
        entry = await actions.load_entry(session, notification_id)
        if entry is None or not user.may_see(entry.notification.manager_id):
            raise _not_found(notification_id)
        row = entry.notification
        names = await RowNames.read(session, [row])
        manager = await directory.manager_ref(session, row.manager_id) if row.manager_id else None
    mode = await request.app[JOURNAL_ACTIONS].mode()
    status = row.status  # a StrEnum set holds the plain string too
    done, refused = request.query.get("done"), request.query.get("refused")
    return render(
        "card.html.j2",
        user=user,
        section="journal",
        entry=entry,
        row=row,
        names=names,
        manager=manager,
        mode=mode,
        can={
            "confirm": status in CONFIRMABLE and mode != "off",
            "cancel": status in CONFIRMABLE,
            "resend": status in RESENDABLE and mode == "live",
            "sent_manually": status in MANUAL_TRANSITIONS[Status.SENT_MANUALLY],
            "cancelled": status in MANUAL_TRANSITIONS[Status.CANCELLED]
            and status not in CONFIRMABLE,
        },
        done=done if done in ACTIONS else None,
        refused=refused if refused in ACTIONS else None,
        refused_by_mode=request.query.get("why") == "mode",
        note_max=NOTE_MAX_CHARS,
    )


@routes.post("/desk/notifications/{id}/{action}")
@page
async def act(request: web.Request) -> web.StreamResponse:
    user = await sessions.signed_in(request)
    form = await read_form(request)
    sessions.check_csrf(user, form)
    notification_id = row_id(request, "notification")
    action = request.match_info["action"]
    if action not in ACTIONS:
        raise DeskError(404, "not_found", "no such action", "Такого действия нет.")
    note = form.get("note") or None
    if note is not None and len(note) > NOTE_MAX_CHARS:
        raise DeskError(
            422,
            "validation_error",
            f"note: at most {NOTE_MAX_CHARS} characters",
            f"Примечание — не длиннее {NOTE_MAX_CHARS} символов.",
        )
    async with request.app[DB].sessions() as session:
        row = await notifications.get_notification(session, notification_id)
    if row is None or not user.may_see(row.manager_id):
        raise _not_found(notification_id)
    result, by_mode = await _run(request, action, notification_id, user.actor, note)
    request.app[DESK_FEED].ring()
    path = _card_path(notification_id)
    if result.ok:
        return see_other(f"{path}?done={action}")
    if result.current_status is None:
        raise _not_found(notification_id)
    return see_other(f"{path}?refused={action}" + ("&why=mode" if by_mode else ""))


async def _run(
    request: web.Request, action: str, notification_id: int, actor: str, note: str | None
) -> tuple[ActionResult, bool]:
    """The action's result, and whether the notify mode was what refused it."""
    journal = request.app[JOURNAL_ACTIONS]
    if action in ("confirm", "resend"):
        mode = await journal.mode()
        if action == "confirm":
            result = await journal.confirm(notification_id, actor=actor, note=note, mode=mode)
            return result, mode == "off"
        result = await journal.resend(notification_id, actor=actor, note=note, mode=mode)
        return result, mode != "live"
    if action == "cancel":
        return await journal.cancel(notification_id, actor=actor, note=note), False
    status = Status.SENT_MANUALLY if action == "sent_manually" else Status.CANCELLED
    return await journal.set_status(notification_id, status=status, actor=actor, note=note), False
