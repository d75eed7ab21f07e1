"""`vestnik serve --sandbox`: live mode against loopback fakes, so nothing leaves the machine.

- `inbox`: what each fake phone and Telegram chat received (in memory, the last 500 lines).
- `sms_gateway`: a fake SMS gateway of the generic `http` kind, with segments and a price.
- `telegram_api`: a fake Telegram Bot API that the real aiogram bot polls.
- `pages`: `GET /sandbox/`, `GET /api/v1/sandbox/messages`, and the forms with which a fake
  client subscribes to the bot or presses a button.
- `wiring`: binds the fakes, turns the settings into the sandbox's, adds it all to the app.
"""
