"""Privacy: a profile's consents and the policy's verdicts, consent changes
through the API, a person's data export, retention, the count of refusals,
and the audit log. Thin over ``engine.privacy`` and ``engine.audit``."""

from __future__ import annotations

from datetime import datetime

from fastapi import Request
from fastapi.responses import PlainTextResponse
from starlette.concurrency import run_in_threadpool

from .deps import EngineDep, admin_router, freshen
from .params import Int
from .privacy_models import (AuditPage, AuditVerification, ConsentUpdate, EraseRequest, ErasureCertificate, ErasureList,
                             RekeyReport,
                             PersonalData, PrivacyBudgetState, PrivateRelease, ProfileConsent, RefusalCounts,
                             ReleaseRequest, RetentionReport, VerifyReport, VerifyRequest)

router = admin_router("privacy")


@router.get("/v1/profiles/{identifier}/consent", response_model=ProfileConsent,
            summary="A profile's consents, the policy's verdict for every purpose, and the history of changes")
async def get_consent(identifier: str, engine: EngineDep, history: Int = 50, fresh: bool = False) -> object:
    await freshen(engine, fresh)
    return await run_in_threadpool(engine.privacy.consent, identifier, max(0, min(history, 10_000)))


@router.put("/v1/profiles/{identifier}/consent", response_model=ProfileConsent,
            summary="Grant or withdraw consent per purpose (recorded with time, source and policy version)")
async def put_consent(identifier: str, body: ConsentUpdate, engine: EngineDep, fresh: bool = False) -> object:
    """`fresh=true` first stores every event accepted before this request, so a
    profile created by events just sent is found."""
    await freshen(engine, fresh)
    return await run_in_threadpool(engine.privacy.set_consent, identifier, body.purposes, body.source,
                                   body.policy_version)


@router.get("/v1/profiles/{identifier}/export", response_model=PersonalData,
            summary="Everything held about a person (GDPR Art. 15 / 20): traits with sources, identities, consents "
                    "and their history, segments, computed traits and scores with their meaning, every processing")
async def export_profile(identifier: str, engine: EngineDep, fresh: bool = False) -> object:
    await freshen(engine, fresh)
    return await run_in_threadpool(engine.privacy.export, identifier)


@router.get("/v1/profiles/{identifier}/export/events.csv", response_class=PlainTextResponse,
            responses={200: {"content": {"text/csv": {}}, "description": "The person's events, one row each"}},
            summary="A person's events as CSV")
async def export_profile_events(identifier: str, engine: EngineDep, fresh: bool = False) -> PlainTextResponse:
    await freshen(engine, fresh)
    text = await run_in_threadpool(engine.privacy.export_events, identifier)
    return PlainTextResponse(text, media_type="text/csv")


@router.delete("/v1/profiles/{identifier}", response_model=ErasureCertificate,
               summary="Erase a person from everything the project keeps (GDPR Art. 17, CCPA delete); the certificate. "
                       "Needs privacy:erase. Erasing again answers with the first erasure's certificate")
async def erase_profile(identifier: str, request: Request, engine: EngineDep) -> object:
    return await _erase(request, engine, [identifier])


async def _erase(request: Request, engine: EngineDep, identifiers: list[str]) -> object:
    principal = getattr(request.state, "principal", None)
    # Records of calls just answered (reads of this person) go to the log first, so that they are redacted too.
    await request.app.state.audit.flush()
    certificate = await run_in_threadpool(engine.privacy.erase, identifiers,
                                          principal.key_id if principal is not None else "api")
    # The call's own audit record names the erasure, not the people it erased.
    request.state.audit_target = f"erasure:{certificate['erasure_id']}"
    return certificate


@router.post("/v1/admin/privacy/erasures", response_model=ErasureCertificate,
             summary="Erase several people in one request (one certificate). Needs privacy:erase")
async def erase_people(body: EraseRequest, request: Request, engine: EngineDep) -> object:
    return await _erase(request, engine, body.identifiers)


@router.post("/v1/privacy/verify", response_model=VerifyReport,
             summary="Seek values (ids, emails, phones, names) in every store and file: zero findings after an "
                     "erasure. Needs privacy:erase; the values travel in the body, never in the audit log")
async def verify_erasure(body: VerifyRequest, request: Request, engine: EngineDep) -> object:
    await request.app.state.audit.flush()
    return await run_in_threadpool(engine.privacy.verify, body.values)


@router.post("/v1/admin/privacy/erasures/resume", response_model=ErasureList,
             summary="Finish the erasures a crash, a busy event log or an import left unfinished")
async def resume_erasures(engine: EngineDep) -> object:
    return {"items": await run_in_threadpool(engine.privacy.resume_erasures)}


@router.post("/v1/admin/privacy/rekey", response_model=RekeyReport,
             summary="Rotate the identity key: a new key, and every stored email and phone digest wrapped under "
                     "it in one transaction (docs/privacy.md, 'Identity keys'). Needs admin")
async def rekey_identities(engine: EngineDep) -> object:
    return await run_in_threadpool(engine.privacy.rekey)


@router.post("/v1/admin/privacy/retention", response_model=RetentionReport,
             summary="Expire what privacy.retention says has been kept long enough (also run daily by serve)")
async def run_retention(engine: EngineDep, dry_run: bool = False) -> object:
    return await run_in_threadpool(engine.privacy.retention, dry_run)


@router.post("/v1/admin/privacy/release", response_model=PrivateRelease,
             summary="A report that may leave the project, with differential privacy and small cells suppressed; "
                     "its epsilon is paid from the project's budget")
async def release_report(body: ReleaseRequest, engine: EngineDep, fresh: bool = False) -> object:
    await freshen(engine, fresh)
    return await run_in_threadpool(engine.privacy.release, body.report, body.epsilon, body.k)


@router.get("/v1/privacy/budget", response_model=PrivacyBudgetState,
            summary="The project's epsilon budget: total, spent, left, and the ledger of releases")
async def privacy_budget(engine: EngineDep) -> object:
    return await run_in_threadpool(engine.privacy.budget)


@router.get("/v1/privacy/refusals", response_model=RefusalCounts,
            summary="How many uses the consent policy refused, by use, purpose and reason")
async def refusals(engine: EngineDep, since: datetime | None = None) -> object:
    return {"items": await run_in_threadpool(engine.privacy.refusal_counts, since)}


@router.get("/v1/audit", response_model=AuditPage,
            summary="Who read or changed what: the audit log, newest first (actor, action, target, since)")
async def audit_log(request: Request, engine: EngineDep, actor: str | None = None, action: str | None = None,
                    target: str | None = None, since: datetime | None = None, limit: Int = 200) -> object:
    await request.app.state.audit.flush()     # the calls answered just before this one are in the answer
    return {"items": await run_in_threadpool(engine.audit.query, actor, action, target, _utc(since),
                                             max(1, min(limit, 10_000)))}


@router.get("/v1/audit/verify", response_model=AuditVerification,
            summary="Walk the audit chain and its signed checkpoints: any changed, removed or reordered record shows")
async def audit_verify(request: Request, engine: EngineDep) -> object:
    await request.app.state.audit.flush()
    return await run_in_threadpool(engine.audit.verify)


def _utc(at: datetime | None) -> datetime | None:
    from datetime import timezone

    return at.replace(tzinfo=timezone.utc) if at is not None and at.tzinfo is None else at
