"""The web desk (CONTRACT §10): server-rendered pages in Russian under `/desk/`, for the
admins (signed in with the admin token) and the managers (signed in with a one-time link
from the bot's `/desk`, seeing and acting on their own clients' notifications only).

`setup.setup_desk(app, config)` adds the routes, the live feed and the static files; the
views are `signin` (sign-in, sign-out), `journal` (the journal and a notification's card
with the §6 actions) and `live` (server-sent events of new rows and status changes).
"""
