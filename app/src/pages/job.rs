//! One job's page (`/services/{service}/jobs/{job}`): what happened to it (state, times,
//! attempts, exit code, reason, input and outputs as links), Retry, Run again or Delete, and
//! its log
//! (streamed while it grows; search, wrap, times, stderr marked, jump to the first error).

use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::{use_navigate, use_params_map};
use model::Timestamp;
use model::function::log::Stream;
use model::jobs::LogLine;
use model::url::percent_encode;

use super::bucket::folder_href;
use super::widgets::{ConfirmDialog, ErrorPanel, LocalTime, PageHeader, format_duration, loaded};
use crate::api::jobs::{DeleteJobs, Job, JobState, RerunJob, RetryJob, StopJob, get_job};
use model::jobs::Trigger;

/// Where a job's page is.
pub(super) fn job_href(service: &str, job: &str) -> String {
    format!(
        "/services/{}/jobs/{}",
        percent_encode(service, b""),
        percent_encode(job, b"")
    )
}

/// A `bucket/key` object as a link to its folder in the bucket browser.
#[component]
fn ObjectLink(object: String) -> impl IntoView {
    // `webdav.x:folder/file`: written to another provider, which the bucket browser does not
    // show.
    if object
        .split('/')
        .next()
        .is_some_and(|first| first.contains(':'))
    {
        return view! { <span class="mono">{object}</span> }.into_any();
    }
    let (bucket, key) = object.split_once('/').unwrap_or((&object, ""));
    let folder = key.rsplit_once('/').map_or("", |(folder, _)| folder);
    let prefix = if folder.is_empty() {
        String::new()
    } else {
        format!("{folder}/")
    };
    let href = folder_href(bucket, &prefix);
    view! { <A href=href attr:class="mono">{object}</A> }.into_any()
}

#[component]
pub fn JobPage() -> impl IntoView {
    let params = use_params_map();
    // Another job on the same route (Run again) is a new page: its own log stream.
    let route = Memo::new(move |_| {
        let params = params.read();
        (
            params.get("name").unwrap_or_default(),
            params.get("job").unwrap_or_default(),
        )
    });
    // Type-erased, like the other pages' parts: nested as one type, the page overflowed
    // rustc's depth limit computing its layout in the release build.
    move || {
        let (service, job) = route.get();
        view! { <JobView service job /> }.into_any()
    }
}

#[component]
fn JobView(service: String, job: String) -> impl IntoView {
    // Bumped when the service's jobs change: the facts reload.
    let version = RwSignal::new(0u64);
    let record = {
        let (service, job) = (service.clone(), job.clone());
        Resource::new(
            move || version.get(),
            move |_| get_job(service.clone(), job.clone()),
        )
    };
    #[cfg(feature = "hydrate")]
    super::widgets::listen_for_changes(
        format!("/api/live/jobs/{}", percent_encode(&service, b"")),
        "job",
        version,
    );
    let service_href = format!("/services/{}", percent_encode(&service, b""));
    let service_label = service.clone();
    view! {
        <nav class="breadcrumbs" aria-label="Breadcrumb">
            <A href="/services">"Services"</A>" › "
            <A href=service_href>{service_label}</A>" › "
            <span aria-current="page" class="mono">{job.clone()}</span>
        </nav>
        <PageHeader title=format!("Job {job}") />
        {loaded(record, |job| view! { <JobFacts job /> }.into_any())}
        <JobLog service job />
    }
    .into_any()
}

