"""Data quality: the report, its history, and the jobs that clean and complete what is stored."""

from __future__ import annotations

from fastapi import Query
from starlette.concurrency import run_in_threadpool

from .deps import EngineDep, admin_router, freshen
from .models import CleanReport, ImputeReport, QualityHistory, QualityReport
from .params import Int

router = admin_router("quality")


@router.get("/v1/quality", response_model=QualityReport,
            summary="Data-quality report: completeness, validity, uniqueness, freshness per field and source")
async def quality_report(engine: EngineDep, field: list[str] = Query(default=[]), save: bool = True,
                         fresh: bool = False) -> object:
    """Computed now over the stored profiles; `save=true` keeps it in the history, and
    `regressions` lists what got worse since the previous saved report."""
    await freshen(engine, fresh)
    return await run_in_threadpool(engine.quality.report, field or None, save)


@router.get("/v1/quality/history", response_model=QualityHistory, summary="Past quality reports, newest first")
async def quality_history(engine: EngineDep, limit: Int = 10) -> object:
    return {"items": await run_in_threadpool(engine.quality.history, max(1, min(limit, 100)))}


@router.post("/v1/admin/quality/clean", response_model=CleanReport,
             summary="Re-standardize every stored trait and amount with the current settings")
async def quality_clean(engine: EngineDep) -> object:
    return await run_in_threadpool(engine.quality.clean)


@router.post("/v1/admin/quality/impute", response_model=ImputeReport,
             summary="Fill missing values by each field's policy (marked as imputed)")
async def quality_impute(engine: EngineDep) -> object:
    return await run_in_threadpool(engine.quality.impute)
