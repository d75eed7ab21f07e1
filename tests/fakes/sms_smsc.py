"""Fake SMSC.ru: send.php, balance.php, status.php with `fmt=3` JSON replies. send.php
with `cost=1` only calculates: `{"cost", "cnt"}`, nothing sent or charged (the price call).

Parameters come from the query and/or a form body and are decoded with the request's
`charset` (SMSC's default is windows-1251, so a client that forgets `charset=utf-8` sees its
Cyrillic garbled here too). Logical errors are HTTP 200 `{"error", "error_code"}`.
"""

from __future__ import annotations

import time
from decimal import Decimal
from itertools import count
from urllib.parse import parse_qsl, urlencode

from aiohttp import web

from tests.fakes.sms import FakeCallback, FakeSmsServer, json_response

_FAILURE_CODES = {"no_money": 3, "invalid_number": 7, "auth": 2, "rate_limit": 9, "reject": 6}
_ERROR_TEXTS = {
    1: "ошибка в параметрах",
    2: "неверный логин или пароль",
    3: "недостаточно средств на счете",
    6: "сообщение запрещено (по тексту или по имени отправителя)",
    7: "неверный формат номера телефона",
    9: "отправка более одного одинакового запроса в течение минуты",
}
_STATE_CODES = {"pending": 0, "delivered": 1, "failed": 20}


async def smsc_params(request: web.Request) -> dict[str, str]:
    """Query + form parameters, percent-decoded in the request's `charset`."""
    raw = request.raw_path.partition("?")[2]
    body = (await request.read()).decode("ascii", "replace")
    chunks = [chunk for chunk in (raw, body) if chunk]
    latin = dict(pair for chunk in chunks for pair in parse_qsl(chunk, encoding="latin-1"))
    charset = {"utf-8": "utf-8", "koi8-r": "koi8-r"}.get(latin.get("charset", ""), "cp1251")
    return dict(
        pair for chunk in chunks for pair in parse_qsl(chunk, encoding=charset, errors="replace")
    )


class FakeSmsc(FakeSmsServer):
    """SMSC.ru with login/psw or apikey auth."""

    base_path = "/sys/"

    def __init__(
        self,
        *,
        login: str = "shop",
        password: str = "secret",
        api_key: str | None = None,
        balance: Decimal = Decimal("1000.00"),
        latency: float = 0.0,
        rate_limit: float | None = None,
    ) -> None:
        super().__init__(balance=balance, latency=latency, rate_limit=rate_limit)
        self.login, self.password, self.api_key = login, password, api_key
        self._ids = count(900_001)

    def add_routes(self, app: web.Application) -> None:
        for name, handler in (
            ("send", self._send),
            ("balance", self._balance),
            ("status", self._status),
        ):
            app.router.add_route("*", f"{self.base_path}{name}.php", handler)

    @staticmethod
    def _error(code: int, message_id: str | None = None) -> web.Response:
        body: dict[str, object] = {"error": _ERROR_TEXTS.get(code, "ошибка"), "error_code": code}
        if message_id is not None and code in (3, 6, 7, 8):
            body["id"] = int(message_id)
        return json_response(body)

    async def failure_response(self, kind: str, request: web.Request) -> web.Response:
        return self._error(_FAILURE_CODES[kind], (await smsc_params(request)).get("id"))

    def _authorised(self, params: dict[str, str]) -> bool:
        if "apikey" in params:
            return self.api_key is not None and params["apikey"] == self.api_key
        return params.get("login") == self.login and params.get("psw") == self.password

    async def _checked(self, request: web.Request) -> tuple[dict[str, str], web.Response | None]:
        params = await smsc_params(request)
        if params.get("fmt") != "3":
            return params, web.Response(text="ERROR = 1 (bad parameters)")
        if not self._authorised(params):
            return params, self._error(2)
        return params, None

    async def _send(self, request: web.Request) -> web.Response:
        params, refusal = await self._checked(request)
        if refusal is not None:
            return refusal
        client_id = params.get("id")
        phones = [p for p in params.get("phones", "").replace(";", ",").split(",") if p]
        text = params.get("mes", "")
        if not phones or not text:
            return self._error(1)
        message_id = client_id or str(next(self._ids))
        if not all(self.valid_number(phone) for phone in phones):
            return self._error(7, message_id)
        parts, cost = self.price(text)
        total = cost * len(phones)
        if params.get("cost") == "1":  # only calculate
            return json_response({"cost": str(total), "cnt": parts * len(phones)})
        if total > self.balance:
            return self._error(3, message_id)
        for phone in phones:
            self.record(
                message_id,
                phone=phone,
                text=text,
                sender=params.get("sender"),
                client_id=client_id,
            )
        reply: dict[str, object] = {"id": int(message_id), "cnt": parts * len(phones)}
        if params.get("cost") in ("2", "3"):
            reply["cost"] = str(total)
        if params.get("cost") == "3":
            reply["balance"] = str(self.balance)
        return json_response(reply)

    async def _balance(self, request: web.Request) -> web.Response:
        params, refusal = await self._checked(request)
        if refusal is not None:
            return refusal
        reply = {"balance": self.balance_value(documented_as_string=True)}
        if params.get("cur") == "1":
            reply["currency"] = self.currency
        return json_response(reply)

    async def _status(self, request: web.Request) -> web.Response:
        params, refusal = await self._checked(request)
        if refusal is not None:
            return refusal
        ids, phones = params.get("id", ""), params.get("phone", "")
        pairs = [(i, p) for i, p in zip(ids.split(","), phones.split(","), strict=False) if i]
        if "," in ids:  # the multi format: one object per (id, phone), in request order
            return json_response(
                [{"id": int(i), "phone": p, **self._status_of(i, p)} for i, p in pairs]
            )
        return json_response(self._status_of(*pairs[0]) if pairs else {"status": -3, "err": 0})

    def _status_of(self, message_id: str, phone: str) -> dict[str, object]:
        match = [
            m
            for m in self.sent
            if m.provider_id == message_id and m.phone.lstrip("+") == phone.lstrip("+")
        ]
        if not match:
            return {"status": -3, "err": 0}
        state = match[0].state
        now = int(time.time())
        return {
            "status": _STATE_CODES[state],
            "last_date": time.strftime("%d.%m.%Y %H:%M:%S", time.localtime(now)),
            "last_timestamp": now,
            "flag": 0,
            "err": 1 if state == "failed" else 0,
        }

    def callback(self, provider_id: str, url: str) -> FakeCallback:
        message = self.message(provider_id)
        fields = {
            "id": provider_id,
            "phone": message.phone.lstrip("+"),
            "status": str(_STATE_CODES[message.state]),
            "err": "1" if message.state == "failed" else "0",
            "time": str(int(time.time())),
        }
        return FakeCallback(
            url,
            urlencode(fields).encode(),
            {"Content-Type": "application/x-www-form-urlencoded"},
        )
