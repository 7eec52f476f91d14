"""The data model; every model is importable from here (Alembic reads this)."""
from .types import UTCDateTime, utcnow
from .users import User, ApiToken, AgentPresence, StaffSocket, ROLES, PRESENCE_STATES
from .customers import Customer, CustomerIdentity, CustomerNameTerm, Address, IDENTITY_KINDS, IDENTITY_SOURCES
from .identity import PossibleDuplicate, CustomerMerge, DUPLICATE_STATUSES
from .services import (
    Service, Category, Queue, RoutingRule, FormDefinition, QUEUE_CHANNELS,
)
from .contacts import Contact, CHANNELS, DIRECTIONS, OUTCOMES
from .conversations import Conversation, Message, Attachment, AUTHOR_KINDS
from .cases import Case, CaseEvent, CASE_STATUSES, PRIORITIES
from .audit import AuditLog
from .email import InboundEmail, OutboundEmail, INBOUND_STATUSES, OUTBOUND_STATUSES
from .open311 import Open311Request
from .portal import ResidentAccount, ResidentSignInToken, FormDraft
from .webchat import ChatSession, AgentSocket, AgentSkill, OpeningHours, CannedReply
from .replying import ReplyMarker
from .supervisor import AgentStateChange, Banner, ChannelCost, ContactDailyTotal
from .outbox import OutboxJob
from .records import LegalHold, RetentionRule, RetentionRun, ErasureTombstone, RETENTION_KINDS, RETENTION_ACTIONS
from .knowledge import (
    KnowledgeArticle, ArticleVersion, ArticleFeedback, ArticleUse, SelfServiceEvent, ServiceNotice,
    ARTICLE_AUDIENCES, ARTICLE_STATUSES, SELF_SERVICE_SURFACES, SELF_SERVICE_KINDS,
)
