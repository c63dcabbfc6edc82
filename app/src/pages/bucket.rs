//! One bucket: folders with breadcrumbs, every object page by page, new folders, deletion,
//! share links, previews, and uploads (drag and drop or pickers, files and folders, several at
//! once with progress, cancel and retry).

use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::{use_params_map, use_query_map};

use super::widgets::{CopyButton, ErrorPanel, PageHeader, format_time};
use crate::api::buckets::{
    CreateFolder, DeleteObjects, ObjectEntry, ShareLink, list_objects, preview_object,
};
use model::url::percent_encode;

/// Uploads running at once.
#[cfg(feature = "hydrate")]
const PARALLEL_UPLOADS: usize = 4;

fn folder_href(bucket: &str, prefix: &str) -> String {
    if prefix.is_empty() {
        format!("/buckets/{}", percent_encode(bucket, b""))
    } else {
        format!(
            "/buckets/{}?prefix={}",
            percent_encode(bucket, b""),
            percent_encode(prefix, b"")
        )
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum SortBy {
    Name,
    Size,
    Newest,
}

fn matches_filter(path: &str, filter: &str) -> bool {
    let filter = filter.trim().to_lowercase();
    filter.is_empty() || leaf(path).to_lowercase().contains(&filter)
}

/// The loaded objects that match the filter, in the chosen order.
fn arrange(
    objects: impl Iterator<Item = ObjectEntry>,
    filter: &str,
    sort: SortBy,
) -> Vec<ObjectEntry> {
    let mut shown: Vec<ObjectEntry> = objects.filter(|o| matches_filter(&o.key, filter)).collect();
    match sort {
        SortBy::Name => shown.sort_by(|a, b| a.key.cmp(&b.key)),
        SortBy::Size => shown.sort_by_key(|o| std::cmp::Reverse(o.size)),
        SortBy::Newest => shown.sort_by_key(|o| std::cmp::Reverse(o.modified)),
    }
    shown
}

/// The last segment of a key or folder prefix.
fn leaf(path: &str) -> &str {
    path.trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(path)
}

pub(super) fn human_size(bytes: i64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[component]
pub fn BucketPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let bucket = Memo::new(move |_| params.read().get("name").unwrap_or_default());
    let prefix = Memo::new(move |_| query.read().get("prefix").unwrap_or_default());
    view! {
        <PageHeader title="Bucket" />
        // The browser and its parts are type-erased (`into_any`): nested as one type, they
        // overflowed rustc's depth limit computing the page's layout in the release wasm build.
        {move || view! { <Browser bucket=bucket.get() prefix=prefix.get() /> }.into_any()}
    }
}

#[component]
fn Browser(bucket: String, prefix: String) -> impl IntoView {
    // Bumped after changes (uploads, deletions, new folders): the first page reloads.
    let version = RwSignal::new(0u64);
    // Pages after the first, appended by "Load more".
    let more = RwSignal::new(Vec::<ObjectEntry>::new());
    let next = RwSignal::new(None::<String>);
    let selected = RwSignal::new(Vec::<String>::new());
    let filter = RwSignal::new(String::new());
    let sort = RwSignal::new(SortBy::Name);
    let previewing = RwSignal::new(None::<String>);
    let first = {
        let (bucket, prefix) = (bucket.clone(), prefix.clone());
        Resource::new(
            move || version.get(),
            move |_| list_objects(bucket.clone(), prefix.clone(), None),
        )
    };
    Effect::new(move |_| {
        if let Some(Ok(page)) = first.get() {
            more.set(Vec::new());
            next.set(page.next.clone());
            selected.set(Vec::new());
        }
    });
    let load_more = {
        let (bucket, prefix) = (bucket.clone(), prefix.clone());
        Action::new(move |token: &String| {
            let (bucket, prefix, token) = (bucket.clone(), prefix.clone(), token.clone());
            async move {
                let page = list_objects(bucket, prefix, Some(token)).await?;
                more.update(|m| m.extend(page.objects));
                next.set(page.next);
                Ok::<_, crate::AppError>(())
            }
        })
    };

    let crumbs = {
        let mut crumbs = vec![(bucket.clone(), folder_href(&bucket, ""))];
        let mut path = String::new();
        for segment in prefix.split('/').filter(|s| !s.is_empty()) {
            path.push_str(segment);
            path.push('/');
            crumbs.push((segment.to_string(), folder_href(&bucket, &path)));
        }
        crumbs
    };
    let listing = {
        let bucket = bucket.clone();
        move || {
            first.get().map(|page| match page {
                Err(error) => view! { <ErrorPanel error /> }.into_any(),
                Ok(page) => {
                    let bucket = bucket.clone();
                    let notice = (!page.input_of.is_empty()).then(|| {
                        let services = page.input_of.clone();
                        view! {
                            <p class="notice" data-testid="input-notice">
                                "Each file uploaded here starts a job of "
                                {services.into_iter().map(|s| {
                                    let href = format!("/services/{}", percent_encode(&s, b""));
                                    view! { <A href=href>{s}</A> " " }
                                }).collect_view()}
                            </p>
                        }
                    });
                    let folders = page.folders.clone();
                    let objects = page.objects.clone();
                    let folder_bucket = bucket.clone();
                    let empty = folders.is_empty() && objects.is_empty();
                    view! {
                        {notice}
                        {if empty {
                            view! { <p class="muted" data-testid="empty-folder">"This folder is empty. Drop files here to upload them."</p> }.into_any()
                        } else {
                            view! {
                                <table class="table objects" data-testid="objects">
                                    <thead><tr>
                                        <th></th>
                                        <th><button type="button" class="link" on:click=move |_| sort.set(SortBy::Name)>"Name"</button></th>
                                        <th><button type="button" class="link" on:click=move |_| sort.set(SortBy::Size)>"Size"</button></th>
                                        <th><button type="button" class="link" on:click=move |_| sort.set(SortBy::Newest)>"Modified"</button></th>
                                        <th></th>
                                    </tr></thead>
                                    <tbody>
                                        {move || folders.iter().filter(|f| matches_filter(f, &filter.read())).map(|folder| {
                                            let href = folder_href(&folder_bucket, folder);
                                            let name = format!("{}/", leaf(folder));
                                            let value = folder.clone();
                                            view! {
                                                <tr data-folder=folder.clone()>
                                                    <td><SelectBox value selected /></td>
                                                    <td><A href=href>{name}</A></td>
                                                    <td></td><td></td><td></td>
                                                </tr>
                                            }
                                        }).collect_view()}
                                        {move || arrange(objects.iter().cloned().chain(more.get()), &filter.read(), sort.get())
                                            .into_iter()
                                            .map(|o| view! { <ObjectRow bucket=bucket.clone() object=o selected previewing /> })
                                            .collect_view()}
                                    </tbody>
                                </table>
                            }.into_any()
                        }}
                    }
                    .into_any()
                }
            })
        }
    };

    view! {
        <section class="panel detail">
            <nav class="breadcrumbs" aria-label="Folder">
                {crumbs.into_iter().enumerate().map(|(i, (label, href))| view! {
                    {(i > 0).then_some(" / ")}
                    <A href=href>{label}</A>
                }).collect_view()}
            </nav>
            <Toolbar bucket=bucket.clone() prefix=prefix.clone() selected version />
            <input type="search" placeholder="Filter by name" aria-label="Filter by name" bind:value=filter />
            <Uploads bucket=bucket.clone() prefix=prefix.clone() version />
            <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>{listing}</Transition>
            {move || next.get().map(|token| view! {
                <button type="button" disabled=move || load_more.pending().get()
                    on:click=move |_| { load_more.dispatch(token.clone()); }>
                    "Load more"
                </button>
            })}
            {move || load_more.value().get().and_then(Result::err).map(|error| view! { <ErrorPanel error /> })}
        </section>
        {move || previewing.get().map(|key| view! { <Preview bucket=bucket.clone() key previewing /> })}
    }
    .into_any()
}

#[component]
fn SelectBox(value: String, selected: RwSignal<Vec<String>>) -> impl IntoView {
    let checked = {
        let value = value.clone();
        move || selected.read().contains(&value)
    };
    let label = format!("Select {}", leaf(&value));
    view! {
        <input type="checkbox" aria-label=label prop:checked=checked on:change=move |ev| {
            let on = event_target_checked(&ev);
            selected.update(|s| {
                s.retain(|v| v != &value);
                if on {
                    s.push(value.clone());
                }
            });
        } />
    }
}

#[component]
fn ObjectRow(
    bucket: String,
    object: ObjectEntry,
    selected: RwSignal<Vec<String>>,
    previewing: RwSignal<Option<String>>,
) -> impl IntoView {
    let share = ServerAction::<ShareLink>::new();
    let expiry = RwSignal::new(3600u64);
    let key = object.key.clone();
    let name = leaf(&key).to_string();
    let ask = {
        let (bucket, key) = (bucket.clone(), key.clone());
        move |_| {
            share.dispatch(ShareLink {
                bucket: bucket.clone(),
                key: key.clone(),
                expires_in: expiry.get_untracked(),
            });
        }
    };
    let show = {
        let key = key.clone();
        move |_| previewing.set(Some(key.clone()))
    };
    view! {
        <tr data-key=key.clone()>
            <td><SelectBox value=key.clone() selected /></td>
            <td><button type="button" class="link" on:click=show title="Preview">{name}</button></td>
            <td>{human_size(object.size)}</td>
            <td>{object.modified.map(format_time).unwrap_or_default()}</td>
            <td class="share">
                <select aria-label="Link expiry" on:change=move |ev| {
                    expiry.set(event_target_value(&ev).parse().unwrap_or(3600));
                }>
                    <option value="900">"15 min"</option>
                    <option value="3600" selected>"1 hour"</option>
                    <option value="86400">"1 day"</option>
                    <option value="604800">"7 days"</option>
                </select>
                <button type="button" class="small" on:click=ask>"Share link"</button>
                {move || share.value().get().map(|result| match result {
                    Ok(url) => view! {
                        <a href=url.clone() target="_blank" rel="noopener" data-testid="share-link">"Download"</a>
                        " " <CopyButton text=url />
                    }.into_any(),
                    Err(error) => view! { <ErrorPanel error /> }.into_any(),
                })}
            </td>
        </tr>
    }
}

#[component]
fn Toolbar(
    bucket: String,
    prefix: String,
    selected: RwSignal<Vec<String>>,
    version: RwSignal<u64>,
) -> impl IntoView {
    let folder = RwSignal::new(String::new());
    let create = ServerAction::<CreateFolder>::new();
    let delete = ServerAction::<DeleteObjects>::new();
    let confirming = RwSignal::new(false);
    Effect::new(move |_| {
        if matches!(create.value().get(), Some(Ok(()))) {
            folder.set(String::new());
            version.update(|v| *v += 1);
        }
    });
    Effect::new(move |_| {
        if matches!(delete.value().get(), Some(Ok(_))) {
            confirming.set(false);
            version.update(|v| *v += 1);
        }
    });
    let (zip_bucket, zip_prefix) = (bucket.clone(), prefix.clone());
    let zip_name = format!("{bucket}.zip");
    let make = {
        let (bucket, prefix) = (bucket.clone(), prefix.clone());
        move |_| {
            create.dispatch(CreateFolder {
                bucket: bucket.clone(),
                folder: format!("{prefix}{}", folder.get_untracked().trim()),
            });
        }
    };
    let remove = move |_| {
        let (folders, keys): (Vec<String>, Vec<String>) = selected
            .get_untracked()
            .into_iter()
            .partition(|s| s.ends_with('/'));
        delete.dispatch(DeleteObjects {
            bucket: bucket.clone(),
            keys,
            folders,
        });
    };
    view! {
        <div class="row toolbar">
            <label>
                "New folder"
                <input type="text" name="new-folder" prop:value=folder on:input=move |ev| folder.set(event_target_value(&ev)) />
            </label>
            <button type="button" on:click=make disabled=move || folder.read().trim().is_empty()>"Create folder"</button>
            // `download` keeps the client-side router out of it: the server answers this link.
            <a class="button" data-testid="download-zip" download=zip_name
                class:disabled=move || selected.read().is_empty()
                href=move || zip_href(&zip_bucket, &zip_prefix, &selected.read())>
                "Download selected (zip)"
            </a>
            <button type="button" class="danger-solid" disabled=move || selected.read().is_empty()
                on:click=move |_| confirming.set(true)>
                {move || format!("Delete selected ({})", selected.read().len())}
            </button>
        </div>
        {move || confirming.get().then(|| {
            let chosen = selected.get();
            let folders = chosen.iter().filter(|s| s.ends_with('/')).count();
            let files = chosen.len() - folders;
            let what = match folders {
                0 => format!("{files} file(s) will be deleted."),
                _ => format!("{files} file(s) and {folders} folder(s) with everything in them will be deleted."),
            };
            let remove = remove.clone();
            view! {
                <div class="confirm" role="alertdialog" aria-label="Confirm deletion">
                    <p data-testid="delete-summary">{what}</p>
                    <button type="button" on:click=move |_| confirming.set(false)>"Cancel"</button>
                    " "
                    <button type="button" class="danger-solid" on:click=remove.clone()>"Delete"</button>
                </div>
            }
        })}
        {move || delete.value().get().map(|result| match result {
            Ok(n) => view! { <p class="muted" role="status">{format!("Deleted {n} object(s).")}</p> }.into_any(),
            Err(error) => view! { <ErrorPanel error /> }.into_any(),
        })}
        {move || create.value().get().and_then(Result::err).map(|error| view! { <ErrorPanel error /> })}
    }
    .into_any()
}

/// The ZIP download of the selected files and folders, named relative to the folder shown.
fn zip_href(bucket: &str, prefix: &str, selected: &[String]) -> String {
    let mut href = format!(
        "/api/download/zip/{}?prefix={}",
        percent_encode(bucket, b""),
        percent_encode(prefix, b"")
    );
    for item in selected {
        let kind = if item.ends_with('/') { "folder" } else { "key" };
        href.push_str(&format!("&{kind}={}", percent_encode(item, b"")));
    }
    href
}

#[component]
fn Preview(bucket: String, key: String, previewing: RwSignal<Option<String>>) -> impl IntoView {
    let content = {
        let (bucket, key) = (bucket.clone(), key.clone());
        Resource::new(|| (), move |_| preview_object(bucket.clone(), key.clone()))
    };
    view! {
        <section class="panel detail" data-testid="preview">
            <div class="page-header">
                <h2 class="mono">{key.clone()}</h2>
                <button type="button" class="small" on:click=move |_| previewing.set(None)>"Close"</button>
            </div>
            <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || content.get().map(|result| match result {
                    Err(error) => view! { <ErrorPanel error /> }.into_any(),
                    Ok(preview) => match (preview.image_url, preview.text) {
                        (Some(url), _) => view! { <img class="result-image" data-testid="preview-image" src=url alt=key.clone() /> }.into_any(),
                        (None, Some(text)) => view! {
                            <pre class="script" data-testid="preview-text">{text}</pre>
                            {preview.truncated.then_some(view! { <p class="muted">"First part shown."</p> })}
                        }.into_any(),
                        (None, None) => match preview.pdf_url {
                            Some(url) => view! { <iframe class="pdf" src=url title=key.clone()></iframe> }.into_any(),
                            None => view! {
                                <p class="muted">"No preview for this kind of file. "</p>
                                <a href=preview.download_url class="button">"Download"</a>
                            }.into_any(),
                        },
                    },
                })}
            </Transition>
        </section>
    }
    .into_any()
}

/// One file being uploaded.
#[derive(Clone, Debug, PartialEq)]
struct Upload {
    id: usize,
    key: String,
    size: f64,
    sent: f64,
    state: UploadState,
}

// Constructed by the browser's uploader only; the server renders an empty list.
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
#[derive(Clone, Debug, PartialEq)]
enum UploadState {
    Queued,
    Sending,
    Done { jobs: usize },
    Failed(String),
    Cancelled,
}

#[component]
fn Uploads(bucket: String, prefix: String, version: RwSignal<u64>) -> impl IntoView {
    let uploads = RwSignal::new(Vec::<Upload>::new());
    let dragging = RwSignal::new(false);
    #[cfg(feature = "hydrate")]
    let queue = uploader::Queue::new(bucket.clone(), uploads, version);
    #[cfg(not(feature = "hydrate"))]
    let _ = (&bucket, version);

    let on_drop = {
        #[cfg(feature = "hydrate")]
        let (queue, prefix) = (queue.clone(), prefix.clone());
        move |ev: leptos::ev::DragEvent| {
            ev.prevent_default();
            dragging.set(false);
            #[cfg(feature = "hydrate")]
            if let Some(files) = ev.data_transfer().and_then(|d| d.files()) {
                queue.add(&prefix, files);
            }
        }
    };
    let on_pick = {
        #[cfg(feature = "hydrate")]
        let (queue, prefix) = (queue.clone(), prefix.clone());
        move |ev: leptos::ev::Event| {
            #[cfg(feature = "hydrate")]
            {
                use wasm_bindgen::JsCast;
                if let Some(input) = ev
                    .target()
                    .and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok())
                {
                    if let Some(files) = input.files() {
                        queue.add(&prefix, files);
                    }
                    input.set_value("");
                }
            }
            #[cfg(not(feature = "hydrate"))]
            let _ = ev;
        }
    };
    // Copy in the server build (it captures nothing there), only Clone in the browser's.
    #[allow(clippy::clone_on_copy)]
    let on_pick_folder = on_pick.clone();
    // Lets the picker choose a whole folder (`webkitdirectory` has no typed attribute).
    let folder_input = NodeRef::<leptos::html::Input>::new();
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        if let Some(input) = folder_input.get() {
            let _ = input.set_attribute("webkitdirectory", "");
        }
    });
    #[cfg(feature = "hydrate")]
    let (cancel_queue, retry_queue) = (queue.clone(), queue.clone());
    let total = move || {
        let list = uploads.read();
        let size: f64 = list.iter().map(|u| u.size).sum();
        let sent: f64 = list.iter().map(|u| u.sent).sum();
        (size > 0.0).then(|| (sent / size * 100.0).round())
    };
    view! {
        <div
            class=move || if dragging.get() { "dropzone active" } else { "dropzone" }
            data-testid="dropzone"
            on:dragover=move |ev: leptos::ev::DragEvent| { ev.prevent_default(); dragging.set(true); }
            on:dragleave=move |_| dragging.set(false)
            on:drop=on_drop
        >
            <p>
                "Drop files here, or "
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
                    #[cfg(feature = "hydrate")]
                    let (cancel_queue, retry_queue) = (cancel_queue.clone(), retry_queue.clone());
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
                                <button type="button" class="small" on:click=move |_| {
                                    #[cfg(feature = "hydrate")]
                                    cancel_queue.cancel(id);
                                    #[cfg(not(feature = "hydrate"))]
                                    let _ = id;
                                }>"Cancel"</button>
                            })}
                            {retryable.then(|| view! {
                                <button type="button" class="small" on:click=move |_| {
                                    #[cfg(feature = "hydrate")]
                                    retry_queue.retry(id);
                                    #[cfg(not(feature = "hydrate"))]
                                    let _ = id;
                                }>"Retry"</button>
                            })}
                        </li>
                    }
                }).collect_view()}
            </ul>
        </div>
    }
    .into_any()
}

