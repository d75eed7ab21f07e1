"""Who may open the admin pages, and reading a form of one (signed in, CSRF checked)."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import ValidationError

from handlers.desk import sessions
from handlers.desk.forms import FORM_MAX_FIELDS, read_form
from handlers.desk.pages import DeskError
from handlers.desk.sessions import DeskUser


async def admin(request: web.Request) -> DeskUser:
    """The signed-in admin; a manager gets a page saying these pages are the admins'."""
    user = await sessions.signed_in(request)
    if user.session.role != "admin":
        raise DeskError(
            403,
            "forbidden",
            "this desk page is for admins only",
            "Эта страница — только для администратора: настройки меняет он. "
            "Журнал уведомлений ваших клиентов — в разделе «Журнал».",
        )
    return user


async def admin_form(
    request: web.Request, *, max_fields: int = FORM_MAX_FIELDS
) -> tuple[DeskUser, dict[str, str]]:
    """The admin and the posted form, whose CSRF token is this session's."""
    user = await admin(request)
    form = await read_form(request, max_fields=max_fields)
    sessions.check_csrf(user, form)
    return user, form


def field_errors(exc: ValidationError) -> dict[str, str]:
    """The domain's own messages by the first part of their location (the field)."""
    errors: dict[str, str] = {}
    for error in exc.errors():
        location: tuple[Any, ...] = tuple(error.get("loc", ()))
        key = str(location[0]) if location else "__all__"
        errors.setdefault(key, str(error.get("msg", "invalid value")))
    return errors