/// The job's record and what can be done with it.
#[component]
fn JobFacts(job: Job) -> impl IntoView {
    let retry = ServerAction::<RetryJob>::new();
    let rerun = ServerAction::<RerunJob>::new();
    let delete = ServerAction::<DeleteJobs>::new();
    let stop = ServerAction::<StopJob>::new();
    let confirming = RwSignal::new(false);
    let confirming_stop = RwSignal::new(false);
    let navigate = use_navigate();
    let service_href = format!("/services/{}", percent_encode(&job.service, b""));
    // Deleted: back to the service, whose table no longer has it. Run again: to the new job.
    {
        let (service_href, service) = (service_href.clone(), job.service.clone());
        Effect::new(move |_| {
            if delete.value().get().is_some_and(|done| done.is_ok()) {
                navigate(&service_href, Default::default());
            }
            if let Some(Ok(again)) = rerun.value().get() {
                navigate(&job_href(&service, &again), Default::default());
            }
        });
    }
    let (service, name) = (job.service.clone(), job.name.clone());
    fn said(name: &str, verb: &'static str, done: impl Fn() -> bool + 'static) {
        let message = format!("Job {name} {verb}");
        super::widgets::toast_when(move || done().then(|| message.clone()));
    }
    said(&name, "stopped", move || {
        matches!(stop.value().get(), Some(Ok(())))
    });
    said(&name, "deleted", move || {
        matches!(delete.value().get(), Some(Ok(_)))
    });
    said(&name, "queued again", move || {
        matches!(retry.value().get(), Some(Ok(())))
    });
    let question = format!("Delete job {name} and its log?");
    let service_name = job.service.clone();
    let actions = match job.state {
        JobState::DeadLettered => {
            let (service, name) = (service.clone(), name.clone());
            view! {
                <button type="button" on:click=move |_| {
                    retry.dispatch(RetryJob { service: service.clone(), job: name.clone() });
                }>"Retry"</button>
            }
            .into_any()
        }
        state if state.is_final() => {
            let again = (job.trigger != Trigger::Sync).then(|| {
                let (service, name) = (service.clone(), name.clone());
                view! {
                    <button type="button" disabled=move || rerun.pending().get() on:click=move |_| {
                        rerun.dispatch(RerunJob { service: service.clone(), job: name.clone() });
                    }>"Run again"</button>
                }
            });
            view! {
                {again}
                <button type="button" class="danger" on:click=move |_| confirming.set(true)>"Delete"</button>
            }
            .into_any()
        }
        // Pending or running.
        _ => view! {
            <button type="button" class="danger" on:click=move |_| confirming_stop.set(true)>"Stop"</button>
        }
        .into_any(),
    };
    let stop_question = if job.state == JobState::Running {
        format!("Stop job {name}? Its script is ended now; its outputs are not uploaded.")
    } else {
        format!("Stop job {name}? It will not run.")
    };
    let stop_target = (service.clone(), name.clone());
    let when = |at: Option<Timestamp>| at.map(|at| view! { <LocalTime at /> });
    view! {
        <section class="panel detail" data-testid="job-facts" data-state=job.state.as_str()>
            <div class="page-header">
                <h2>
                    <span class=format!("state state-{}", job.state.as_str()) data-testid="job-state">
                        {job.state.label()}
                    </span>
                </h2>
                <div class="page-actions">{actions}</div>
            </div>
            <dl class="facts">
                <dt>"Service"</dt>
                <dd><A href=service_href>{service_name}</A></dd>
                <dt>"Trigger"</dt><dd>{job.trigger.as_str()}</dd>
                <dt>"Attempts"</dt><dd>{job.attempts}</dd>
                <dt>"Created"</dt><dd><LocalTime at=job.created_at /></dd>
                <dt>"Started"</dt><dd>{when(job.started_at)}</dd>
                <dt>"Finished"</dt><dd>{when(job.finished_at)}</dd>
                <dt>"Duration"</dt><dd data-testid="job-duration"><Elapsed job=job.clone() /></dd>
                <dt>"Exit code"</dt><dd data-testid="job-exit">{job.exit_code.map(|c| c.to_string())}</dd>
                {job.reason.clone().map(|reason| view! {
                    <dt>"Reason"</dt><dd data-testid="job-reason">{reason}</dd>
                })}
                {job.delegated_to.clone().map(|member| {
                    // Set on a pending job while it is being offered to that member.
                    let label = if job.state == JobState::Delegated { "Runs on" } else { "Offered to" };
                    view! {
                        <dt>{label}</dt>
                        <dd data-testid="job-delegated-to">
                            {match job.delegated_url.clone() {
                                Some(url) => view! { <a href=url rel="noopener noreferrer" target="_blank">{member}</a> }.into_any(),
                                None => view! { <span>{member}</span> }.into_any(),
                            }}
                        </dd>
                    }
                })}
                {job.delegated_from.clone().map(|origin| view! {
                    <dt>"Handed over by"</dt><dd data-testid="job-delegated-from">{origin}</dd>
                })}
                <dt>"Input"</dt>
                <dd data-testid="job-input">
                    {match job.input.clone() {
                        Some(object) => view! { <ObjectLink object /> }.into_any(),
                        None => view! { <span class="muted">"A payload, no file"</span> }.into_any(),
                    }}
                </dd>
                <dt>"Outputs"</dt>
                <dd data-testid="job-outputs">
                    {if job.outputs.is_empty() {
                        view! { <span class="muted">"None"</span> }.into_any()
                    } else {
                        view! {
                            <ul class="plain">
                                {job.outputs.iter().cloned().map(|object| view! { <li><ObjectLink object /></li> }).collect_view()}
                            </ul>
                        }.into_any()
                    }}
                </dd>
            </dl>
            {move || confirming.get().then(|| {
                let (service, name, question) = (service.clone(), name.clone(), question.clone());
                view! {
                    <ConfirmDialog label="Confirm job deletion" confirm="Delete"
                        pending=delete.pending()
                        on_confirm=move |()| {
                            delete.dispatch(DeleteJobs { service: service.clone(), jobs: vec![name.clone()] });
                        }
                        on_cancel=move |()| confirming.set(false)>
                        <p data-testid="jobs-delete-summary">{question}</p>
                    </ConfirmDialog>
                }
            })}
            {move || confirming_stop.get().then(|| {
                let ((service, name), question) = (stop_target.clone(), stop_question.clone());
                view! {
                    <ConfirmDialog label="Confirm stopping the job" confirm="Stop"
                        pending=stop.pending()
                        on_confirm=move |()| {
                            stop.dispatch(StopJob { service: service.clone(), job: name.clone() });
                            confirming_stop.set(false);
                        }
                        on_cancel=move |()| confirming_stop.set(false)>
                        <p>{question}</p>
                    </ConfirmDialog>
                }
            })}
            {move || stop.value().get().and_then(Result::err).map(|error| view! { <ErrorPanel error /> })}
            {move || retry.value().get().and_then(Result::err).map(|error| view! { <ErrorPanel error /> })}
            {move || rerun.value().get().and_then(Result::err).map(|error| view! { <ErrorPanel error /> })}
            {move || delete.value().get().and_then(Result::err).map(|error| view! { <ErrorPanel error /> })}
        </section>
    }
    .into_any()
}