/// The browser side of uploads: a queue of files sent with XMLHttpRequest (for upload
/// progress), a few at a time, to `PUT /api/upload/{bucket}/{key}`.
#[cfg(feature = "hydrate")]
mod uploader {
    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::rc::Rc;

    use leptos::prelude::*;
    use wasm_bindgen::JsCast;
    use wasm_bindgen::closure::Closure;

    use super::{PARALLEL_UPLOADS, Upload, UploadState};
    use model::url::percent_encode;

    #[derive(Clone)]
    pub struct Queue {
        bucket: String,
        uploads: RwSignal<Vec<Upload>>,
        version: RwSignal<u64>,
        inner: send_wrapper::SendWrapper<Rc<RefCell<Inner>>>,
    }

    #[derive(Default)]
    struct Inner {
        next_id: usize,
        files: HashMap<usize, web_sys::File>,
        running: HashMap<usize, web_sys::XmlHttpRequest>,
    }

    impl Queue {
        pub fn new(bucket: String, uploads: RwSignal<Vec<Upload>>, version: RwSignal<u64>) -> Self {
            Self {
                bucket,
                uploads,
                version,
                inner: send_wrapper::SendWrapper::new(Rc::default()),
            }
        }

        /// Queues the files under `prefix`, keeping a picked folder's structure.
        pub fn add(&self, prefix: &str, files: web_sys::FileList) {
            let mut added = Vec::new();
            {
                let mut inner = self.inner.borrow_mut();
                for i in 0..files.length() {
                    let Some(file) = files.get(i) else { continue };
                    // Set by folder pickers (web-sys has no binding for it).
                    let relative = js_sys::Reflect::get(&file, &"webkitRelativePath".into())
                        .ok()
                        .and_then(|v| v.as_string())
                        .filter(|p| !p.is_empty())
                        .unwrap_or_else(|| file.name());
                    let id = inner.next_id;
                    inner.next_id += 1;
                    added.push(Upload {
                        id,
                        key: format!("{prefix}{relative}"),
                        size: file.size(),
                        sent: 0.0,
                        state: UploadState::Queued,
                    });
                    inner.files.insert(id, file);
                }
            }
            self.uploads.update(|u| u.extend(added));
            self.pump();
        }

