"""The model registry: train, score, evaluate, drift, maintain. Thin over ``engine.models``."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool

from ..predict.drift import DriftThresholds
from .deps import EngineDep, admin_router
from .models import DriftReport, EvaluationReport, Maintained, ModelDetail, ModelList, ScoreResult, TrainRequest
from .params import OptionalInt

router = admin_router("models")


@router.get("/v1/models", response_model=ModelList, summary="Every registered model version")
async def list_models(engine: EngineDep) -> object:
    return {"items": await run_in_threadpool(engine.models.list)}


@router.post("/v1/admin/models/maintain", response_model=Maintained,
             summary="Run the scheduled maintenance now: train when due, else evaluate and check drift, then score")
async def maintain_models(engine: EngineDep) -> object:
    return {"items": await run_in_threadpool(engine.models.maintain)}


@router.get("/v1/models/{name}", response_model=ModelDetail,
            summary="A model's latest (or ?version=) version with its metrics and monitoring")
async def show_model(name: str, engine: EngineDep, version: OptionalInt = None) -> object:
    return await run_in_threadpool(engine.models.show, name, version)


@router.post("/v1/admin/models/{name}/train", response_model=ModelDetail,
             summary="Train, evaluate on the latest unseen window, register a new version")
async def train_model(name: str, engine: EngineDep, body: TrainRequest | None = None) -> object:
    b = body or TrainRequest()
    return await run_in_threadpool(engine.models.train, name, b.horizon_days, b.model, b.reason)


@router.post("/v1/admin/models/{name}/score", response_model=ScoreResult,
             summary="Score every profile; the scores become computed traits")
async def score_model(name: str, engine: EngineDep, version: OptionalInt = None) -> object:
    return await run_in_threadpool(engine.models.score, name, version)


@router.post("/v1/admin/models/{name}/evaluate", response_model=EvaluationReport,
             summary="Judge a version on the latest window whose outcome is known (recorded)")
async def evaluate_model(name: str, engine: EngineDep, version: OptionalInt = None) -> object:
    return await run_in_threadpool(engine.models.evaluate, name, version)


@router.get("/v1/models/{name}/drift", response_model=DriftReport,
            summary="Drift of today's features from the training sample: KS and PSI per feature (recorded)")
async def model_drift(name: str, engine: EngineDep, version: OptionalInt = None, psi: float | None = None,
                      ks_pvalue: float | None = None, retrain: bool = False) -> object:
    default = engine.config.models.drift
    thresholds = DriftThresholds(default.psi if psi is None else psi,
                                 default.ks_pvalue if ks_pvalue is None else ks_pvalue)
    return await run_in_threadpool(engine.models.drift, name, version, thresholds, retrain)
