//! The service page's live parts: the jobs table (pushed updates, state filter, pages,
//! delete, retry; each job links to its page) and the invoke panel.

use base64::Engine;
use leptos::prelude::*;

use super::job::job_href;
use super::widgets::{ConfirmDialog, ErrorPanel, LocalTime, Pager, format_duration};
use crate::api::jobs::{DeleteJobs, Job, JobState, RetryJob, RunResult, RunService, list_jobs};
use leptos_router::components::A;

#[component]
pub fn ServiceJobs(name: String) -> impl IntoView {
    let filter = RwSignal::new(None::<JobState>);
    // Bumped when the server reports a change: the table reloads.
    let version = RwSignal::new(0u64);
    // Where each page shown starts: empty for the newest, then the `next` of each page.
    let pages = RwSignal::new(Vec::<String>::new());
    let jobs = {
        let name = name.clone();
        Resource::new(
            move || {
                (
                    name.clone(),
                    filter.get(),
                    pages.read().last().cloned(),
                    version.get(),
                )
            },
            |(service, state, after, _)| list_jobs(service, state, after),
        )
    };
    let show = move |state: Option<JobState>| {
        filter.set(state);
        pages.set(Vec::new());
    };
    let delete = ServerAction::<DeleteJobs>::new();
    let retry = ServerAction::<RetryJob>::new();
    // Jobs a Delete button asked to delete, with the sentence that says what goes.
    let doomed = RwSignal::new(None::<(Vec<String>, String)>);
    #[cfg(feature = "hydrate")]
    super::widgets::listen_for_changes(
        format!("/api/live/jobs/{}", model::url::percent_encode(&name, b"")),
        "job",
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
                let finished: Vec<&Job> = list.jobs.iter().filter(|j| j.state.is_final()).collect();
                let failed = finished.iter().filter(|j| matches!(j.state, JobState::Failed | JobState::DeadLettered)).count();
                let summary = format!(
                    "Delete the {} finished job(s) listed here and their logs: {} succeeded, {failed} failed (their logs say why)?",
                    finished.len(),
                    finished.len() - failed,
                );
                let finished: Vec<String> = finished.iter().map(|j| j.name.clone()).collect();
                let service = service.clone();
                let delete_finished = move |_| doomed.set(Some((finished.clone(), summary.clone())));
                let pulling = list.pulling.map(|percent| view! {
                    <p class="notice" role="status" data-testid="image-pull">
                        {format!("Pulling the service's image ({percent} %); its jobs start when it is here.")}
                    </p>
                });
                view! {
                    {pulling}
                    <div class="filters" role="group" aria-label="Filter by state">
                        <button type="button" aria-pressed=move || filter.get().is_none().to_string()
                            on:click=move |_| show(None)>
                            "All " <span class="count">{total}</span>
                        </button>
                        {JobState::ALL.into_iter().map(|state| {
                            let count = list.counts.iter().find(|(s, _)| *s == state).map_or(0, |(_, n)| *n);
                            view! {
                                <button type="button" data-state=state.as_str()
                                    aria-pressed=move || (filter.get() == Some(state)).to_string()
                                    on:click=move |_| show(Some(state))>
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
                                "No jobs yet. Upload a file to an input folder, or use Run now."
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
                                        <JobRow job service=service.clone() doomed retry />
                                    }).collect_view()}
                                </tbody>
                            </table>
                            <Pager pages next=list.next />
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
            {
                let service = name.clone();
                move || doomed.get().map(|(jobs, what)| {
                    let service = service.clone();
                    view! {
                        <ConfirmDialog label="Confirm job deletion" confirm="Delete"
                            on_confirm=move |()| {
                                delete.dispatch(DeleteJobs { service: service.clone(), jobs: jobs.clone() });
                                doomed.set(None);
                            }
                            on_cancel=move |()| doomed.set(None)>
                            <p data-testid="jobs-delete-summary">{what}</p>
                        </ConfirmDialog>
                    }
                })
            }
            {move || delete.value().get().and_then(Result::err).map(|error| view! { <ErrorPanel error /> })}
            {move || retry.value().get().and_then(Result::err).map(|error| view! { <ErrorPanel error /> })}
        </section>
    }
    .into_any()
}

#[component]
fn JobRow(
    job: Job,
    service: String,
    doomed: RwSignal<Option<(Vec<String>, String)>>,
    retry: ServerAction<RetryJob>,
) -> impl IntoView {
    let name = job.name.clone();
    let href = job_href(&service, &name);
    let label = name.clone();
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
                    doomed.set(Some((vec![name.clone()], format!("Delete job {name} and its log?"))));
                }>"Delete"</button>
            }
            .into_any(),
        }
    };
    view! {
        <tr data-job=name.clone() data-state=job.state.as_str()>
            <td><A href=href attr:class="mono" attr:title="The job's page: its record and log">{label}</A></td>
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
        (Some(start), Some(end)) => format_duration(end.since(start)),
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
        <td><LocalTime at=job.created_at /></td>
        <td>{duration}</td>
        <td>{job.exit_code.map(|c| c.to_string()).unwrap_or_default()}</td>
    }
}

