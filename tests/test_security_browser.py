"""Our pages run under the real Content-Security-Policy in Chromium: nothing of ours is refused by it."""
import pytest

from tests import factories
from tests.conftest import PASSWORD
from tests.support import ServerProcess

pytestmark = pytest.mark.browser

STAFF_PAGES = ["/console", "/agent/chats", "/supervisor/", "/supervisor/reports", "/email/", "/admin/users", "/cases"]
RESIDENT_PAGES = ["/forms/", "/chat", "/chat?embed=1", "/track", "/account", "/no-such-page"]


def test_staff_and_resident_pages_load_their_scripts_without_a_policy_violation(app, database_url, chromium):
    if not database_url.startswith("sqlite"):
        pytest.skip("the policy is the same on both backends")
    admin = factories.user("admin")
    server = ServerProcess(database_url)
    context = chromium.new_context(viewport={"width": 1366, "height": 768})  # no bypass_csp: the real policy
    try:
        page = context.new_page()
        refused = []
        page.on("console", lambda m: refused.append(f"{page.url}: {m.text}")
                if "Content Security Policy" in m.text else None)
        page.on("pageerror", lambda e: refused.append(f"{page.url}: {e}"))
        for path in RESIDENT_PAGES:
            page.goto(server.url + path)
            page.wait_for_load_state("networkidle")
        page.goto(server.url + "/login")
        page.get_by_label("Email address").fill(admin.email)
        page.get_by_label("Password").fill(PASSWORD)
        page.keyboard.press("Enter")
        page.wait_for_url(server.url + "/console")
        for path in STAFF_PAGES:
            page.goto(server.url + path)
            page.wait_for_load_state("networkidle")
        page.goto(server.url + "/supervisor/reports")
        assert page.evaluate("typeof Chart") == "function"  # our static script ran under the policy
        assert refused == []
    finally:
        context.close()
        server.stop()
