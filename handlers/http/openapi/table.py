"""The route table: every operation the app serves, as the OpenAPI document lists it.

Request and response schemas are the models the views validate and answer with; limits
and enums come from the code. `tests/integration/test_openapi.py` checks that this table
and the app's routes are the same set: a new route needs a line here.
"""

from __future__ import annotations

from pydantic import BaseModel

from dispatch.config import EventTypeOverride
from dispatch.intake.schemas import EventIn
from dispatch.ops.job_names import JobName
from handlers.common import signature
from handlers.common.answers import Error
from handlers.common.ids import CARD_ID_MAX_CHARS
from handlers.http import (
    clients,
    erp,
    event_types,
    health,
    jobs,
    managers,
    notifications,
    previews,
    settings,
    sms_admin,
    sms_services,
    telegram_link,
)
from handlers.http.openapi.spec import JSON, Body, Param, Route

_TEXT = {"text/plain": {"type": "string"}}
_NOTIFICATION_ID = Param("id", "path", "Notification id.", {"type": "integer", "minimum": 1})
_SERVICE_NAME = Param("name", "path", "A service of the SMS services directory.")
_CODE = Param(
    "code", "path", "Event type code (docs/INTERFACE.md).", event_types.EVENT_CODE_SCHEMA
)
_RECIPIENT = Param(
    "recipient",
    "path",
    "Whose text: `client`, `manager` (the plain text, also the SMS), `client_telegram`, "
    "`manager_telegram` (HTML, sent instead of the plain text by Telegram).",
    event_types.RECIPIENT_SCHEMA,
)
_TEMPLATE = "/api/v1/event-types/{code}/templates/{recipient}"


def _card_id(who: str) -> Param:
    return Param(
        "id", "path", f"The ERP's {who} id.", {"type": "string", "maxLength": CARD_ID_MAX_CHARS}
    )


def _action(operation_id: str, action: str, summary: str, request: type[BaseModel]) -> Route:
    return Route(
        "post",
        f"/api/v1/notifications/{{id}}/{action}",
        operation_id,
        summary,
        "journal",
        {"200": Body("The updated notification.", notifications.NotificationDetail)},
        request=request,
        request_required=request is notifications.StatusChangeIn,
        params=(_NOTIFICATION_ID,),
        errors=("404", "409", "422"),
    )


def _telegram_link(operation_id: str, who: str, model: type[BaseModel]) -> Route:
    return Route(
        "get",
        f"/api/v1/{who}s/{{id}}/telegram-link",
        operation_id,
        f"A one-time deep link that subscribes the {who}'s Telegram chat: the first "
        "Telegram user who opens it is bound to it; it expires after 7 days. Every call "
        "makes a new token.",
        "clients",
        {
            "200": Body("The deep link.", model),
            "409": Body("No Telegram bot is configured (`telegram_not_configured`).", Error),
            "502": Body(
                "The Telegram Bot API did not answer getMe (`telegram_unavailable`).", Error
            ),
        },
        params=(_card_id(who),),
        errors=("404",),
    )