        pub fn cancel(&self, id: usize) {
            if let Some(request) = self.inner.borrow_mut().running.remove(&id) {
                let _ = request.abort();
            }
            self.set_state(id, UploadState::Cancelled);
            self.pump();
        }

        pub fn retry(&self, id: usize) {
            self.uploads.update(|list| {
                if let Some(u) = list.iter_mut().find(|u| u.id == id) {
                    u.sent = 0.0;
                    u.state = UploadState::Queued;
                }
            });
            self.pump();
        }

        fn set_state(&self, id: usize, state: UploadState) {
            self.uploads.update(|list| {
                if let Some(u) = list.iter_mut().find(|u| u.id == id) {
                    u.state = state;
                }
            });
        }

        /// Starts queued uploads while fewer than `PARALLEL_UPLOADS` run.
        fn pump(&self) {
            loop {
                if self.inner.borrow().running.len() >= PARALLEL_UPLOADS {
                    return;
                }
                let next = self.uploads.with_untracked(|list| {
                    list.iter()
                        .find(|u| u.state == UploadState::Queued)
                        .map(|u| (u.id, u.key.clone()))
                });
                let Some((id, key)) = next else { return };
                self.start(id, &key);
            }
        }

        fn start(&self, id: usize, key: &str) {
            let Some(file) = self.inner.borrow().files.get(&id).cloned() else {
                self.set_state(id, UploadState::Failed("the file is gone".into()));
                return;
            };
            let Ok(request) = web_sys::XmlHttpRequest::new() else {
                self.set_state(id, UploadState::Failed("the browser refused".into()));
                return;
            };
            let url = format!(
                "/api/upload/{}/{}",
                percent_encode(&self.bucket, b""),
                percent_encode(key, b"/")
            );
            if request.open("PUT", &url).is_err() {
                self.set_state(id, UploadState::Failed("the browser refused".into()));
                return;
            }
            let _ = request.set_request_header("Accept", "application/json");
            let uploads = self.uploads;
            let progress = Closure::<dyn FnMut(web_sys::ProgressEvent)>::new(
                move |ev: web_sys::ProgressEvent| {
                    uploads.update(|list| {
                        if let Some(u) = list.iter_mut().find(|u| u.id == id) {
                            u.sent = ev.loaded();
                        }
                    });
                },
            );
            if let Ok(upload) = request.upload() {
                upload.set_onprogress(Some(progress.as_ref().unchecked_ref()));
            }
            let queue = self.clone();
            let finished_request = request.clone();
            let done = Closure::<dyn FnMut()>::new(move || {
                // Cancelled uploads were taken out already; their state stays "cancelled".
                if queue.inner.borrow_mut().running.remove(&id).is_none() {
                    return;
                }
                let status = finished_request.status().unwrap_or(0);
                let body = finished_request
                    .response_text()
                    .ok()
                    .flatten()
                    .unwrap_or_default();
                let state = if (200..300).contains(&status) {
                    let jobs = serde_json::from_str::<serde_json::Value>(&body)
                        .ok()
                        .and_then(|v| v["jobs"].as_array().map(Vec::len))
                        .unwrap_or(0);
                    queue.uploads.update(|list| {
                        if let Some(u) = list.iter_mut().find(|u| u.id == id) {
                            u.sent = u.size;
                        }
                    });
                    queue.version.update(|v| *v += 1);
                    UploadState::Done { jobs }
                } else if status == 0 {
                    UploadState::Failed("the connection was lost".into())
                } else {
                    UploadState::Failed(error_message(&body, status))
                };
                queue.set_state(id, state);
                queue.pump();
            });
            request.set_onloadend(Some(done.as_ref().unchecked_ref()));
            // The closures live as long as the page; an upload is a handful of bytes of them.
            progress.forget();
            done.forget();
            self.set_state(id, UploadState::Sending);
            self.inner.borrow_mut().running.insert(id, request.clone());
            if request.send_with_opt_blob(Some(&file)).is_err() {
                self.inner.borrow_mut().running.remove(&id);
                self.set_state(
                    id,
                    UploadState::Failed("the browser could not send it".into()),
                );
            }
        }
    }

    /// The server's message (plain text naming the field), or the status.
    fn error_message(body: &str, status: u16) -> String {
        match body.trim() {
            "" => format!("HTTP {status}"),
            text => text.to_string(),
        }
    }
}
