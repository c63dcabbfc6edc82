//! The upload area: drop zone, pickers for files and folders, and each upload's progress with
//! cancel and retry. The sending is `uploader::Queue`'s.

use leptos::prelude::*;

use super::uploader::{self, Queue};

/// One file being uploaded.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Upload {
    pub(super) id: usize,
    pub(super) key: String,
    pub(super) size: f64,
    pub(super) sent: f64,
    pub(super) state: UploadState,
}

// Constructed by the browser's uploader only; the server renders an empty list.
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
#[derive(Clone, Debug, PartialEq)]
pub(super) enum UploadState {
    Queued,
    Sending,
    Done { jobs: usize },
    Failed(String),
    Cancelled,
}

#[component]
pub(super) fn Uploads(bucket: String, prefix: String, version: RwSignal<u64>) -> impl IntoView {
    let uploads = RwSignal::new(Vec::<Upload>::new());
    let dragging = RwSignal::new(false);
    let queue = Queue::new(bucket.clone(), uploads, version);
    // The whole page is the drop zone; this area shows when files are over it.
    uploader::drop_anywhere(queue.clone(), prefix.clone(), dragging);
    let on_pick = {
        let (queue, prefix) = (queue.clone(), prefix.clone());
        move |ev: leptos::ev::Event| queue.add_picked(&prefix, &ev)
    };
    let on_pick_folder = on_pick.clone();
    // Lets the picker choose a whole folder.
    let folder_input = NodeRef::<leptos::html::Input>::new();
    uploader::accept_folders(folder_input);
    let total = move || {
        let list = uploads.read();
        let size: f64 = list.iter().map(|u| u.size).sum();
        let sent: f64 = list.iter().map(|u| u.sent).sum();
        (size > 0.0).then(|| (sent / size * 100.0).round())
    };
    view! {
        <div class=move || if dragging.get() { "dropzone active" } else { "dropzone" } data-testid="dropzone">
            <p>
                "Drop files anywhere on this page, or "
                <label class="file inline">"choose files" <input type="file" multiple name="files" on:change=on_pick /></label>
                " or "
                <label class="file inline">"a folder" <input type="file" multiple name="folder-files" node_ref=folder_input on:change=on_pick_folder /></label>
                {format!(" to upload them to {bucket}/{prefix}")}
            </p>
            {move || total().map(|p| view! {
                <div class="overall" data-testid="overall-progress">
                    <progress max="100" value=p></progress> " " {format!("{p}%")}
                </div>
            })}
            <ul class="uploads">
                {move || uploads.get().into_iter().map(|u| {
                    let percent = if u.size > 0.0 { (u.sent / u.size * 100.0).round() } else { 100.0 };
                    let id = u.id;
                    let (cancel_queue, retry_queue) = (queue.clone(), queue.clone());
                    let status = match &u.state {
                        UploadState::Queued => "queued".to_string(),
                        UploadState::Sending => format!("{percent}%"),
                        UploadState::Done { jobs: 0 } => "done".to_string(),
                        UploadState::Done { jobs } => format!("done, {jobs} job(s) started"),
                        UploadState::Failed(reason) => format!("failed: {reason}"),
                        UploadState::Cancelled => "cancelled".to_string(),
                    };
                    let active = matches!(u.state, UploadState::Queued | UploadState::Sending);
                    let retryable = matches!(u.state, UploadState::Failed(_) | UploadState::Cancelled);
                    view! {
                        <li data-upload=u.key.clone() data-state=format!("{:?}", u.state).split(['(', ' ']).next().unwrap_or_default().to_lowercase()>
                            <span class="mono">{u.key.clone()}</span>
                            <progress max="100" value=percent></progress>
                            <span class="muted">{status}</span>
                            {active.then(|| view! {
                                <button type="button" class="small" on:click=move |_| cancel_queue.cancel(id)>"Cancel"</button>
                            })}
                            {retryable.then(|| view! {
                                <button type="button" class="small" on:click=move |_| retry_queue.retry(id)>"Retry"</button>
                            })}
                        </li>
                    }
                }).collect_view()}
            </ul>
        </div>
    }
    .into_any()
}