/// Runs the service at once on typed text or a chosen file, and shows what came back.
#[component]
pub fn InvokePanel(name: String) -> impl IntoView {
    let payload = RwSignal::new(String::new());
    let kind = RwSignal::new(PayloadKind::Text);
    let chosen = RwSignal::new(None::<(String, String)>);
    let invalid = RwSignal::new(None::<String>);
    let run = ServerAction::<RunService>::new();
    let submit = {
        let name = name.clone();
        move |_| {
            // The supervisor base64-decodes what is not JSON (upstream's rule): text goes
            // encoded so that a word like "test" reaches the script as typed.
            let text = payload.get_untracked();
            let sent = match kind.get_untracked() {
                PayloadKind::Text => base64::engine::general_purpose::STANDARD.encode(text),
                PayloadKind::Json => match serde_json::from_str::<serde_json::Value>(&text) {
                    Ok(_) => text,
                    Err(e) => {
                        invalid.set(Some(format!("The input is not JSON: {e}")));
                        return;
                    }
                },
                PayloadKind::File => match chosen.get_untracked() {
                    Some((_, encoded)) => encoded,
                    None => {
                        invalid.set(Some("Choose a file first.".into()));
                        return;
                    }
                },
            };
            invalid.set(None);
            run.dispatch(RunService {
                service: name.clone(),
                payload: sent,
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
            let name = file.name();
            leptos::task::spawn_local(async move {
                if let Ok(buffer) = wasm_bindgen_futures::JsFuture::from(file.array_buffer()).await
                {
                    let bytes = js_sys::Uint8Array::new(&buffer).to_vec();
                    let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
                    chosen.set(Some((name, encoded)));
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
                "Runs the script once on this input, in the service's image, and shows the result (like POST /run). "
                "The script reads the input from the file at "<code>"$INPUT_FILE_PATH"</code>"."
            </p>
            <fieldset class="row" role="radiogroup" aria-label="Input kind">
                {PayloadKind::ALL.into_iter().map(|k| view! {
                    <label class="check">
                        <input type="radio" name="payload-kind" prop:checked=move || kind.get() == k
                            on:change=move |_| { kind.set(k); invalid.set(None); } />
                        {k.label()}
                    </label>
                }).collect_view()}
            </fieldset>
            <Show
                when=move || kind.get() == PayloadKind::File
                fallback=move || view! {
                    <label>
                        "Input"
                        <textarea name="payload" class="code" rows="4" spellcheck="false" prop:value=payload
                            on:input=move |ev| payload.set(event_target_value(&ev))></textarea>
                    </label>
                }
            >
                <label class="file">"File" <input type="file" name="file" on:change=on_file /></label>
                {move || chosen.get().map(|(name, _)| view! { <span class="muted">{name}</span> })}
            </Show>
            {move || invalid.get().map(|why| view! { <p class="error" role="alert">{why}</p> })}
            <div class="row">
                <button type="button" class="primary" on:click=submit.clone() disabled=move || run.pending().get()>
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

/// What the "Run now" input is, and so how it is sent.
#[derive(Clone, Copy, PartialEq, Eq)]
enum PayloadKind {
    Text,
    Json,
    File,
}

impl PayloadKind {
    const ALL: [PayloadKind; 3] = [Self::Text, Self::Json, Self::File];

    fn label(self) -> &'static str {
        match self {
            Self::Text => "Text",
            Self::Json => "JSON",
            Self::File => "File",
        }
    }
}

/// How a synchronous response is shown. The supervisor answers with base64 when the script
/// wrote output files (one file, or several zipped) and with what it printed otherwise; the
/// body does not say which, so base64 is believed only when it decodes to something
/// recognisable (an image, a ZIP archive, UTF-8 text), and a printed word such as "test"
/// stays text.
enum RunBody {
    Empty,
    Image { src: String },
    Archive { href: String },
    Text(String),
}

impl RunBody {
    fn of(response: &str) -> Self {
        let trimmed = response.trim();
        if trimmed.is_empty() {
            return Self::Empty;
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(trimmed)
            .ok()
            .filter(|bytes| !bytes.is_empty());
        match decoded {
            Some(bytes) => match image_type(&bytes) {
                Some(mime) => Self::Image {
                    src: format!("data:{mime};base64,{trimmed}"),
                },
                None if bytes.starts_with(b"PK\x03\x04") => Self::Archive {
                    href: format!("data:application/zip;base64,{trimmed}"),
                },
                None => match String::from_utf8(bytes) {
                    Ok(text) => Self::Text(text),
                    Err(_) => Self::Text(response.to_string()),
                },
            },
            None => Self::Text(response.to_string()),
        }
    }
}

#[component]
fn RunOutcome(result: RunResult) -> impl IntoView {
    let job = result.job;
    let body = match RunBody::of(&result.response) {
        RunBody::Empty => view! {
            <p class="muted" data-testid="run-empty">"No output: the script printed nothing and wrote no file."</p>
        }
        .into_any(),
        RunBody::Image { src } => view! {
            <img class="result-image" data-testid="run-image" src=src.clone() alt="Output image" />
            <a class="button" href=src download="output">"Download"</a>
        }
        .into_any(),
        RunBody::Archive { href } => view! {
            <a class="button" href=href download="outputs.zip">"Download the outputs (ZIP)"</a>
        }
        .into_any(),
        RunBody::Text(text) => {
            view! { <pre class="script" data-testid="run-output">{text}</pre> }.into_any()
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printed_words_stay_text_and_encoded_outputs_decode() {
        let text = |response: &str| match RunBody::of(response) {
            RunBody::Text(text) => Some(text),
            _ => None,
        };
        // Issue 23.7: valid base64 that decodes to no known kind of output is what was printed.
        assert_eq!(text("test").as_deref(), Some("test"));
        assert_eq!(text("data\n").as_deref(), Some("data\n"));
        assert_eq!(text("hello world").as_deref(), Some("hello world"));
        let encode = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
        assert_eq!(
            text(&encode(b"an output file")).as_deref(),
            Some("an output file")
        );
        assert!(matches!(RunBody::of(" \n"), RunBody::Empty));
        assert!(matches!(
            RunBody::of(&encode(b"PK\x03\x04rest")),
            RunBody::Archive { .. }
        ));
        assert!(matches!(
            RunBody::of(&encode(b"\x89PNG\r\n")),
            RunBody::Image { .. }
        ));
    }
}
