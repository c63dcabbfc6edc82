use leptos::prelude::*;
use leptos_router::components::A;
use model::Timestamp;

use super::glance::{StackedBar, StackedBars};
use super::job::job_href;
use super::service_jobs::JobCells;
use super::widgets::{EmptyState, ErrorPanel, PageHeader, Pager};
use crate::api::jobs::{JobState, job_activity, recent_jobs};
use model::usage::DailyUsage;

/// Windows the Jobs page can limit creation times to: (label, seconds back).
const WINDOWS: [(&str, u64); 3] = [
    ("Last hour", 3600),
    ("Last 24 hours", 86_400),
    ("Last 7 days", 7 * 86_400),
];

/// The jobs of every service the caller may see, newest first, a page at a time, filtered by
/// service, state and creation time, updated live; each links to its page.
#[component]
pub fn JobsPage() -> impl IntoView {
    let version = RwSignal::new(0u64);
    let service = RwSignal::new(String::new());
    let state = RwSignal::new(None::<JobState>);
    let since = RwSignal::new(None::<Timestamp>);
    // Where each page shown starts: empty for the newest, then the `next` of each page.
    let pages = RwSignal::new(Vec::<String>::new());
    let jobs = Resource::new(
        move || {
            let after = pages.read().last().cloned();
            (
                service.get(),
                state.get(),
                since.get(),
                after,
                version.get(),
            )
        },
        |(service, state, since, after, _)| recent_jobs(Some(service), state, since, after),
    );
    #[cfg(feature = "hydrate")]
    super::widgets::listen_for_changes("/api/live/jobs".into(), "job", version);
    let filtered =
        move || !service.read().is_empty() || state.get().is_some() || since.get().is_some();
    let table = move || {
        jobs.get().map(|result| match result {
            Err(error) => view! { <ErrorPanel error /> }.into_any(),
            Ok(page) if page.jobs.is_empty() && !filtered() && pages.read().is_empty() => view! {
                <EmptyState title="No jobs yet">
                    "Each file uploaded to a service's input folder starts a job; its status and log appear here and on the service's page."
                </EmptyState>
            }
            .into_any(),
            Ok(page) if page.jobs.is_empty() => view! {
                <p class="muted" data-testid="no-matching-jobs">"No jobs match these filters."</p>
            }
            .into_any(),
            Ok(page) => view! {
                <section class="panel">
                    <table class="table jobs" data-testid="all-jobs">
                        <thead><tr>
                            <th>"Service"</th><th>"Job"</th><th>"State"</th><th>"Trigger"</th><th>"Input"</th>
                            <th>"Created"</th><th>"Duration"</th><th>"Exit"</th>
                        </tr></thead>
                        <tbody>
                            {page.jobs.into_iter().map(|job| {
                                let service = job.service.clone();
                                let service_href = format!("/services/{}", model::url::percent_encode(&service, b""));
                                let href = job_href(&service, &job.name);
                                let name = job.name.clone();
                                view! {
                                    <tr data-job=job.name.clone() data-state=job.state.as_str()>
                                        <td><A href=service_href>{service}</A></td>
                                        <td><A href=href attr:class="mono">{name}</A></td>
                                        <JobCells job=job.clone() />
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                    <Pager pages next=page.next />
                </section>
            }
            .into_any(),
        })
    };
    view! {
        <PageHeader title="Jobs" />
        <Activity version />
        <div class="filters" role="group" aria-label="Filter jobs">
            <label>
                "Service "
                <input type="search" placeholder="Any service" prop:value=service
                    on:change=move |ev| {
                        service.set(event_target_value(&ev).trim().to_string());
                        pages.set(Vec::new());
                    } />
            </label>
            <label>
                "State "
                <select on:change=move |ev| {
                    state.set(JobState::parse(&event_target_value(&ev)));
                    pages.set(Vec::new());
                }>
                    <option value="">"Any state"</option>
                    {JobState::ALL.into_iter().map(|s| view! { <option value=s.as_str()>{s.label()}</option> }).collect_view()}
                </select>
            </label>
            <label>
                "Created "
                <select on:change=move |ev| {
                    let seconds: Option<u64> = event_target_value(&ev).parse().ok();
                    since.set(seconds.map(window_start));
                    pages.set(Vec::new());
                }>
                    <option value="">"Any time"</option>
                    {WINDOWS.into_iter().map(|(label, seconds)| view! { <option value=seconds.to_string()>{label}</option> }).collect_view()}
                </select>
            </label>
        </div>
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>{table}</Transition>
    }
}

/// Runs per day over two weeks, succeeded and failed stacked, with what they used: the same
/// figures as `/system/metrics`. Follows job changes like the table.
#[component]
fn Activity(version: RwSignal<u64>) -> impl IntoView {
    let days = Resource::new(move || version.get(), |_| job_activity());
    view! {
        <Transition fallback=|| ()>
            {move || days.get().and_then(Result::ok).map(|days| view! { <ActivityChart days /> })}
        </Transition>
    }
}

#[component]
fn ActivityChart(days: Vec<DailyUsage>) -> impl IntoView {
    let runs: i64 = days.iter().map(|d| d.runs.executions_count).sum();
    let failed: i64 = days.iter().map(|d| d.runs.executions_failed).sum();
    let cpu_hours: f64 = days.iter().map(|d| d.runs.cpu_seconds).sum::<f64>() / 3600.0;
    let memory_hours: f64 = days.iter().map(|d| d.runs.memory_gib_seconds).sum::<f64>() / 3600.0;
    let summary = format!(
        "{runs} runs in {} days, {failed} failed; {cpu_hours:.2} CPU-hours and {memory_hours:.2} GiB-hours of memory asked for",
        days.len()
    );
    let bars = days
        .into_iter()
        .map(|day| StackedBar {
            label: format!(
                "{}: {} runs, {} succeeded, {} failed",
                day.day,
                day.runs.executions_count,
                day.runs.executions_succeeded,
                day.runs.executions_failed
            ),
            succeeded: day.runs.executions_succeeded,
            failed: day.runs.executions_failed,
        })
        .collect();
    view! {
        <section class="panel activity" aria-labelledby="activity-title" data-testid="activity">
            <h2 id="activity-title">"Activity, last 14 days"</h2>
            <StackedBars bars summary=summary.clone() />
            <p class="muted">{summary}</p>
        </section>
    }
}

/// The start of a window reaching `seconds` back from the reader's clock (only the browser
/// changes a filter).
fn window_start(seconds: u64) -> Timestamp {
    #[cfg(feature = "hydrate")]
    let now = Timestamp::from_millis(js_sys::Date::now() as i64);
    #[cfg(not(feature = "hydrate"))]
    let now = Timestamp::now();
    now - std::time::Duration::from_secs(seconds)
}