ROUTES: tuple[Route, ...] = (
    # ------------------------------------------------------------------ the ERP
    Route(
        "post",
        "/api/v1/events",
        "postEvent",
        "The ERP webhook: one event, at most 256 KiB, idempotent by event_id.",
        "erp",
        {
            "200": Body(
                "A repeated event_id: the first call's notifications, `duplicate: true`, "
                "nothing created.",
                erp.IngestResult,
            ),
            "202": Body("Stored with its notifications.", erp.IngestResult),
            "400": "InvalidJson",
            "401": "Unauthorized",
            "403": "CrossSite",
            "408": "RequestTimeout",
            "413": "TooLarge",
            "415": Body("Not `application/json` UTF-8 (`unsupported_media_type`).", Error),
            "421": "MisdirectedRequest",
            "422": "Unprocessable",
            "503": "Unavailable",
        },
        request=EventIn,
        params=(
            Param(
                signature.HEADER,
                "header",
                "Required unless no webhook secret is configured (then only direct loopback "
                "callers, not relayed by a proxy, may post). `t` is 1-12 digits, each `v1` "
                "exactly 64 hex digits. Older or newer than 300 s: 401.",
                {"type": "string", "pattern": "^t=[0-9]{1,12},v1=[0-9a-fA-F]{64}"},
                required=False,
            ),
        ),
        admin=False,
    ),
    # ------------------------------------------------------------------ journal
    Route(
        "get",
        "/api/v1/notifications",
        "listNotifications",
        "The notification journal, newest first, with cursor pagination.",
        "journal",
        {"200": Body("One page.", notifications.NotificationPage)},
        query=notifications.JournalQuery,
        errors=("422",),
    ),
    Route(
        "get",
        "/api/v1/notifications/{id}",
        "getNotification",
        "One notification with its status history and the presses of its ERP buttons.",
        "journal",
        {"200": Body("The notification.", notifications.NotificationRead)},
        params=(_NOTIFICATION_ID,),
        errors=("404",),
    ),
    _action(
        "setNotificationStatus",
        "status",
        "Mark as sent manually or cancelled (from the statuses that allow it).",
        notifications.StatusChangeIn,
    ),
    _action(
        "confirmNotification",
        "confirm",
        "Confirm a notification awaiting confirmation: pending (live) or test (test mode).",
        notifications.NoteIn,
    ),
    _action(
        "cancelNotification",
        "cancel",
        "Cancel a notification awaiting confirmation.",
        notifications.NoteIn,
    ),
    _action(
        "resendNotification",
        "resend",
        "Queue a finished notification again (live mode only; 409 in test and off).",
        notifications.NoteIn,
    ),
    _action(
        "sendNotificationNow",
        "send-now",
        "Send a notification held by quiet hours (scheduled) at once (live mode only).",
        notifications.NoteIn,
    ),
    # ------------------------------------------------------------------ settings
    Route(
        "get",
        "/api/v1/settings",
        "getSettings",
        "The effective notify settings and the SMS services.",
        "settings",
        {"200": Body("The settings.", settings.Settings)},
    ),
    Route(
        "put",
        "/api/v1/settings",
        "updateSettings",
        "Change some notify settings. 422 `settings_rejected` when the result would be "
        "misconfigured.",
        "settings",
        {"200": Body("The settings after the change.", settings.Settings)},
        request="SettingsPatch",
        errors=("422",),
    ),
    Route(
        "get",
        "/api/v1/event-types",
        "listEventTypes",
        "All event types of the catalogue with their effective settings.",
        "settings",
        {"200": Body("The event types.", event_types.EventTypeList)},
    ),
    Route(
        "get",
        "/api/v1/event-types/{code}",
        "getEventType",
        "One event type with its effective settings.",
        "settings",
        {"200": Body("The event type.", event_types.EventType)},
        params=(_CODE,),
        errors=("404",),
    ),
    Route(
        "put",
        "/api/v1/event-types/{code}",
        "updateEventType",
        "Change some settings of an event type; templates must be existing files.",
        "settings",
        {"200": Body("The event type after the change.", event_types.EventType)},
        request=EventTypeOverride,
        params=(_CODE,),
        errors=("404", "422"),
    ),
    Route(
        "get",
        _TEMPLATE,
        "getTemplate",
        "The text the next event of the type uses for this recipient, the layer it comes "
        "from (`package`, `dir` = `[templates] dir`, `stored` = a saved version), the "
        "variables it may use with the sample event's values, and the saved versions.",
        "settings",
        {"200": Body("The template.", event_types.Template)},
        params=(_CODE, _RECIPIENT),
        errors=("404",),
    ),
    Route(
        "put",
        _TEMPLATE,
        "putTemplate",
        "Save a new version, used by every later event on every replica. It is rendered "
        "first on the type's sample event: a syntax error, an unknown variable, a sandbox "
        "violation, an empty text or (Telegram) markup Telegram refuses is a 422 naming "
        "the line, and nothing is stored.",
        "settings",
        {"200": Body("The template with the new version in use.", event_types.Template)},
        request=event_types.TemplateIn,
        params=(_CODE, _RECIPIENT),
        errors=("404", "422"),
    ),
    Route(
        "post",
        _TEMPLATE + "/revert",
        "revertTemplate",
        "Make a saved version current again (`0`: back to the template files).",
        "settings",
        {"200": Body("The template with that version in use.", event_types.Template)},
        request=event_types.RevertIn,
        params=(_CODE, _RECIPIENT),
        errors=("404", "422"),
    ),
    # ------------------------------------------------------------------ previews
    Route(
        "post",
        "/api/v1/event-types/{code}/preview",
        "previewEventType",
        "Render the client and manager texts of an event; nothing is stored. A template "
        "error is reported in that text's `error`.",
        "previews",
        {"200": Body("The rendered texts.", previews.EventPreview)},
        request="EventPreviewRequest",
        params=(_CODE,),
        errors=("404", "422"),
    ),
    Route(
        "post",
        "/api/v1/sms/preview",
        "previewSms",
        "Encoding, size and parts of a text sent as SMS.",
        "previews",
        {"200": Body("The SMS figures.", previews.SmsPreview)},
        request=previews.SmsPreviewIn,
        errors=("422",),
    ),
    # ------------------------------------------------------------------ clients
    Route(
        "get",
        "/api/v1/clients/{id}",
        "getClient",
        "A client card with its per-type overrides.",
        "clients",
        {"200": Body("The client.", clients.ClientCard)},
        params=(_card_id("client"),),
        errors=("404",),
    ),
    Route(
        "put",
        "/api/v1/clients/{id}",
        "putClient",
        "Create or update a client card and its per-type overrides; own templates are "
        "compiled and rendered in the sandbox on the type's sample event first (422 naming "
        "the type, recipient and line when one fails or exceeds the render budget; a value "
        "the sample lacks is not a failure).",
        "clients",
        {
            "200": Body("The client after the change.", clients.ClientCard),
            "201": Body("The client, created.", clients.ClientCard),
        },
        request=clients.ClientPutIn,
        params=(_card_id("client"),),
        errors=("422",),
    ),
    _telegram_link("getClientTelegramLink", "client", telegram_link.ClientTelegramLink),
    # ------------------------------------------------------------------ managers
    Route(
        "get",
        "/api/v1/managers/{id}",
        "getManager",
        "A manager card with its linked Telegram chats.",
        "managers",
        {"200": Body("The manager.", managers.ManagerCard)},
        params=(_card_id("manager"),),
        errors=("404",),
    ),
    Route(
        "put",
        "/api/v1/managers/{id}",
        "putManager",
        "Create or update a manager card; the fields given are set, the others kept. "
        "`is_admin` is set only here: the ERP's events never change it.",
        "managers",
        {
            "200": Body("The manager after the change.", managers.ManagerCard),
            "201": Body("The manager, created.", managers.ManagerCard),
        },
        request=managers.ManagerPutIn,
        params=(_card_id("manager"),),
        errors=("422",),
    ),
    _telegram_link("getManagerTelegramLink", "manager", telegram_link.ManagerTelegramLink),
    Route(
        "get",
        "/api/v1/unmatched-contacts",
        "listUnmatchedContacts",
        "Phones shared with the bot that matched no client or manager, newest first, with "
        "cursor pagination.",
        "managers",
        {"200": Body("One page.", managers.UnmatchedContactPage)},
        query=managers.UnmatchedQuery,
        errors=("422",),
    ),
    # ------------------------------------------------------------------ SMS
    Route(
        "get",
        "/api/v1/balance",
        "getBalance",
        "The SMS balance of the provider, with the low-balance threshold state.",
        "sms",
        {
            "200": Body("The balance.", sms_admin.Balance),
            "502": Body("The SMS provider refused or failed (`provider_error`).", Error),
        },
        query=sms_admin.BalanceQuery,
        errors=("404", "409"),
    ),
    Route(
        "post",
        "/api/v1/test-sms",
        "postTestSms",
        "Send the test SMS now (it costs one SMS); journaled as `test_sms`. Only to numbers "
        "of `test_sms.countries` (else 422 with the allowed ones in `details`), at most "
        "`test_sms.daily_limit` a day with the bot's `/testsms` (else 429); "
        "`daily_limit = 0` turns it off (409 `test_sms_disabled`).",
        "sms",
        {
            "200": Body("Sent.", sms_admin.TestSmsResult),
            "429": Body(
                "Today's test SMS are used up (`too_many_requests`); `details[0].resets_at` "
                "is the next 00:00 UTC.",
                Error,
                headers={
                    "Retry-After": {
                        "description": "Seconds until the count restarts.",
                        "schema": {"type": "integer"},
                    }
                },
            ),
            "502": Body("The provider did not take it.", sms_admin.TestSmsResult),
        },
        request=sms_admin.TestSmsIn,
        errors=("404", "409", "422"),
    ),
    Route(
        "post",
        "/api/v1/providers/{name}/status",
        "providerStatus",
        "Delivery receipts from an SMS provider, in that provider's own callback format and "
        "authentication (Twilio's signature, SMS.ru's hash, `?secret=` for SMSC and SMS "
        "Aero, the bearer token of the `http` kind); a service with nothing to authenticate "
        "them with answers 401 to all. Unknown message ids are answered 2xx. At most 500 "
        "receipts per callback (else 413); a message id with control characters or over "
        "128 characters is a 422; nothing of a refused callback is applied.",
        "sms",
        {
            "200": Body(
                "Accepted; the body is what the provider expects (`100` for SMS.ru, `OK` "
                "otherwise).",
                media=_TEXT,
            ),
            "400": "InvalidJson",
            "401": "Unauthorized",
            "404": "NotFound",
            "408": "RequestTimeout",
            "413": "TooLarge",
            "422": "Unprocessable",
            "503": "Unavailable",
        },
        request_required=False,
        request_media={
            "application/x-www-form-urlencoded": {"type": "object"},
            JSON: {"type": "object"},
        },
        params=(Param("name", "path", "A name from [[sms_services]]."),),
        admin=False,
    ),
    # ------------------------------------------------------------------ SMS services
    Route(
        "get",
        "/api/v1/sms-services",
        "listSmsServices",
        "The directory of SMS services: the config file's `[[sms_services]]` overlaid with "
        "what this API stored. Secrets are shown as `***`.",
        "sms",
        {"200": Body("The directory.", sms_services.SmsServiceDirectory)},
    ),
    Route(
        "get",
        "/api/v1/sms-services/{name}",
        "getSmsService",
        "One SMS service; secrets are shown as `***`.",
        "sms",
        {"200": Body("The service.", sms_services.SmsServiceEntry)},
        params=(_SERVICE_NAME,),
        errors=("404",),
    ),
    Route(
        "put",
        "/api/v1/sms-services/{name}",
        "putSmsService",
        "Create or replace an SMS service, used by every replica within seconds. A secret "
        "left out or sent as `***` keeps the one in effect. 422 naming the field when the "
        "entry is invalid or lacks what its kind needs.",
        "sms",
        {
            "200": Body("The service after the change.", sms_services.SmsServiceEntry),
            "201": Body("The service, created.", sms_services.SmsServiceEntry),
        },
        request=sms_services.SmsServicePut,
        params=(_SERVICE_NAME,),
        errors=("422",),
    ),
    Route(
        "delete",
        "/api/v1/sms-services/{name}",
        "deleteSmsService",
        "Remove an SMS service. 409 `sms_service_in_use` while `notify.sms_service` names "
        "it, or while it is the last one and the route needs SMS; the message says what to "
        "change first.",
        "sms",
        {"200": Body("The directory after the removal.", sms_services.SmsServiceDirectory)},
        params=(_SERVICE_NAME,),
        errors=("404", "409"),
    ),
    Route(
        "post",
        "/api/v1/sms-services/{name}/check",
        "checkSmsService",
        "Read the service's balance now and say what works (credentials, URL, delivery "
        "callbacks), as `vestnik check-config` does; a refusal is answered 200 with "
        "`ok: false`.",
        "sms",
        {"200": Body("What works.", sms_services.SmsServiceCheck)},
        params=(_SERVICE_NAME,),
        errors=("404",),
    ),
    # ------------------------------------------------------------------ operations
    Route(
        "post",
        "/api/v1/jobs/{name}/run",
        "runJob",
        "Run a scheduled job now, outside its schedule, in the server that answers "
        "(`vestnik run-job NAME`). A job that failed is answered 200 with its `error`.",
        "operations",
        {"200": Body("What the job reported.", jobs.JobRun)},
        params=(
            Param(
                "name",
                "path",
                f"One of: {', '.join(JobName)}. 409 when the scheduler does not run in this "
                "process.",
            ),
        ),
        errors=("404", "409"),
    ),
    Route(
        "get",
        "/healthz",
        "healthz",
        "The process is up.",
        "operations",
        {"200": Body("Up.", health.Health)},
        admin=False,
    ),
    Route(
        "get",
        "/readyz",
        "readyz",
        "The database is reachable.",
        "operations",
        {"200": Body("Ready.", health.Ready), "503": "Unavailable"},
        admin=False,
    ),
    Route(
        "get",
        "/metrics",
        "metrics",
        "Prometheus metrics: events, notifications by status and channel, delivery "
        "latency, queue depth and age, provider errors, SMS balance, Telegram 429s. Public "
        "unless `metrics.token` is set; then it needs `Authorization: Bearer "
        "<metrics.token>`.",
        "operations",
        {
            "200": Body("Prometheus text format 0.0.4.", media=_TEXT),
            "401": "Unauthorized",
        },
        admin=False,
    ),
    Route(
        "get",
        "/api/v1/openapi.json",
        "openapi",
        "This document.",
        "operations",
        {"200": Body("OpenAPI 3.1.", media={JSON: {"type": "object"}})},
        admin=False,
    ),
)
