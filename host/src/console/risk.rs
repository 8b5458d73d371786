//! The risk page: users ranked by risk score over a chosen window with the trend from the
//! window before (the formula is [`crate::risk`]'s), a chart of the top users' daily scores
//! drawn server-side with plotters, and per user the alarms that made the score.

use axum::Extension;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, Utc};
use maud::html;
use plotters::prelude::*;

use super::page::{self, time};
use super::session::Session;
use super::{ConsoleState, blocking};
use crate::agent::query::{RiskQuery, ranking};
use crate::event::Event;
use crate::risk::rank;

/// Users drawn in the chart.
const CHARTED: usize = 5;

/// `GET /console/risk`
pub async fn page(
    State(state): State<ConsoleState>,
    Extension(session): Extension<Session>,
    Query(w): Query<RiskQuery>,
) -> Response {
    let (days, until) = match w.resolve() {
        Ok(r) => r,
        Err(why) => {
            let body = html! { h1 { "Risk" } div.flash.error role="alert" { (why) } };
            return (
                StatusCode::BAD_REQUEST,
                page::page("Risk", "/console/risk", &session, body),
            )
                .into_response();
        }
    };
    let store = state.api.store.clone();
    let ranked = match blocking(move || {
        let store = crate::agent::query::lock(&store)?;
        ranking(&store, days, until)
    })
    .await
    {
        Ok(r) => r,
        Err(e) => return e,
    };
    let chosen = w
        .user
        .as_deref()
        .and_then(|u| ranked.iter().find(|r| r.user == u));
    let query = w.query(days);
    let since = until - Duration::days(i64::from(days));
    let body = html! {
        h1 { "Risk" }
        form.filters.card method="get" action="/console/risk" {
            label { "Days" input type="number" name="days" min="1" max="366" value=(days); }
            label { "Through (UTC)" input type="date" name="until" value=(w.until_given().unwrap_or_default()); }
            input type="submit" value="Show";
            span.muted { "score = 100 × Σ(risk × times fired) / max(activity records, 100); "
                "trend = change from the " (days) " day(s) before" }
        }
        @if ranked.is_empty() {
            div.card.muted { "No alarms and no activity in this window." }
        } @else {
            div.card.chart {
                img src={ "/console/risk/chart.svg?" (query) } alt="daily risk score of the top users";
            }
            table #ranking {
                thead { tr {
                    th.num { "#" } th { "User" } th.num { "Score" } th { "Trend" }
                    th.num { "Points" } th.num { "Alarms" } th.num { "Activity" } th { "Most points from" }
                } }
                tbody {
                    @for (i, r) in ranked.iter().enumerate() {
                        tr {
                            td.num { (i + 1) }
                            td { a href={ "/console/risk?" (query) "&user=" (urlencode(&r.user)) } { (r.user) } }
                            td.num { strong { (format!("{:.1}", r.score)) } }
                            td { (trend(r.trend)) }
                            td.num { (r.points) } td.num { (r.alarms) } td.num { (r.records) }
                            td { @for a in r.by_alarm.iter().take(2) { (a.alarm) " (" (a.risk) "×" (a.fired) ") " } }
                        }
                    }
                }
            }
        }
        @if let Some(r) = chosen {
            h2 #user { (r.user) ": " (format!("{:.1}", r.score)) " (" (trend(r.trend)) ")" }
            table {
                thead { tr { th { "Alarm" } th.num { "Risk" } th.num { "Fired" } th.num { "Points" } } }
                tbody {
                    @for a in &r.by_alarm {
                        tr {
                            td { a href={ "/console/alarms?user=" (urlencode(&r.user)) "&alarm=" (urlencode(&a.alarm))
                                "&since=" (since.format("%Y-%m-%d")) "&until=" (until.format("%Y-%m-%d")) } { (a.alarm) } }
                            td.num { (page::risk_badge(a.risk)) } td.num { (a.fired) } td.num { (a.points) }
                        }
                    }
                }
            }
            p.muted { (r.records) " activity records from " (time(&Event::utc_string(since.fixed_offset()))) " to " (time(&Event::utc_string(until.fixed_offset()))) "." }
        }
    };
    page::page("Risk", "/console/risk", &session, body).into_response()
}

