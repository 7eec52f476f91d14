"""Response headers every page gets (Content-Security-Policy), and links built from configuration."""
from flask import current_app, url_for

# No inline script anywhere: page data travels in <script type="application/json"> blocks, read by our files.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "font-src 'self' data:; connect-src 'self'; media-src 'self' data: blob:; object-src 'none'; "
       "base-uri 'self'; form-action 'self'")


def public_url(endpoint: str, **values) -> str:
    """Return an absolute link on the CRM's configured address (CRM_BASE_URL), never the request's Host header."""
    return current_app.config["CRM_BASE_URL"].rstrip("/") + url_for(endpoint, **values)


def add_content_security_policy(response):
    """Give every HTML page the policy; a view's own frame-ancestors (embeddable chat) or full policy stays."""
    if response.mimetype != "text/html":
        return response
    own = response.headers.get("Content-Security-Policy")
    if own is None:
        response.headers["Content-Security-Policy"] = f"{CSP}; frame-ancestors 'self'"
    elif own.startswith("frame-ancestors"):
        response.headers["Content-Security-Policy"] = f"{CSP}; {own}"
    return response


def init_app(app):
    """Install the headers on every response."""
    app.after_request(add_content_security_policy)
