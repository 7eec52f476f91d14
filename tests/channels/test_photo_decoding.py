"""A huge photo is decoded off the event loop: the server keeps answering others while it works on it."""
import io
import re
import threading

import pytest
import requests
from PIL import Image

from crm.extensions import db
from crm.models import FormDefinition
from tests import factories
from tests.support import ServerProcess

FIELDS = [{"name": "location", "label": "Where?", "type": "text", "required": True},
          {"name": "photo", "label": "Add a photo", "type": "file"}]


def big_png(side=7000) -> bytes:
    """A 49-megapixel PNG that compresses to a few hundred kilobytes: cheap to send, costly to decode."""
    out = io.BytesIO()
    Image.new("RGB", (side, side), (40, 90, 40)).save(out, "PNG", optimize=True)
    return out.getvalue()


def test_a_49_megapixel_png_does_not_stop_the_server_answering_others(app, database_url):
    if not database_url.startswith("sqlite"):
        pytest.skip("the event loop is the same on both backends")
    service = factories.service(categories=(("pothole", "Pothole"),))
    db.session.add(FormDefinition(slug="pothole", title="Report a pothole", service_id=service.id,
                                  category_code="pothole", fields=FIELDS))
    db.session.commit()
    photo = big_png()
    assert len(photo) < 400_000
    server = ServerProcess(database_url)
    try:
        browser = requests.Session()
        page = browser.get(server.url + "/forms/pothole", timeout=10).text
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
        upload = {}

        def send():
            upload["answer"] = browser.post(
                server.url + "/forms/pothole", allow_redirects=False, timeout=120,
                data={"csrf_token": token, "location": "Outside 12 Main Street", "name": "Jo Resident",
                      "email": "jo@example.org"},
                files={"photo": ("big.png", photo, "image/png")})

        sender = threading.Thread(target=send)
        sender.start()
        answered_meanwhile = 0
        while sender.is_alive():
            if requests.get(server.url + "/login", timeout=30).status_code == 200 and sender.is_alive():
                answered_meanwhile += 1
        sender.join()
        assert upload["answer"].status_code < 500 and "Traceback" not in upload["answer"].text
        # Decoding on the hub would hold every other request until it finished (one or two get through).
        assert answered_meanwhile >= 5
    finally:
        server.stop()
