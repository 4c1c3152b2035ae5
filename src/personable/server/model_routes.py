"""HTTP routes for the model registry (admin token required). Thin over ``engine.models``."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import ORJSONResponse
from starlette.concurrency import run_in_threadpool

from ..engine import Engine
from ..errors import ValidationFailed
from ..predict.drift import DriftThresholds
from .body import check_admin, read_object
from .params import OptionalInt
from .schemas import ERRORS, body

TRAIN_SCHEMA = {"type": "object", "properties": {
    "horizon_days": {"type": "integer", "minimum": 1}, "model": {"type": "string"}}}


def add_model_routes(app: FastAPI, engine: Engine, admin_token: str | None) -> None:
    @app.get("/v1/models", tags=["models"], responses=ERRORS, summary="Every registered model version")
    async def list_models(request: Request) -> ORJSONResponse:
        check_admin(request, admin_token)
        return ORJSONResponse({"items": await run_in_threadpool(engine.models.list)})

    @app.get("/v1/models/{name}", tags=["models"], responses=ERRORS,
             summary="A model's latest (or ?version=) version with its metrics and monitoring")
    async def show_model(name: str, request: Request, version: OptionalInt = None) -> ORJSONResponse:
        check_admin(request, admin_token)
        return ORJSONResponse(await run_in_threadpool(engine.models.show, name, version))

    @app.post("/v1/admin/models/{name}/train", tags=["models"], responses=ERRORS, openapi_extra=body(TRAIN_SCHEMA),
              summary="Train, evaluate on the latest unseen window, register a new version")
    async def train_model(name: str, request: Request) -> ORJSONResponse:
        check_admin(request, admin_token)
        payload = await read_object(request, 10_000, empty_ok=True)
        horizon = payload.get("horizon_days")
        if horizon is not None and (isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1):
            raise ValidationFailed("horizon_days must be a whole number of days >= 1")
        return ORJSONResponse(await run_in_threadpool(engine.models.train, name, horizon, payload.get("model")))

    @app.post("/v1/admin/models/{name}/score", tags=["models"], responses=ERRORS,
              summary="Score every profile; the scores become computed traits")
    async def score_model(name: str, request: Request, version: OptionalInt = None) -> ORJSONResponse:
        check_admin(request, admin_token)
        return ORJSONResponse(await run_in_threadpool(engine.models.score, name, version))

    @app.post("/v1/admin/models/{name}/evaluate", tags=["models"], responses=ERRORS,
              summary="Judge a version on the latest window whose outcome is known (recorded)")
    async def evaluate_model(name: str, request: Request, version: OptionalInt = None) -> ORJSONResponse:
        check_admin(request, admin_token)
        return ORJSONResponse(await run_in_threadpool(engine.models.evaluate, name, version))

    @app.get("/v1/models/{name}/drift", tags=["models"], responses=ERRORS,
             summary="Drift of today's features from the training sample: KS and PSI per feature (recorded)")
    async def model_drift(name: str, request: Request, version: OptionalInt = None, psi: float | None = None,
                          ks_pvalue: float | None = None, retrain: bool = False) -> ORJSONResponse:
        check_admin(request, admin_token)
        default = engine.config.models.drift
        thresholds = DriftThresholds(default.psi if psi is None else psi,
                                     default.ks_pvalue if ks_pvalue is None else ks_pvalue)
        return ORJSONResponse(await run_in_threadpool(engine.models.drift, name, version, thresholds, retrain))

    @app.post("/v1/admin/models/maintain", tags=["models"], responses=ERRORS,
              summary="Run the scheduled maintenance now: train when due, else evaluate and check drift, then score")
    async def maintain_models(request: Request) -> ORJSONResponse:
        check_admin(request, admin_token)
        return ORJSONResponse({"items": await run_in_threadpool(engine.models.maintain)})
