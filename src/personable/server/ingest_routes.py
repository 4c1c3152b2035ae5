"""The project's intake seen from the admin side: file imports, the quarantine, counts."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool

from .deps import EngineDep, admin_router, freshen
from .models import IngestReportModel, IngestRequest, QuarantinePage, Stats
from .params import Int
from .paths import confined

router = admin_router("ingest")


@router.post("/v1/admin/ingest", response_model=IngestReportModel,
             summary="Import a file from the server's import folder (server.import_dir; the CLI uses it while a "
                     "server owns the project)")
async def admin_ingest(body: IngestRequest, engine: EngineDep) -> object:
    path = confined(engine.config, body.path, "import", "body.path")
    kw = {} if body.chunk_size is None else {"chunk_size": body.chunk_size}
    report = await run_in_threadpool(lambda: engine.ingest(path, body.kind, body.format, body.mapping, body.source,
                                                           **kw))
    return report.as_dict()


@router.get("/v1/quarantine", response_model=QuarantinePage, summary="Records that failed validation, newest first")
async def get_quarantine(engine: EngineDep, limit: Int = 50, offset: Int = 0, fresh: bool = False) -> object:
    await freshen(engine, fresh)
    rows = await run_in_threadpool(engine.quarantine, max(1, min(limit, 1000)), max(0, offset))
    return {"items": rows, "limit": limit, "offset": offset}


@router.get("/v1/stats", response_model=Stats, summary="Counts of events, profiles, identities")
async def get_stats(engine: EngineDep, fresh: bool = False) -> object:
    await freshen(engine, fresh)
    return await run_in_threadpool(engine.stats)
