//! `/testing/*`: levers for end-to-end tests, served only with `testing.control_routes`.
//! Move the clock forward, run the reaper or the meter now.

use axum::Json;
use axum::extract::State;
use serde_json::Value;

use super::error::ApiError;
use super::json::JsonObject;
use super::schema::{ClockMoved, RoundReport, True};
use crate::app::SharedApp;
use crate::lifecycle::{meter, reaper};

fn enabled(app: &SharedApp) -> Result<(), ApiError> {
    if app.control_routes {
        Ok(())
    } else {
        Err(ApiError::not_found("Route"))
    }
}

/// Body `{"seconds": n}`: moves the host's clock forward by n seconds.
pub async fn advance_clock(
    State(app): State<SharedApp>,
    JsonObject(body): JsonObject,
) -> Result<Json<ClockMoved>, ApiError> {
    enabled(&app)?;
    let seconds = body
        .get("seconds")
        .and_then(Value::as_i64)
        .filter(|s| *s >= 0)
        .ok_or_else(|| ApiError::invalid_body("`seconds` must be a non-negative integer"))?;
    let now = app.clock.advance(seconds);
    Ok(Json(ClockMoved { ok: True, now }))
}

pub async fn reap(
    State(app): State<SharedApp>,
) -> Result<Json<RoundReport<reaper::ReapReport>>, ApiError> {
    enabled(&app)?;
    let report = reaper::reap_once(&app).await;
    Ok(Json(RoundReport { ok: True, report }))
}

pub async fn meter(
    State(app): State<SharedApp>,
) -> Result<Json<RoundReport<meter::MeterReport>>, ApiError> {
    enabled(&app)?;
    let report = meter::meter_once(&app, true).await;
    Ok(Json(RoundReport { ok: True, report }))
}
