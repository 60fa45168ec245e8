"""SQLModel tables shared by every layer: no I/O and no business rules here."""

from models.base import utcnow
from models.calls import CallLeg, CallLegKind, Recording
from models.canned import CannedResponse
from models.contacts import Contact, ContactIdentity, IdentityKind
from models.dialogs import Dialog, DialogKind, DialogVersion, PromptRecording, ValidationStatus
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
from models.nobody import CallbackAttempt, CallbackRequest, CallbackState, CallOut, Voicemail
from models.qa import (
    Category,
    DocSource,
    Evaluation,
    EvaluationForm,
    EvaluationStatus,
    InteractionCategory,
    QaDoc,
)
from models.reports import (
    WAIT_BINS,
    ReportRepeat,
    ReportRollup,
    ReportRollupQueue,
    ReportSchedule,
)
from models.routing import BusinessHours, Offer, OfferOutcome, Queue, QueueSkill, Strategy
from models.segments import (
    ControlEvent,
    ControlKind,
    InteractionSegment,
    SegmentRole,
    SupervisorQueue,
)
from models.staffing import (
    ForecastOverride,
    Roster,
    RosterShift,
    ShiftTemplate,
    StaffingGroup,
    StaffingModel,
)
from models.surveys import SurveyAnswer
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
    "WAIT_BINS",
    "Agent",
    "AgentSkill",
    "AuditEntry",
    "BusinessHours",
    "CallLeg",
    "CallLegKind",
    "CallOut",
    "CallbackAttempt",
    "CallbackRequest",
    "CallbackState",
    "CannedResponse",
    "Category",
    "Contact",
    "ContactIdentity",
    "ControlEvent",
    "ControlKind",
    "Dialog",
    "DialogKind",
    "DialogVersion",
    "Direction",
    "Disposition",
    "DocSource",
    "Evaluation",
    "EvaluationForm",
    "EvaluationStatus",
    "ForecastOverride",
    "IdentityKind",
    "Inbox",
    "Interaction",
    "InteractionCategory",
    "InteractionEvent",
    "InteractionSegment",
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
    "PromptRecording",
    "QaDoc",
    "Queue",
    "QueueSkill",
    "Recording",
    "ReportRepeat",
    "ReportRollup",
    "ReportRollupQueue",
    "ReportSchedule",
    "Role",
    "Roster",
    "RosterShift",
    "SegmentRole",
    "SenderKind",
    "ShiftTemplate",
    "Skill",
    "Speaker",
    "StaffingGroup",
    "StaffingModel",
    "Strategy",
    "SupervisorQueue",
    "SurveyAnswer",
    "Transcript",
    "TranscriptSegment",
    "TranscriptStatus",
    "User",
    "ValidationStatus",
    "Voicemail",
    "utcnow",
]
