"""Ports: what the domain needs from storage and transport, nothing more.

Narrow protocols, one module per concern, each a handful of methods. Domain
code depends on these only, and mypy checks every adapter against them (see
``personable.compose``, where each adapter is bound to the ports it serves).
Queries cross as Ibis expressions, never as SQL text. A backend declares what
it can do in ``capabilities`` (data, not isinstance checks).
"""

from .analytics import Analytics
from .bus import EventBus, Handler
from .catalog import Catalog
from .computed import ComputedTraits
from .eventlog import EventLog, Positions
from .models import ModelRegistry
from .online import OnlineStore, ProfileReads
from .profiles import PROFILES_CHANGED, ProfileProjection, ProfilesChanged
from .quality import QualityStore
from .resolution import ProfileMerges, ResolutionLedger, Standardize
from .segments import RealtimeSession, SegmentStore
from .writes import (BatchWriter, EventWrites, FileImport, IngestReport, PipelineSettings, StagedInput)

__all__ = [
    "Analytics", "BatchWriter", "Catalog", "ComputedTraits", "EventBus", "EventLog", "Positions", "EventWrites", "FileImport",
    "Handler", "IngestReport", "ModelRegistry", "OnlineStore", "PROFILES_CHANGED", "PipelineSettings",
    "ProfileMerges", "ProfileProjection", "ProfileReads", "ProfilesChanged", "QualityStore", "RealtimeSession",
    "ResolutionLedger", "SegmentStore", "StagedInput", "Standardize",
]
