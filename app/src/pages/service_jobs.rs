//! The service page's live parts: the jobs table (pushed updates, state filter, delete,
//! retry), the log viewer (follow, download) and the invoke panel.

use base64::Engine;
use leptos::prelude::*;

use super::widgets::{ErrorPanel, format_duration, format_time};
use crate::api::jobs::{DeleteJobs, Job, JobState, RetryJob, RunResult, RunService, list_jobs};

#[component]
pub fn ServiceJobs(name: String) -> impl IntoView {
    let filter = RwSignal::new(None::<JobState>);
    // Bumped when the server reports a change: the table reloads.
    let version = RwSignal::new(0u64);
    let selected = RwSignal::new(None::<String>);
    let jobs = {
        let name = name.clone();
        Resource::new(
            move || (name.clone(), filter.get(), version.get()),
            |(service, state, _)| list_jobs(service, state),
        )
    };
    let delete = ServerAction::<DeleteJobs>::new();
    let retry = ServerAction::<RetryJob>::new();
    #[cfg(feature = "hydrate")]
    listen_for_changes(
        format!("/api/live/jobs/{}", model::url::percent_encode(&name, b"")),
        version,
    );
    // A pull reports no job changes: the table asks again each second while one runs.
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        if jobs
            .get()
            .is_some_and(|list| list.is_ok_and(|l| l.pulling.is_some()))
        {
            set_timeout(
                move || version.update(|v| *v += 1),
                std::time::Duration::from_secs(1),
            );
        }
    });

    let service = name.clone();
    let table = move || {
        jobs.get().map(|result| match result {
            Err(error) => view! { <ErrorPanel error /> }.into_any(),
            Ok(list) => {
                let total: i64 = list.counts.iter().map(|(_, n)| n).sum();
                let finished: Vec<String> = list
                    .jobs
                    .iter()
                    .filter(|j| j.state.is_final())
                    .map(|j| j.name.clone())
                    .collect();
                let service = service.clone();
                let delete_finished = {
                    let service = service.clone();
                    move |_| {
                        delete.dispatch(DeleteJobs { service: service.clone(), jobs: finished.clone() });
                    }
                };
                let pulling = list.pulling.map(|percent| view! {
                    <p class="notice" role="status" data-testid="image-pull">
                        {format!("Pulling the service's image ({percent} %); its jobs start when it is here.")}
                    </p>
                });
                view! {
                    {pulling}
                    <div class="filters" role="group" aria-label="Filter by state">
                        <button type="button" aria-pressed=move || filter.get().is_none().to_string()
                            on:click=move |_| filter.set(None)>
                            "All " <span class="count">{total}</span>
                        </button>
                        {JobState::ALL.into_iter().map(|state| {
                            let count = list.counts.iter().find(|(s, _)| *s == state).map_or(0, |(_, n)| *n);
                            view! {
                                <button type="button" data-state=state.as_str()
                                    aria-pressed=move || (filter.get() == Some(state)).to_string()
                                    on:click=move |_| filter.set(Some(state))>
                                    {state.label()} " " <span class="count">{count}</span>
                                </button>
                            }
                        }).collect_view()}
                        <button type="button" class="small" on:click=delete_finished
                            title="Delete the finished jobs listed here, with their logs">
                            "Delete finished"
                        </button>
                    </div>
                    {if list.jobs.is_empty() {
                        view! {
                            <p class="muted" data-testid="no-jobs">
                                "No jobs yet. Upload a file to an input folder, or use Invoke below."
                            </p>
                        }.into_any()
                    } else {
                        view! {
                            <table class="table jobs" data-testid="jobs-table">
                                <thead><tr>
                                    <th>"Job"</th><th>"State"</th><th>"Trigger"</th><th>"Input"</th>
                                    <th>"Created"</th><th>"Duration"</th><th>"Exit"</th><th></th>
                                </tr></thead>
                                <tbody>
                                    {list.jobs.into_iter().map(|job| view! {
                                        <JobRow job service=service.clone() selected delete retry />
                                    }).collect_view()}
                                </tbody>
                            </table>
                        }.into_any()
                    }}
                }
                .into_any()
            }
        })
    };
    view! {
        <section class="panel detail" data-testid="jobs">
            <h2>"Jobs"</h2>
            <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>{table}</Transition>
            {move || delete.value().get().and_then(Result::err).map(|error| view! { <ErrorPanel error /> })}
            {move || retry.value().get().and_then(Result::err).map(|error| view! { <ErrorPanel error /> })}
            {move || selected.get().map(|job| view! { <JobLog service=name.clone() job selected /> })}
        </section>
    }
    .into_any()
}

