"""Fake SMS.ru: sms/send, sms/cost, my/balance, sms/status with `json=1` replies.

Whole-request errors are HTTP 200 `{"status": "ERROR", "status_code": N, "status_text"}`;
per-number errors sit in the `sms` object of an otherwise OK reply. Without `json=1` the
replies are SMS.ru's plain-text lines. Delivery callbacks are form `data[]` entries with
`hash` = sha256(api_id + entries).
"""

from __future__ import annotations

import hashlib
import time
from decimal import Decimal
from itertools import count
from urllib.parse import urlencode

from aiohttp import web

from tests.fakes.sms import FakeCallback, FakeSmsServer, json_response

_TEXTS = {
    -1: "Сообщение не найдено",
    100: "Сообщение в очереди",
    102: "Сообщение отправлено",
    103: "Сообщение доставлено",
    107: "Сообщение не доставлено по неизвестной причине",
    200: "Неправильный api_id",
    201: "Не хватает средств на лицевом счету",
    202: "Неправильно указан номер телефона получателя",
    203: "Нет текста сообщения",
    207: "На этот номер нельзя отправлять сообщения",
    231: "Превышен лимит одинаковых сообщений на этот номер в минуту",
}
_STATE_CODES = {"pending": 102, "delivered": 103, "failed": 107}
# Injected failures that SMS.ru reports per number in a send reply; the rest are top-level.
_PER_NUMBER = {"invalid_number": 202, "reject": 207, "rate_limit": 231}
_TOP_LEVEL = {
    "no_money": 201,
    "auth": 200,
    "rate_limit": 231,
    "invalid_number": 202,
    "reject": 207,
}


def _error(code: int) -> dict[str, object]:
    return {"status": "ERROR", "status_code": code, "status_text": _TEXTS.get(code, "Ошибка")}


class FakeSmsRu(FakeSmsServer):
    """SMS.ru with `api_id` auth."""

    def __init__(
        self,
        *,
        api_id: str = "test-api-id",
        balance: Decimal = Decimal("1000.00"),
        latency: float = 0.0,
        rate_limit: float | None = None,
    ) -> None:
        super().__init__(balance=balance, latency=latency, rate_limit=rate_limit)
        self.api_id = api_id
        self._ids = count(1)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/sms/send", self._send)
        app.router.add_route("*", "/sms/cost", self._cost)
        app.router.add_route("*", "/my/balance", self._balance)
        app.router.add_route("*", "/sms/status", self._status)

    @staticmethod
    async def _params(request: web.Request) -> dict[str, str]:
        params = dict(request.query)
        if request.method == "POST":
            params.update({k: str(v) for k, v in (await request.post()).items()})
        return params

    async def failure_response(self, kind: str, request: web.Request) -> web.Response:
        params = await self._params(request)
        if request.path == "/sms/send" and kind in _PER_NUMBER:
            numbers = [n for n in params.get("to", "").split(",") if n]
            per_number = {n: _error(_PER_NUMBER[kind]) for n in numbers}
            return json_response(
                {
                    "status": "OK",
                    "status_code": 100,
                    "sms": per_number,
                    "balance": float(self.balance),
                }
            )
        return json_response(_error(_TOP_LEVEL[kind]))

    async def _checked(self, request: web.Request) -> tuple[dict[str, str], web.Response | None]:
        params = await self._params(request)
        if params.get("api_id") != self.api_id:
            return params, json_response(_error(200))
        return params, None

    async def _message(
        self, request: web.Request
    ) -> tuple[dict[str, str], list[str], str] | web.Response:
        """The parameters, numbers and text of a send or cost request, or its refusal."""
        params, refusal = await self._checked(request)
        if refusal is not None:
            return refusal
        numbers = [n for n in params.get("to", "").split(",") if n]
        text = params.get("msg", "")
        if not numbers:
            return json_response(_error(202))
        if not text:
            return json_response(_error(203))
        return params, numbers, text

    async def _send(self, request: web.Request) -> web.Response:
        message = await self._message(request)
        if isinstance(message, web.Response):
            return message
        params, numbers, text = message
        if self.price(text)[1] * len(numbers) > self.balance:
            return json_response(_error(201))
        per_number: dict[str, dict[str, object]] = {}
        for number in numbers:
            if not self.valid_number(number):
                per_number[number] = _error(202)
                continue
            sms_id = f"{next(self._ids):06d}-{int(time.time()) % 10_000_000:07d}"
            self.record(sms_id, phone=number, text=text, sender=params.get("from"))
            per_number[number] = {"status": "OK", "status_code": 100, "sms_id": sms_id}
        if params.get("json") != "1":
            first = next(iter(per_number.values()))
            return web.Response(text=f"100\n{first.get('sms_id', '')}\nbalance={self.balance}")
        return json_response(
            {"status": "OK", "status_code": 100, "sms": per_number, "balance": float(self.balance)}
        )

    async def _cost(self, request: web.Request) -> web.Response:
        """What `sms/send` with the same parameters would cost, per number (`cost`, `sms`
        parts) and in all (`total_cost`, `total_sms`); nothing is sent or charged."""
        message = await self._message(request)
        if isinstance(message, web.Response):
            return message
        _, numbers, text = message
        parts, cost = self.price(text)
        per_number: dict[str, dict[str, object]] = {}
        for number in numbers:
            if not self.valid_number(number):
                per_number[number] = _error(202)
                continue
            per_number[number] = {
                "status": "OK",
                "status_code": 100,
                "cost": float(cost),
                "sms": parts,
            }
        priced = sum(1 for entry in per_number.values() if entry["status"] == "OK")
        return json_response(
            {
                "status": "OK",
                "status_code": 100,
                "sms": per_number,
                "total_cost": float(cost * priced),
                "total_sms": parts * priced,
            }
        )

    async def _balance(self, request: web.Request) -> web.Response:
        params, refusal = await self._checked(request)
        if refusal is not None:
            return refusal
        if params.get("json") != "1":
            return web.Response(text=f"100\n{self.balance}")
        value = self.balance_value(documented_as_string=False)
        return json_response({"status": "OK", "status_code": 100, "balance": value})

    async def _status(self, request: web.Request) -> web.Response:
        params, refusal = await self._checked(request)
        if refusal is not None:
            return refusal
        entries: dict[str, object] = {}
        for sms_id in filter(None, params.get("sms_id", "").split(",")):
            found = [m for m in self.sent if m.provider_id == sms_id]
            if not found:
                entries[sms_id] = _error(-1)
                continue
            code = _STATE_CODES[found[0].state]
            entries[sms_id] = {
                "status": "OK",
                "status_code": code,
                "cost": float(found[0].cost),
                "status_text": _TEXTS[code],
            }
        return json_response({"status": "OK", "status_code": 100, "sms": entries})

    def callback_entries(self, *provider_ids: str) -> list[str]:
        return [
            f"sms_status\n{pid}\n{_STATE_CODES[self.message(pid).state]}\n{int(time.time())}"
            for pid in provider_ids
        ]

    def callback(
        self, provider_id: str, url: str, *, api_id: str | None = None, signed: bool = True
    ) -> FakeCallback:
        """`data[]` for this message; `api_id` overrides the key of the hash (to forge)."""
        entries = self.callback_entries(provider_id)
        fields = [("data[]", entry) for entry in entries]
        if signed:
            key = self.api_id if api_id is None else api_id
            digest = hashlib.sha256((key + "".join(entries)).encode()).hexdigest()
            fields.append(("hash", digest))
        return FakeCallback(
            url, urlencode(fields).encode(), {"Content-Type": "application/x-www-form-urlencoded"}
        )