fn trend(t: f64) -> maud::Markup {
    html! {
        @if t > 0.0 { span.down { "▲ +" (format!("{t:.1}")) } }
        @else if t < 0.0 { span.up { "▼ " (format!("{t:.1}")) } }
        @else { span.muted { "=" } }
    }
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// `GET /console/risk/chart.svg`: the top users' score day by day over the window.
pub async fn chart(State(state): State<ConsoleState>, Query(w): Query<RiskQuery>) -> Response {
    let (days, until) = match w.resolve() {
        Ok(r) => r,
        Err(why) => return (StatusCode::BAD_REQUEST, why).into_response(),
    };
    let store = state.api.store.clone();
    let series = blocking(move || {
        let store = crate::agent::query::lock(&store)?;
        let top: Vec<String> = ranking(&store, days, until)?
            .into_iter()
            .filter(|r| r.points > 0)
            .take(CHARTED)
            .map(|r| r.user)
            .collect();
        let start = until - Duration::days(i64::from(days));
        let mut series: Vec<(String, Vec<f64>)> =
            top.iter().map(|u| (u.clone(), Vec::new())).collect();
        for d in 0..i64::from(days) {
            let day =
                store.risk_window(start + Duration::days(d), start + Duration::days(d + 1))?;
            let ranked = rank(&day, &Default::default());
            for (user, scores) in &mut series {
                scores.push(
                    ranked
                        .iter()
                        .find(|r| &r.user == user)
                        .map_or(0.0, |r| r.score),
                );
            }
        }
        Ok((start, series))
    })
    .await;
    let (start, series) = match series {
        Ok(s) => s,
        Err(e) => return e,
    };
    match draw(days, start, &series) {
        Ok(svg) => (
            [
                (header::CONTENT_TYPE, "image/svg+xml"),
                (header::CACHE_CONTROL, "private, no-store"),
            ],
            svg,
        )
            .into_response(),
        Err(why) => (StatusCode::INTERNAL_SERVER_ERROR, why).into_response(),
    }
}

/// A line per user (daily score), SVG.
fn draw(days: u32, start: DateTime<Utc>, series: &[(String, Vec<f64>)]) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (960, 300)).into_drawing_area();
        let err = |e: &dyn std::fmt::Display| format!("cannot draw the chart: {e}");
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let top = series
            .iter()
            .flat_map(|(_, s)| s.iter().copied())
            .fold(1.0f64, f64::max)
            * 1.15;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .caption("Daily risk score, top users", ("sans-serif", 16))
            .x_label_area_size(28)
            .y_label_area_size(44)
            .build_cartesian_2d(0u32..days.saturating_sub(1).max(1), 0f64..top)
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_labels(days.min(10) as usize)
            // A day is named by the date it ends on (less a moment: a day ending at midnight is
            // the day before it).
            .x_label_formatter(&|d| {
                (start + Duration::days(i64::from(*d) + 1) - Duration::milliseconds(1))
                    .format("%m-%d")
                    .to_string()
            })
            .y_desc("score")
            .light_line_style(RGBColor(235, 238, 243))
            .draw()
            .map_err(|e| err(&e))?;
        const COLOURS: [RGBColor; CHARTED] = [
            RGBColor(192, 57, 43),
            RGBColor(47, 111, 222),
            RGBColor(199, 119, 0),
            RGBColor(30, 132, 73),
            RGBColor(125, 60, 152),
        ];
        for ((user, scores), colour) in series.iter().zip(COLOURS) {
            let points = scores.iter().enumerate().map(|(d, s)| (d as u32, *s));
            chart
                .draw_series(LineSeries::new(points, colour.stroke_width(2)))
                .map_err(|e| err(&e))?
                .label(user.as_str())
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 18, y)], colour.stroke_width(2))
                });
        }
        if !series.is_empty() {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .background_style(WHITE.mix(0.9))
                .border_style(RGBColor(221, 225, 232))
                .draw()
                .map_err(|e| err(&e))?;
        }
        root.present().map_err(|e| err(&e))?;
    }
    Ok(svg)
}