#[component]
fn JobRow(
    job: Job,
    service: String,
    selected: RwSignal<Option<String>>,
    delete: ServerAction<DeleteJobs>,
    retry: ServerAction<RetryJob>,
) -> impl IntoView {
    let name = job.name.clone();
    let show = {
        let name = name.clone();
        move |_| selected.set(Some(name.clone()))
    };
    let actions = {
        let (service, name) = (service.clone(), name.clone());
        match job.state {
            JobState::DeadLettered => view! {
                <button type="button" class="small" on:click=move |_| {
                    retry.dispatch(RetryJob { service: service.clone(), job: name.clone() });
                }>"Retry"</button>
            }
            .into_any(),
            JobState::Running => ().into_any(),
            _ => view! {
                <button type="button" class="small" title="Delete this job and its log" on:click=move |_| {
                    delete.dispatch(DeleteJobs { service: service.clone(), jobs: vec![name.clone()] });
                }>"Delete"</button>
            }
            .into_any(),
        }
    };
    view! {
        <tr data-job=name.clone() data-state=job.state.as_str()>
            <td><button type="button" class="link mono" on:click=show title="Show the log">{name.clone()}</button></td>
            <JobCells job=job.clone() />
            <td>{actions}</td>
        </tr>
        {job.reason.map(|reason| view! {
            <tr class="reason"><td colspan="8" class="muted">{reason}</td></tr>
        })}
    }
}

/// The cells every jobs table shows: state (reason on hover), trigger, input (outputs on
/// hover), created, duration, exit code.
#[component]
pub(super) fn JobCells(job: Job) -> impl IntoView {
    let duration = match (job.started_at, job.finished_at) {
        (Some(start), Some(end)) => format_duration(end - start),
        _ => String::new(),
    };
    view! {
        <td>
            <span class=format!("state state-{}", job.state.as_str()) title=job.reason.unwrap_or_default()>
                {job.state.label()}
            </span>
        </td>
        <td>{job.trigger.as_str()}</td>
        <td class="mono" title=job.outputs.join("\n")>{job.input.unwrap_or_default()}</td>
        <td>{format_time(job.created_at)}</td>
        <td>{duration}</td>
        <td>{job.exit_code.map(|c| c.to_string()).unwrap_or_default()}</td>
    }
}

/// Bumps `version` (so tables reload) when the job-change stream at `url` reports something,
/// at most a few times a second.
#[cfg(feature = "hydrate")]
pub(super) fn listen_for_changes(url: String, version: RwSignal<u64>) {
    use std::cell::Cell;
    use std::rc::Rc;
    use std::time::Duration;

    let scheduled = Rc::new(Cell::new(false));
    let on_change = Box::new(move |_: String| {
        if scheduled.replace(true) {
            return;
        }
        let scheduled = scheduled.clone();
        set_timeout(
            move || {
                scheduled.set(false);
                version.update(|v| *v += 1);
            },
            Duration::from_millis(250),
        );
    });
    if let Some(source) = super::widgets::LiveSource::open(&url, vec![("job", on_change)]) {
        source.close_on_cleanup();
    }
}

/// A job's log, streamed while it grows; follow mode keeps the end in view.
#[component]
fn JobLog(service: String, job: String, selected: RwSignal<Option<String>>) -> impl IntoView {
    let text = RwSignal::new(String::new());
    let ended = RwSignal::new(false);
    let follow = RwSignal::new(true);
    let log_ref = NodeRef::<leptos::html::Pre>::new();
    let path = format!(
        "{}/{}",
        model::url::percent_encode(&service, b""),
        model::url::percent_encode(&job, b"")
    );
    #[cfg(feature = "hydrate")]
    {
        let on_log = Box::new(move |part: String| text.update(|t| t.push_str(&part)));
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
            text.track();
            if let (true, Some(pre)) = (follow.get(), log_ref.get()) {
                pre.set_scroll_top(pre.scroll_height());
            }
        });
    }
    let download = format!("/api/download/log/{path}");
    view! {
        <div class="log-viewer" data-testid="log-viewer">
            <div class="log-toolbar">
                <strong class="mono">{job.clone()}</strong>
                <span class="muted" data-testid="log-status">
                    {move || if ended.get() { "finished" } else { "live" }}
                </span>
                <label class="check">
                    <input type="checkbox" prop:checked=follow on:change=move |ev| follow.set(event_target_checked(&ev)) />
                    "Follow"
                </label>
                <a class="button" href=download download=format!("{job}.log")>"Download log"</a>
                <button type="button" class="small" on:click=move |_| selected.set(None)>"Close"</button>
            </div>
            <pre class="log" node_ref=log_ref data-testid="log">{move || text.get()}</pre>
        </div>
    }
}