/// How long the job ran, or, while it runs, how long it has been running (counted in the
/// browser each second).
#[component]
fn Elapsed(job: Job) -> impl IntoView {
    match (job.started_at, job.finished_at) {
        (Some(start), Some(end)) => format_duration(end.since(start)).into_any(),
        (Some(start), None) => {
            let shown = RwSignal::new(String::new());
            #[cfg(feature = "hydrate")]
            {
                let tick = move || {
                    let now = Timestamp::from_millis(js_sys::Date::now() as i64);
                    shown.set(format!("running for {}", format_duration(now.since(start))));
                };
                tick();
                if let Ok(handle) =
                    set_interval_with_handle(tick, std::time::Duration::from_secs(1))
                {
                    on_cleanup(move || handle.clear());
                }
            }
            #[cfg(not(feature = "hydrate"))]
            let _ = start;
            view! { <span>{shown}</span> }.into_any()
        }
        _ => ().into_any(),
    }
}

/// A job's log, streamed while it grows; follow mode keeps the end in view. Lines the script
/// wrote to stderr are marked; each line's time shows on request; a search shows only the
/// lines with the text.
#[component]
fn JobLog(service: String, job: String) -> impl IntoView {
    // Stored lines (model::jobs::LogLine), as the server streams them.
    let lines = RwSignal::new(Vec::<String>::new());
    let ended = RwSignal::new(false);
    let follow = RwSignal::new(true);
    // Whether any line so far is the script's stderr (for "First error").
    let has_errors = RwSignal::new(false);
    let times = RwSignal::new(false);
    let wrap = RwSignal::new(true);
    let search = RwSignal::new(String::new());
    let log_ref = NodeRef::<leptos::html::Pre>::new();
    let path = format!(
        "{}/{}",
        percent_encode(&service, b""),
        percent_encode(&job, b"")
    );
    #[cfg(feature = "hydrate")]
    {
        let on_log = Box::new(move |part: String| {
            // Only the new lines are looked at: a long log is not read again per part.
            if !has_errors.get_untracked()
                && part
                    .lines()
                    .any(|l| LogLine::parse(l).stream == Stream::Err)
            {
                has_errors.set(true);
            }
            lines.update(|all| all.extend(part.lines().map(str::to_string)));
        });
        let on_end = Box::new(move |_: String| ended.set(true));
        let url = format!("/api/live/log/{path}");
        if let Some(source) =
            super::widgets::LiveSource::open(&url, vec![("log", on_log), ("end", on_end)])
        {
            // The server closes the stream after `end`; the browser must not reconnect then.
            let source = send_wrapper::SendWrapper::new(std::rc::Rc::new(source));
            let on_ended = source.clone();
            Effect::new(move |_| {
                if ended.get() {
                    on_ended.close();
                }
            });
            on_cleanup(move || source.close());
        }
        Effect::new(move |_| {
            lines.track();
            times.track();
            if let (true, Some(pre)) = (follow.get(), log_ref.get()) {
                pre.set_scroll_top(pre.scroll_height());
            }
        });
    }
    let first_error = move |_| {
        follow.set(false);
        #[cfg(feature = "hydrate")]
        {
            let first = log_ref
                .get()
                .and_then(|pre| pre.query_selector(".log-line.stderr").ok().flatten());
            if let Some(line) = first {
                line.scroll_into_view();
            }
        }
    };
    let matching = move || {
        let needle = search.read().to_lowercase();
        if needle.is_empty() {
            return None;
        }
        let all = lines.read();
        let found = all
            .iter()
            .filter(|l| LogLine::parse(l).text.to_lowercase().contains(&needle))
            .count();
        Some(format!("{found} of {} lines", all.len()))
    };
    let download = format!("/api/download/log/{path}");
    view! {
        <section class="log-viewer" data-testid="log-viewer" aria-label="Log">
            <div class="log-toolbar">
                <strong>"Log"</strong>
                <span class="muted" data-testid="log-status">
                    {move || if ended.get() { "finished" } else { "live" }}
                </span>
                <input type="search" placeholder="Search the log" aria-label="Search the log"
                    prop:value=search on:input=move |ev| search.set(event_target_value(&ev)) />
                <span class="muted" data-testid="log-matches">{matching}</span>
                <label class="check">
                    <input type="checkbox" prop:checked=follow on:change=move |ev| follow.set(event_target_checked(&ev)) />
                    "Follow"
                </label>
                <label class="check">
                    <input type="checkbox" prop:checked=times on:change=move |ev| times.set(event_target_checked(&ev)) />
                    "Times"
                </label>
                <label class="check">
                    <input type="checkbox" prop:checked=wrap on:change=move |ev| wrap.set(event_target_checked(&ev)) />
                    "Wrap"
                </label>
                <button type="button" class="small" disabled=move || !has_errors.get() on:click=first_error>
                    "First error"
                </button>
                <a class="button" href=download download=format!("{job}.log")>"Download log"</a>
            </div>
            <pre class="log" class:nowrap=move || !wrap.get() node_ref=log_ref data-testid="log">
                <For
                    each=move || lines.get().into_iter().enumerate()
                    key=|(at, _)| *at
                    children=move |(_, line)| view! { <LogLineView line times search /> }
                />
            </pre>
        </section>
    }
    .into_any()
}

/// One line of a job's log: its time when asked, stderr and the platform's lines marked,
/// hidden when a search leaves it out.
#[component]
fn LogLineView(line: String, times: RwSignal<bool>, search: RwSignal<String>) -> impl IntoView {
    let parsed = LogLine::parse(&line);
    let (time, text) = (parsed.time.to_string(), parsed.text.to_string());
    let (class, source) = match parsed.stream {
        Stream::Out => ("log-line", None),
        Stream::Err => ("log-line stderr", Some("stderr")),
        Stream::Platform => ("log-line platform", Some("the platform")),
    };
    let lower = text.to_lowercase();
    let hidden = move || !lower.contains(&search.read().to_lowercase());
    view! {
        <span class=class class:hidden=hidden title=source>
            <Show when=move || times.get()>
                <span class="log-time">{time.clone()}" "</span>
            </Show>
            {text}"\n"
        </span>
    }
}
