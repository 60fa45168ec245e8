"""SQLModel tables shared by every layer: no I/O and no business rules here."""

from models.base import utcnow
from models.calls import CallLeg, CallLegKind, Recording
from models.canned import CannedResponse
from models.contacts import Contact, ContactIdentity, IdentityKind
from models.dialogs import Dialog, DialogKind, DialogVersion, ValidationStatus
from models.interactions import (
    OPEN_STATES,
    Direction,
    Inbox,
    Interaction,
    InteractionEvent,
    InteractionState,
    Message,
    MessagePart,
    SenderKind,
)
from models.jobs import Job, JobState
from models.leases import Lease
from models.routing import BusinessHours, Offer, OfferOutcome, Queue, QueueSkill, Strategy
from models.staffing import (
    ForecastOverride,
    Roster,
    RosterShift,
    ShiftTemplate,
    StaffingGroup,
    StaffingModel,
)
from models.transcripts import Speaker, Transcript, TranscriptSegment, TranscriptStatus
from models.users import (
    Agent,
    AgentSkill,
    AuditEntry,
    Disposition,
    NotReadyReason,
    PresenceChange,
    PresenceState,
    Role,
    Skill,
    User,
)

__all__ = [
    "OPEN_STATES",
    "Agent",
    "AgentSkill",
    "AuditEntry",
    "BusinessHours",
    "CallLeg",
    "CallLegKind",
    "CannedResponse",
    "Contact",
    "ContactIdentity",
    "Dialog",
    "DialogKind",
    "DialogVersion",
    "Direction",
    "Disposition",
    "ForecastOverride",
    "IdentityKind",
    "Inbox",
    "Interaction",
    "InteractionEvent",
    "InteractionState",
    "Job",
    "JobState",
    "Lease",
    "Message",
    "MessagePart",
    "NotReadyReason",
    "Offer",
    "OfferOutcome",
    "PresenceChange",
    "PresenceState",
    "Queue",
    "QueueSkill",
    "Recording",
    "Role",
    "Roster",
    "RosterShift",
    "SenderKind",
    "ShiftTemplate",
    "Skill",
    "Speaker",
    "StaffingGroup",
    "StaffingModel",
    "Strategy",
    "Transcript",
    "TranscriptSegment",
    "TranscriptStatus",
    "User",
    "ValidationStatus",
    "utcnow",
]
