"""Every page carries a Content-Security-Policy with no inline script, and nothing in templates or static
JS needs one; widget.js and sign-in links are built from the configured address, never the Host header."""
import pathlib
import re

import pytest

from tests import factories

ROOT = pathlib.Path(__file__).resolve().parent.parent
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.I)
INLINE_HANDLER = re.compile(r"""<[^>]*\son[a-z]+\s*=\s*["']""", re.I)
JS_URL = re.compile(r"""(href|src|action)\s*=\s*["']\s*javascript:""", re.I)
EVAL = re.compile(r"\beval\s*\(|\bnew\s+Function\s*\(|set(Timeout|Interval)\s*\(\s*[\"']")


def _templates():
    return [p for p in (ROOT / "templates").rglob("*") if p.is_file() and p.suffix == ".html"]


def _our_scripts():
    return [p for p in (ROOT / "static").rglob("*.js") if "vendor" not in p.parts] + [ROOT / "templates/webchat/widget.js"]


def test_no_template_has_inline_script_handlers_or_javascript_urls():
    found = []
    for path in _templates():
        text = path.read_text()
        for pattern in (INLINE_SCRIPT, INLINE_HANDLER, JS_URL):
            found += [f"{path.relative_to(ROOT)}: {m.group(0)[:80]}" for m in pattern.finditer(text)]
    assert found == []


def test_no_script_of_ours_evaluates_strings():
    found = [f"{p.relative_to(ROOT)}: {m.group(0)}" for p in _our_scripts() for m in EVAL.finditer(p.read_text())]
    assert found == []


def _get_pages(app):
    """Every GET route without arguments (all the pages one can open by address)."""
    return sorted({rule.rule for rule in app.url_map.iter_rules()
                   if "GET" in rule.methods and not rule.arguments and not rule.rule.startswith("/static")})


def _check_policy(response, path):
    policy = response.headers.get("Content-Security-Policy", "")
    assert "script-src 'self'" in policy, path
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy, path
    assert "object-src 'none'" in policy and "frame-ancestors" in policy, path


@pytest.mark.parametrize("who", ["anonymous", "admin"])
def test_every_html_page_sends_the_policy(app, client, auth, make_user, who):
    if who == "admin":
        auth.login(make_user("admin"))
    checked = 0
    for path in _get_pages(app):
        response = client.get(path)
        if response.mimetype == "text/html":
            _check_policy(response, path)
            checked += 1
    assert checked > 10


def test_error_pages_and_the_embeddable_chat_keep_the_policy(app, client):
    missing = client.get("/no-such-page")
    _check_policy(missing, "404")
    chat = client.get("/chat?embed=1")
    _check_policy(chat, "/chat")
    assert "frame-ancestors 'self'" in chat.headers["Content-Security-Policy"]
    assert chat.headers.get("X-Frame-Options") is None


def test_widget_js_is_built_from_the_configured_address_not_the_host_header(app, client):
    app.config["CRM_BASE_URL"] = "https://contact.council.example"
    script = client.get("/chat/widget.js", headers={"Host": "evil.example"})
    body = script.get_data(as_text=True)
    assert '"https://contact.council.example/chat?embed=1"' in body
    assert "evil.example" not in body
    assert "Origin" in script.headers["Vary"]
