"""Predictive models: churn, CLV, next purchase value, send time."""
