"""The channel registry: one entry per contact channel, and which of them can reach a resident now.

Every channel is an adapter (a `Channel`): its name is a contact channel name (crm.models.CHANNELS),
it says whether and how it delivers a message to a resident, and it registers its own web, API,
socket and CLI parts with `register(app, api)`. crm.areas() puts the registered channels among the
app's areas, so create_app walks one list. The adapters are imported by name, never at import
time here, so a channel may build on any core area without a cycle.
"""
from importlib import import_module
from typing import Iterable, Optional

from flask import current_app

from ..errors import Conflict

# One entry per channel: the module whose `channel` is its adapter. Adding a channel adds its line here.
BUILT_IN = (
    "crm.channels.phone",
    "crm.webchat.channel",
    "crm.channels.email.channel",
    "crm.channels.web_form",
    "crm.open311.channel",
)
# Where a resident's news goes when the channel they prefer cannot reach them.
FALLBACK = "email"


class Channel:
    """A contact channel's adapter; the defaults describe a channel that cannot send to a resident."""

    name: str = ""

    @property
    def label(self) -> str:
        """The words staff read for this channel (crm/labels.py holds them all)."""
        from ..labels import LABELS  # noqa: PLC0415  (labels read the models; adapters load before them)

        return LABELS["channel"].get(self.name, self.name.replace("_", " ").capitalize())

    def address(self, customer, case=None) -> Optional[str]:
        """Return where this channel would reach the resident now (an email address, a live chat), or None."""
        return None

    def reaches(self, customer, case=None) -> bool:
        """Say whether this channel can deliver a message to the resident now."""
        return self.address(customer, case) is not None

    def deliver(self, customer, subject: str, body: str, case=None):
        """Deliver a message to the resident (after commit; the caller commits); None when it cannot reach them."""
        raise Conflict(f"{self.label} cannot send a message to a resident", code="cannot_deliver")

    def reply(self, conversation, agent, body: str, attachments: Iterable = ()):
        """Send an agent's checked reply in one of this channel's conversations (the caller commits)."""
        raise Conflict(f"{self.label} has no conversations to reply in", code="cannot_reply")

    def register(self, app, api) -> None:
        """Register the channel's own pages, API, socket handlers and commands (none by default)."""

    def __repr__(self) -> str:
        return f"<Channel {self.name}>"


def load(paths: Optional[Iterable[str]] = None) -> tuple:
    """Import the adapters named by `paths` (the built-in channels by default), in order; names must be unique."""
    adapters = tuple(import_module(path).channel for path in (paths or BUILT_IN))
    names = [adapter.name for adapter in adapters]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise RuntimeError(f"channel registered more than once: {', '.join(twice)}")
    return adapters


def channels() -> tuple:
    """Return the current app's channels (its CHANNELS setting, else the built-in ones)."""
    return load(current_app.config.get("CHANNELS"))


def find(name: Optional[str]) -> Optional[Channel]:
    """Return the current app's channel with this name, or None when it has no such channel."""
    return next((adapter for adapter in channels() if adapter.name == name), None)


def reaching(customer, case=None) -> Optional[Channel]:
    """Return the channel a resident's news goes by: the one they prefer if it can reach them, else email, else None.

    A channel that cannot push (phone, web form, Open311) or has no way to the resident now (no live
    chat, no address that has not bounced) is passed over.
    """
    for name in dict.fromkeys((customer.preferred_channel, FALLBACK)):
        adapter = find(name)
        if adapter is not None and adapter.reaches(customer, case):
            return adapter
    return None
