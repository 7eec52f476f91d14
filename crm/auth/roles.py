"""Role names and the sets of roles that may do things, named once for the whole app.

`User.has_role` lets admins through every set; a set used in SQL (where `has_role` does not
apply) says whether it includes admins in its name.
"""
from ..models.users import ROLES

AGENT = "agent"
SUPERVISOR = "supervisor"
SERVICE_OFFICER = "service_officer"
ADMIN = "admin"
# Information governance: subject access, erasure, retention, the audit trail.
RECORDS = "records"
# Help content: drafts and publishes knowledge articles.
EDITOR = "editor"

# Every staff role: signed in at all.
STAFF = tuple(ROLES)
# Staff who work with residents' records (the default of roles_required()); editors of help content do not.
CONSOLE_STAFF = (AGENT, SUPERVISOR, SERVICE_OFFICER, ADMIN)
# Answer residents on the live channels and the shared inbox; write customer records.
FRONT_LINE = (AGENT, SUPERVISOR)
# Take webchats from the agent console.
CHAT_STAFF = FRONT_LINE
# Users who may hold a chat or a conversation (for SQL: admins included, as has_role would).
CHAT_HOLDERS_SQL = CHAT_STAFF + (ADMIN,)
# Desk staff counted on the supervisor dashboard and offered as assignees (for SQL: admins not listed).
DESK_STAFF_SQL = (AGENT, SUPERVISOR)
# Raise cases for residents.
CASE_RAISERS = (AGENT, SUPERVISOR, SERVICE_OFFICER)
# Work cases: change status, owner or service, post updates.
CASE_WORKERS = (SUPERVISOR, SERVICE_OFFICER)
# Watch the queues, move work, read reports, merge cases.
SUPERVISORS = (SUPERVISOR,)
# Review possible duplicate customers: merge, dismiss, and undo a merge.
DUPLICATE_REVIEWERS = (SUPERVISOR,)
# Read sensitive content (a sensitive service's cases, restricted customers, vulnerability notes)
# without a service or an assignment that gives the need; officers qualify through their service.
SENSITIVE_READERS = (SUPERVISOR,)
# Set and clear vulnerability notes and a customer's restricted flag.
SENSITIVE_WRITERS = (SUPERVISOR,)
# Manage users, services and settings.
ADMINS = (ADMIN,)
# Run subject access exports, erasure, legal holds and retention, and read the audit trail. Admins do
# not pass (they grant the role): check with records.access.require_records, not has_role.
RECORDS_OFFICERS = (RECORDS,)
# Edit the retention schedules.
RETENTION_EDITORS = (RECORDS, ADMIN)
# Draft, publish and archive help articles (public help and staff guidance).
ARTICLE_EDITORS = (EDITOR, SUPERVISOR)
# Read the knowledge base and its guidance: everyone at the console, and the editors.
KNOWLEDGE_READERS = CONSOLE_STAFF + (EDITOR,)
# Post and withdraw service notices shown on every channel.
NOTICE_POSTERS = SUPERVISORS