/// Runs the service at once on typed text or a chosen file, and shows what came back.
#[component]
pub fn InvokePanel(name: String) -> impl IntoView {
    let payload = RwSignal::new(String::new());
    let file_name = RwSignal::new(None::<String>);
    let run = ServerAction::<RunService>::new();
    let submit = {
        let name = name.clone();
        move |_| {
            run.dispatch(RunService {
                service: name.clone(),
                payload: payload.get_untracked(),
            });
        }
    };
    let on_file = move |ev: leptos::ev::Event| {
        #[cfg(feature = "hydrate")]
        {
            use wasm_bindgen::JsCast;
            let Some(file) = ev
                .target()
                .and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok())
                .and_then(|input| input.files())
                .and_then(|files| files.get(0))
            else {
                return;
            };
            file_name.set(Some(file.name()));
            leptos::task::spawn_local(async move {
                if let Ok(buffer) = wasm_bindgen_futures::JsFuture::from(file.array_buffer()).await
                {
                    let bytes = js_sys::Uint8Array::new(&buffer).to_vec();
                    payload.set(base64::engine::general_purpose::STANDARD.encode(bytes));
                }
            });
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = ev;
    };
    view! {
        <section class="panel detail" data-testid="invoke">
            <h2>"Run now"</h2>
            <p class="muted">
                "Runs the script once on this input and shows the result (like POST /run). "
                "Text is passed as typed (JSON as is, anything else is read as base64); a file is sent base64-encoded. "
                "With the local executor (embedded mode) jobs run on this machine with its own tools and the service image is not used; with the Kubernetes executor they run in the image (Info shows which)."
            </p>
            <label>
                "Input"
                <textarea name="payload" class="code" rows="4" spellcheck="false" prop:value=payload
                    on:input=move |ev| { file_name.set(None); payload.set(event_target_value(&ev)); }></textarea>
            </label>
            <div class="row">
                <label class="file">"…or a file" <input type="file" name="file" on:change=on_file /></label>
                {move || file_name.get().map(|f| view! { <span class="muted">{f} " (base64)"</span> })}
                <button type="button" class="primary" on:click=submit disabled=move || run.pending().get()>
                    {move || if run.pending().get() { "Running…" } else { "Run" }}
                </button>
            </div>
            {move || run.value().get().map(|result| match result {
                Err(error) => view! { <ErrorPanel error /> }.into_any(),
                Ok(result) => view! { <RunOutcome result /> }.into_any(),
            })}
        </section>
    }
    .into_any()
}

#[component]
fn RunOutcome(result: RunResult) -> impl IntoView {
    let job = result.job;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(result.response.trim())
        .ok()
        .filter(|bytes| !bytes.is_empty());
    let body = match decoded {
        Some(bytes) => match image_type(&bytes) {
            Some(mime) => {
                let src = format!("data:{mime};base64,{}", result.response.trim());
                view! {
                    <img class="result-image" data-testid="run-image" src=src.clone() alt="Output image" />
                    <a class="button" href=src download="output">"Download"</a>
                }
                .into_any()
            }
            None => match String::from_utf8(bytes) {
                Ok(text) => {
                    view! { <pre class="script" data-testid="run-output">{text}</pre> }.into_any()
                }
                Err(_) => {
                    let href = format!(
                        "data:application/octet-stream;base64,{}",
                        result.response.trim()
                    );
                    view! { <a class="button" href=href download="output.zip">"Download the output"</a> }.into_any()
                }
            },
        },
        None => view! { <pre class="script" data-testid="run-output">{result.response}</pre> }
            .into_any(),
    };
    let ok = job.state == JobState::Succeeded;
    view! {
        <div class=if ok { "panel success" } else { "panel error" } role="status" data-testid="run-result">
            <p>
                <strong>{job.state.label()}</strong> " " <span class="mono">{job.name.clone()}</span>
                {job.exit_code.filter(|c| *c != 0).map(|c| format!(" (exit code {c})"))}
            </p>
            {job.reason.map(|r| view! { <p>{r}</p> })}
            {ok.then_some(body)}
        </div>
    }
}

/// The image type of some bytes, by their magic number.
fn image_type(bytes: &[u8]) -> Option<&'static str> {
    match bytes {
        [0x89, b'P', b'N', b'G', ..] => Some("image/png"),
        [0xFF, 0xD8, 0xFF, ..] => Some("image/jpeg"),
        [b'G', b'I', b'F', b'8', ..] => Some("image/gif"),
        [
            b'R',
            b'I',
            b'F',
            b'F',
            _,
            _,
            _,
            _,
            b'W',
            b'E',
            b'B',
            b'P',
            ..,
        ] => Some("image/webp"),
        _ => None,
    }
}
