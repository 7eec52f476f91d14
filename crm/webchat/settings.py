"""Webchat settings: defaults, overridable by app config or the environment (WEBCHAT_*)."""
from config import check_time_zone, fill_from_environment

from ..bank_holidays import check_part_of_the_uk

DEFAULTS = {
    "WEBCHAT_MAX_MESSAGE_CHARS": 2000,
    "WEBCHAT_MAX_NAME_CHARS": 120,
    # Token buckets: a connection may burst this many messages, then this many per second.
    "WEBCHAT_CONNECTION_BURST": 10,
    "WEBCHAT_CONNECTION_RATE": 2.0,
    "WEBCHAT_IP_BURST": 60,
    "WEBCHAT_IP_RATE": 10.0,
    "WEBCHAT_MAX_OPEN_PER_VISITOR": 2,
    "WEBCHAT_MAX_OPEN_PER_IP": 20,
    # Seconds an agent may be away or disconnected before their chats go back to the queue.
    "WEBCHAT_GRACE_SECONDS": 60,
    # Seconds a resident waits with no agent before being offered "leave a message".
    "WEBCHAT_NO_AGENT_SECONDS": 300,
    "WEBCHAT_SWEEP_SECONDS": 1.0,
    # Starts one process runs at once (each is several round trips); more wait their turn.
    "WEBCHAT_START_CONCURRENCY": 4,
    # The assigner waits this long after a wake-up so one pass serves a burst of arrivals.
    "WEBCHAT_ASSIGN_GATHER_SECONDS": 0.05,
    # A chat whose topic some agent has as a skill waits this long for a skilled agent, then
    # goes to anyone (skilled agents still first); 0 = wait for a skilled agent however long.
    "WEBCHAT_SKILL_FALLBACK_SECONDS": 120,
    # Each process marks its agents' sockets alive this often; two missed beats mean it died.
    "WEBCHAT_HEARTBEAT_SECONDS": 5,
    # Origins (scheme://host[:port]) whose pages may embed the widget, space separated.
    "WEBCHAT_ALLOWED_ORIGINS": "",
    "WEBCHAT_TIMEZONE": "Europe/London",
    "WEBCHAT_HOLIDAY_SUBDIV": "",  # empty: the bank holidays of CASE_HOLIDAY_SUBDIVISION
    # Category for a message left out of hours when the chosen topic names none.
    "WEBCHAT_OFFLINE_CATEGORY": "general_enquiry",
}


def init_app(app):
    """Fill in webchat settings the app config lacks, from WEBCHAT_* variables or defaults."""
    fill_from_environment(app.config, DEFAULTS)
    check_part_of_the_uk("WEBCHAT_HOLIDAY_SUBDIV", app.config["WEBCHAT_HOLIDAY_SUBDIV"], may_be_empty=True)
    check_time_zone("WEBCHAT_TIMEZONE", app.config["WEBCHAT_TIMEZONE"])


def allowed_origins(app) -> list[str]:
    """Return the origins allowed to embed the widget."""
    raw = app.config.get("WEBCHAT_ALLOWED_ORIGINS") or ""
    if isinstance(raw, (list, tuple)):
        return [o.rstrip("/") for o in raw if o]
    return [o.rstrip("/") for o in raw.replace(",", " ").split() if o]
