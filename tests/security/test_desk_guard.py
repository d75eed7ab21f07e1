"""The request guard in front of the web desk: its forms get through from its own pages,
never from another site's, and a link to a desk page works from anywhere.

A real Vestnik on loopback, called with the headers a browser sends in each case.
"""

from __future__ import annotations

from tests.conftest import ADMIN_TOKEN, Service
from tests.integration.desk_support import HTML

# What Chromium sends for a click on a link (or a form) on another site.
NAVIGATION_FROM_ELSEWHERE = {
    "Sec-Fetch-Site": "cross-site",
    "Sec-Fetch-Mode": "navigate",
    "Sec-Fetch-Dest": "document",
    **HTML,
}


async def test_a_link_from_another_site_opens_a_desk_page(service: Service) -> None:
    """The bot's `/desk` link clicked in Telegram Web is a cross-site navigation."""
    page = await service.client.get("/desk/signin", headers=NAVIGATION_FROM_ELSEWHERE)
    assert page.status == 200
    assert "Вход в рабочее место" in await page.text()
    link = await service.client.get("/desk/link/" + "a" * 43, headers=NAVIGATION_FROM_ELSEWHERE)
    assert link.status == 410  # reached the desk: an unknown link, not the guard's 403


async def test_another_site_cannot_post_a_desk_form_or_script_a_page(service: Service) -> None:
    form = {"token": ADMIN_TOKEN}
    for headers in (
        NAVIGATION_FROM_ELSEWHERE,  # a form on another site posting here
        {
            "Sec-Fetch-Site": "same-site",
            "Sec-Fetch-Mode": "navigate",
            "Sec-Fetch-Dest": "document",
        },
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
    ):
        response = await service.client.post(
            "/desk/signin", data=form, headers=headers, allow_redirects=False
        )
        assert response.status == 403, headers
        assert "Set-Cookie" not in response.headers
    # A script on another site reading a desk page (not a navigation) is refused too.
    fetched = await service.client.get(
        "/desk/signin",
        headers={
            "Sec-Fetch-Site": "cross-site",
            "Sec-Fetch-Mode": "cors",
            "Sec-Fetch-Dest": "empty",
        },
    )
    assert fetched.status == 403
    # The exception is the desk's pages only: the admin API stays closed to navigations.
    api = await service.client.get("/api/v1/notifications", headers=NAVIGATION_FROM_ELSEWHERE)
    assert api.status == 403


async def test_the_desk_own_form_posts_get_through(service: Service) -> None:
    own = f"http://{service.client.host}:{service.client.port}"
    response = await service.client.post(
        "/desk/signin",
        data={"token": ADMIN_TOKEN},
        headers={
            "Origin": own,
            "Sec-Fetch-Site": "same-origin",
            "Sec-Fetch-Mode": "navigate",
            "Sec-Fetch-Dest": "document",
        },
        allow_redirects=False,
    )
    # A form body is no JSON, yet the admin API's media-type rule does not apply here.
    assert response.status == 303
    assert response.headers["Location"] == "/desk/journal"
