//! `GET /metrics` in the Prometheus text format (version 0.0.4).
//!
//! Owns: the names of the service's metrics and their rendering.
//!
//! Must never: allocate more than one string per scrape, or take a lock a
//! command takes (the ledger's metrics are striped counters and snapshot
//! reads; the intake's stats are atomics).

use crate::server::App;
use std::fmt::Write;
use std::sync::atomic::Ordering;

/// The scrape's text.
pub(crate) fn render(app: &App) -> String {
    let intake = app.orders.intake().stats();
    let metrics = app.ledger.metrics().with_intake(&intake);
    let mut out = String::with_capacity(4_096);
    fn family(out: &mut String, name: &str, kind: &str, help: &str) -> String {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        name.to_owned()
    }
    let name = family(&mut out, "stockroom_commands_total", "counter", "Ledger commands by kind and outcome.");
    let mut lines = String::new();
    for counts in &metrics.commands {
        let kind = counts.kind.name();
        let _ = writeln!(lines, "{name}{{command=\"{kind}\",outcome=\"ok\"}} {}", counts.ok);
        let _ = writeln!(lines, "{name}{{command=\"{kind}\",outcome=\"refused\"}} {}", counts.refused);
    }
    out.push_str(&lines);
    let name = family(&mut out, "stockroom_refusals_total", "counter", "Ledger refusals by reason.");
    for count in &metrics.refusals {
        let _ = writeln!(out, "{name}{{reason=\"{}\"}} {}", count.reason.name(), count.count);
    }
    let gauges = [
        ("stockroom_holds_live", "gauge", "Live reservations.", metrics.holds_live),
        ("stockroom_units_held", "gauge", "Units held by live reservations.", metrics.units_held),
        ("stockroom_skus", "gauge", "SKUs defined.", metrics.skus),
        ("stockroom_lapses_total", "counter", "Holds found lapsed.", metrics.lapses),
        ("stockroom_keyed_replays_total", "counter", "Keyed commands replayed.", metrics.keyed_replays),
        ("stockroom_intake_shed_total", "counter", "Orders the intake shed.", metrics.sheds),
        ("stockroom_intake_queue_depth", "gauge", "Orders waiting in the intake.", metrics.intake_queue_depth),
        ("stockroom_intake_in_flight", "gauge", "Orders accepted, not decided.", metrics.intake_in_flight),
        ("stockroom_journal_lag", "gauge", "Changes not yet durable (0: no journal yet).", metrics.journal_lag),
        (
            "stockroom_clock_clamped_total",
            "counter",
            "Clock readings clamped: the clock stepped back.",
            metrics.clock_clamped,
        ),
        (
            "stockroom_clock_step_back_max_ms",
            "gauge",
            "Largest step back of the clock (ms).",
            metrics.clock_step_back_max_ms,
        ),
    ];
    for (name, kind, help, value) in gauges {
        let name = family(&mut out, name, kind, help);
        let _ = writeln!(out, "{name} {value}");
    }
    let counts = &app.orders.counts;
    let name = family(&mut out, "stockroom_http_orders_total", "counter", "POST /orders by result.");
    for (result, counter) in [
        ("accepted", &counts.accepted),
        ("duplicate", &counts.duplicates),
        ("key_conflict", &counts.key_conflicts),
        ("shed", &counts.shed),
        ("refused", &counts.refused),
        ("held", &counts.held),
        ("committed", &counts.committed),
        ("released", &counts.released),
    ] {
        let _ = writeln!(out, "{name}{{result=\"{result}\"}} {}", counter.load(Ordering::Relaxed));
    }
    let name = family(
        &mut out,
        "stockroom_http_orders_shed_total",
        "counter",
        "POST /orders refused with 429, by reason: the intake was full, or the service was behind.",
    );
    let _ = writeln!(out, "{name}{{reason=\"intake_full\"}} {}", counts.shed.load(Ordering::Relaxed));
    let _ = writeln!(out, "{name}{{reason=\"behind\"}} {}", app.admission.shed.load(Ordering::Relaxed));
    let gauges = [
        (
            "stockroom_http_runtime_lag_seconds",
            "The runtime's scheduling lag at the last probe (admission control's signal).",
            app.admission.lag().as_secs_f64(),
        ),
        (
            "stockroom_http_shed_share",
            "The share of new orders shed because the service is behind (0 to 0.99).",
            app.admission.share(),
        ),
    ];
    for (name, help, value) in gauges {
        let name = family(&mut out, name, "gauge", help);
        let _ = writeln!(out, "{name} {value}");
    }
    let name = family(&mut out, "stockroom_http_responses_total", "counter", "HTTP responses by status class.");
    for (class, counter) in app.responses.iter().enumerate().skip(1) {
        let _ = writeln!(out, "{name}{{class=\"{class}xx\"}} {}", counter.load(Ordering::Relaxed));
    }
    let name = family(&mut out, "stockroom_events_published_total", "counter", "Frames published on /events.");
    let _ = writeln!(out, "{name} {}", app.feed.published.load(Ordering::Relaxed));
    out
}
