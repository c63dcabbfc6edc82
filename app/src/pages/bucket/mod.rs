//! One bucket: folders with breadcrumbs, every object page by page, new folders, deletion,
//! share links, previews, and uploads (drag and drop or pickers, files and folders, several at
//! once with progress, cancel and retry). The page and its browser are here; the object rows
//! and toolbar, the preview, and the uploads live in submodules.

mod objects;
mod preview;
mod uploader;
mod uploads;

use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::{use_params_map, use_query_map};

use super::widgets::{ErrorPanel, PageHeader};
use crate::api::buckets::{ObjectEntry, list_objects};
use model::url::percent_encode;
use objects::{FolderRow, Listing, ObjectRow, RowDialogs, Toolbar};
use preview::Preview;
use uploads::Uploads;

pub(in crate::pages) fn folder_href(bucket: &str, prefix: &str) -> String {
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
pub(super) fn leaf(path: &str) -> &str {
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
        {move || view! { <PageHeader title=format!("Bucket {}", bucket.get()) /> }}
        // The browser and its parts are type-erased (`into_any`): nested as one type, they
        // overflowed rustc's depth limit computing the page's layout in the release wasm build.
        {move || view! { <Browser bucket=bucket.get() prefix=prefix.get() /> }.into_any()}
    }
}

/// A click anywhere but in a row's menu closes the open one.
#[cfg(feature = "hydrate")]
fn close_menu_outside(menu: RwSignal<Option<String>>) {
    use wasm_bindgen::JsCast;
    let clicks = window_event_listener(leptos::ev::click, move |ev| {
        let in_menu = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
            .and_then(|e| e.closest(".row-menu").ok().flatten())
            .is_some();
        if !in_menu && menu.with_untracked(Option::is_some) {
            menu.set(None);
        }
    });
    on_cleanup(move || clicks.remove());
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
    let listing_to = Listing::new(selected, previewing, version);
    #[cfg(feature = "hydrate")]
    close_menu_outside(listing_to.menu);
    let first = {
        let (bucket, prefix) = (bucket.clone(), prefix.clone());
        Resource::new(
            move || version.get(),
            move |_| list_objects(bucket.clone(), prefix.clone(), None),
        )
    };
    // Only a refusal (no such bucket, not the caller's) hides the upload area and tools; while
    // a page loads they stay, with what they hold.
    let found = RwSignal::new(true);
    Effect::new(move |_| match first.get() {
        Some(Ok(page)) => {
            more.set(Vec::new());
            next.set(page.next.clone());
            // A reload keeps what is still there selected.
            selected.update(|chosen| {
                chosen.retain(|k| {
                    page.folders.contains(k) || page.objects.iter().any(|o| &o.key == k)
                })
            });
            found.set(true);
        }
        Some(Err(_)) => found.set(false),
        None => {}
    });
    // New objects (uploads, jobs' outputs, S3 clients) and the dashboard's deletions reload
    // the listing, unless more pages were loaded (a reload would fold them away).
    #[cfg(feature = "hydrate")]
    {
        let changed = RwSignal::new(0u64);
        super::widgets::listen_for_changes(
            format!("/api/live/bucket/{}", percent_encode(&bucket, b"")),
            "change",
            changed,
        );
        Effect::new(move |seen: Option<u64>| {
            let now = changed.get();
            if seen.is_some_and(|seen| seen != now) && more.with_untracked(Vec::is_empty) {
                version.update(|v| *v += 1);
            }
            now
        });
    }
    let tools = (bucket.clone(), prefix.clone());
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
                    // What the listing shows now (filter applied), for "Select all".
                    let shown = {
                        let (folders, objects) = (folders.clone(), objects.clone());
                        move || {
                            let filter = filter.read();
                            let mut keys: Vec<String> = folders.iter().filter(|f| matches_filter(f, &filter)).cloned().collect();
                            keys.extend(arrange(objects.iter().cloned().chain(more.get()), &filter, sort.get()).into_iter().map(|o| o.key));
                            keys
                        }
                    };
                    let all_selected = {
                        let shown = shown.clone();
                        move || {
                            let keys = shown();
                            !keys.is_empty() && selected.with(|s| keys.iter().all(|k| s.contains(k)))
                        }
                    };
                    let select_all = move |ev: leptos::ev::Event| {
                        selected.set(if event_target_checked(&ev) { shown() } else { Vec::new() });
                    };
                    view! {
                        {notice}
                        {if empty {
                            view! { <p class="muted" data-testid="empty-folder">"This folder is empty. Drop files here to upload them."</p> }.into_any()
                        } else {
                            view! {
                                <table class="table objects" data-testid="objects">
                                    <thead><tr>
                                        <th><input type="checkbox" aria-label="Select all" prop:checked=all_selected on:change=select_all /></th>
                                        <th><button type="button" class="link" on:click=move |_| sort.set(SortBy::Name)>"Name"</button></th>
                                        <th><button type="button" class="link" on:click=move |_| sort.set(SortBy::Size)>"Size"</button></th>
                                        <th><button type="button" class="link" on:click=move |_| sort.set(SortBy::Newest)>"Modified"</button></th>
                                        <th></th>
                                    </tr></thead>
                                    <tbody>
                                        {move || folders.iter().filter(|f| matches_filter(f, &filter.read())).map(|folder| view! {
                                            <FolderRow bucket=folder_bucket.clone() folder=folder.clone() listing=listing_to />
                                        }).collect_view()}
                                        {move || arrange(objects.iter().cloned().chain(more.get()), &filter.read(), sort.get())
                                            .into_iter()
                                            .map(|o| view! { <ObjectRow bucket=bucket.clone() object=o listing=listing_to /> })
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
            <div class="row">
                <nav class="breadcrumbs" aria-label="Folder">
                    {crumbs.into_iter().enumerate().map(|(i, (label, href))| view! {
                        {(i > 0).then_some(" / ")}
                        <A href=href>{label}</A>
                    }).collect_view()}
                </nav>
                <button type="button" class="small" on:click=move |_| version.update(|v| *v += 1)>"Refresh"</button>
            </div>
            // A bucket that is not there (or not the caller's) gets no upload area or tools.
            <Show when=move || found.get()>
                <Toolbar bucket=tools.0.clone() prefix=tools.1.clone() selected version />
                <RowDialogs bucket=tools.0.clone() listing=listing_to />
                <input type="search" placeholder="Filter by name" aria-label="Filter by name" bind:value=filter />
                <Uploads bucket=tools.0.clone() prefix=tools.1.clone() version />
            </Show>
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
