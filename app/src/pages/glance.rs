//! The last 24 hours at a glance, as pictures: runs per hour by outcome, the success rate, how
//! long runs took, and the space buckets use. The home page shows it for every service the
//! user sees, a service's page for that service and its buckets.

use leptos::prelude::*;

use super::bucket::human_size;
use crate::api::jobs::job_glance;
use model::usage::{BucketUse, DurationBucket, Glance, HourRuns};

/// How often the charts are read again while shown: each reading lists the buckets' objects, so
/// not at every job change.
const REFRESH: std::time::Duration = std::time::Duration::from_secs(60);

#[component]
pub fn GlancePanel(#[prop(optional)] service: Option<String>) -> impl IntoView {
    let tick = RwSignal::new(0u64);
    #[cfg(feature = "hydrate")]
    if let Ok(interval) = set_interval_with_handle(move || tick.update(|t| *t += 1), REFRESH) {
        on_cleanup(move || interval.clear());
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = REFRESH;
    let glance = Resource::new(move || tick.get(), move |_| job_glance(service.clone()));
    view! {
        <Transition fallback=|| ()>
            {move || glance.get().and_then(Result::ok).map(|glance| view! { <Charts glance /> })}
        </Transition>
    }
}

#[component]
fn Charts(glance: Glance) -> impl IntoView {
    let (succeeded, failed) = (glance.succeeded(), glance.failed());
    let longest = longest_bound(&glance.durations);
    let percentiles = [50u8, 90, 99]
        .into_iter()
        .filter_map(|p| Some((p, glance.percentile(p)?)))
        .map(|(p, bound)| match bound {
            Some(ms) => format!("p{p} ≤ {}", duration_text(ms)),
            None => format!("p{p} > {}", duration_text(longest)),
        })
        .collect::<Vec<_>>()
        .join(" · ");
    view! {
        <section class="panel glance" data-testid="glance" aria-labelledby="glance-title">
            <h2 id="glance-title">"Last 24 hours"</h2>
            <div class="glance-grid">
                <RunsPerHour hours=glance.hours succeeded failed />
                <SuccessRate succeeded failed />
                <Durations buckets=glance.durations percentiles />
                <Storage buckets=glance.storage />
            </div>
        </section>
    }
}

const CHART_HEIGHT: f64 = 60.0;

/// One bar of a [`StackedBars`] chart.
pub struct StackedBar {
    /// What the bar counts, shown on hover.
    pub label: String,
    pub succeeded: i64,
    pub failed: i64,
}

/// Runs over time, succeeded and failed stacked, scaled to the tallest bar.
#[component]
pub fn StackedBars(bars: Vec<StackedBar>, summary: String) -> impl IntoView {
    const BAR: f64 = 8.0;
    const GAP: f64 = 2.0;
    let most = bars
        .iter()
        .map(|b| b.succeeded + b.failed)
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let width = bars.len() as f64 * (BAR + GAP);
    let bars = bars
        .into_iter()
        .enumerate()
        .map(|(i, bar)| {
            let x = i as f64 * (BAR + GAP);
            let ok = bar.succeeded as f64 / most * CHART_HEIGHT;
            let bad = bar.failed as f64 / most * CHART_HEIGHT;
            view! {
                <g data-runs=bar.succeeded + bar.failed data-succeeded=bar.succeeded data-failed=bar.failed>
                    <title>{bar.label}</title>
                    <rect class="bar-free" x=x y=0 width=BAR height=CHART_HEIGHT />
                    <rect class="bar-ok" x=x y=CHART_HEIGHT - ok width=BAR height=ok />
                    <rect class="bar-failed" x=x y=CHART_HEIGHT - ok - bad width=BAR height=bad />
                </g>
            }
        })
        .collect_view();
    view! {
        <svg class="bars" viewBox=format!("0 0 {width} {CHART_HEIGHT}") role="img" aria-label=summary
            preserveAspectRatio="none">{bars}</svg>
    }
}

/// Runs that ended each hour, succeeded and failed stacked.
#[component]
fn RunsPerHour(hours: Vec<HourRuns>, succeeded: i64, failed: i64) -> impl IntoView {
    let summary = format!(
        "{} runs: {succeeded} succeeded, {failed} failed",
        succeeded + failed
    );
    let bars = hours
        .into_iter()
        .map(|hour| {
            let c = hour.start.civil();
            StackedBar {
                label: format!(
                    "{:02}:00–{:02}:59 UTC: {} succeeded, {} failed",
                    c.hour, c.hour, hour.succeeded, hour.failed
                ),
                succeeded: hour.succeeded,
                failed: hour.failed,
            }
        })
        .collect();
    view! {
        <figure data-testid="runs-per-hour">
            <StackedBars bars summary=summary.clone() />
            <div class="axis muted"><span>"23 h before this hour"</span><span>"this hour"</span></div>
            <figcaption>"Runs per hour: " {summary}</figcaption>
        </figure>
    }
}

/// The share of runs that succeeded, as a ring.
#[component]
fn SuccessRate(succeeded: i64, failed: i64) -> impl IntoView {
    const RADIUS: f64 = 26.0;
    let circumference = 2.0 * std::f64::consts::PI * RADIUS;
    let total = succeeded + failed;
    let (rate, text) = match total {
        0 => (0.0, "–".to_string()),
        _ => {
            let rate = succeeded as f64 / total as f64;
            (rate, format!("{:.0}%", (rate * 100.0).floor()))
        }
    };
    let caption = match total {
        0 => "Success rate: no runs ended".to_string(),
        _ => format!("Success rate: {succeeded} of {total} runs"),
    };
    let filled = format!("{} {circumference}", rate * circumference);
    view! {
        <figure data-testid="success-rate">
            <svg viewBox="0 0 64 64" role="img" aria-label=caption.clone() class="ring">
                <circle class="ring-track" cx="32" cy="32" r=RADIUS />
                <circle class="ring-ok" cx="32" cy="32" r=RADIUS stroke-dasharray=filled transform="rotate(-90 32 32)" />
                <text x="32" y="37" text-anchor="middle">{text}</text>
            </svg>
            <figcaption>{caption}</figcaption>
        </figure>
    }
}

/// The histogram's last bound: longer runs are counted past it.
fn longest_bound(buckets: &[DurationBucket]) -> i64 {
    buckets
        .iter()
        .filter_map(|b| b.at_most_ms)
        .max()
        .unwrap_or_default()
}

/// How long runs took, as a histogram, with the percentiles it places.
#[component]
fn Durations(buckets: Vec<DurationBucket>, percentiles: String) -> impl IntoView {
    let shortest = buckets
        .first()
        .and_then(|b| b.at_most_ms)
        .unwrap_or_default();
    let axis = (
        format!("≤ {}", duration_text(shortest)),
        format!("> {}", duration_text(longest_bound(&buckets))),
    );
    let caption = match percentiles.is_empty() {
        true => "Duration: no runs ended".to_string(),
        false => format!("Duration: {percentiles}"),
    };
    // One bar a bucket: every run in it counts as succeeded, so it draws in one colour.
    let bars = buckets
        .into_iter()
        .map(|bucket| StackedBar {
            label: match bucket.at_most_ms {
                Some(ms) => format!("{} runs took at most {}", bucket.runs, duration_text(ms)),
                None => format!("{} runs took longer", bucket.runs),
            },
            succeeded: bucket.runs,
            failed: 0,
        })
        .collect();
    view! {
        <figure data-testid="durations">
            <StackedBars bars summary=caption.clone() />
            <div class="axis muted"><span>{axis.0}</span><span>{axis.1}</span></div>
            <figcaption>{caption}</figcaption>
        </figure>
    }
}

/// Buckets shown by name; the rest are added up.
const BUCKETS_SHOWN: usize = 6;

/// The space each bucket uses, as bars relative to the largest.
#[component]
fn Storage(buckets: Vec<BucketUse>) -> impl IntoView {
    let largest = buckets.first().map_or(0, |b| b.bytes).max(1) as f64;
    let total: i64 = buckets.iter().map(|b| b.bytes).sum();
    let rest = buckets.len().saturating_sub(BUCKETS_SHOWN);
    let caption = format!(
        "Storage: {} in {} bucket(s){}",
        human_size(total),
        buckets.len(),
        if rest > 0 {
            format!(", {rest} smaller not shown")
        } else {
            String::new()
        }
    );
    view! {
        <figure data-testid="storage">
            <ul class="hbars">
                {buckets.into_iter().take(BUCKETS_SHOWN).map(|b| {
                    let width = format!("width: {:.1}%", b.bytes as f64 / largest * 100.0);
                    view! {
                        <li data-bucket=b.bucket.clone()>
                            <span class="hbar-label">{b.bucket.clone()}</span>
                            <span class="hbar"><span class="hbar-fill" style=width></span></span>
                            <span class="muted">{format!("{} · {} object(s)", human_size(b.bytes), b.objects)}</span>
                        </li>
                    }
                }).collect_view()}
            </ul>
            <figcaption>{caption}</figcaption>
        </figure>
    }
}

/// `250 ms`, `2.5 s`, `5 min`, `1 h`.
fn duration_text(ms: i64) -> String {
    match ms {
        ms if ms < 1_000 => format!("{ms} ms"),
        ms if ms < 60_000 => format!("{} s", ms as f64 / 1000.0),
        ms if ms < 3_600_000 => format!("{} min", ms / 60_000),
        ms => format!("{} h", ms / 3_600_000),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_in_their_unit() {
        assert_eq!(duration_text(250), "250 ms");
        assert_eq!(duration_text(2_500), "2.5 s");
        assert_eq!(duration_text(30_000), "30 s");
        assert_eq!(duration_text(300_000), "5 min");
        assert_eq!(duration_text(3_600_000), "1 h");
    }
}
