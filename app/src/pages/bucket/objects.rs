//! The rows of the object table and the toolbar above it: selection, each row's icon and
//! menu (download, share link with its expiry, copy path, details, delete), new folders,
//! deletion and ZIP downloads of the selection.

use leptos::prelude::*;

use leptos_router::components::A;

use super::{human_size, leaf};
use crate::api::buckets::{CreateFolder, DeleteObjects, ObjectEntry, ShareLink};
use crate::pages::widgets::{ConfirmDialog, CopyButton, ErrorPanel, LocalTime};
use model::url::percent_encode;

#[component]
pub(super) fn SelectBox(value: String, selected: RwSignal<Vec<String>>) -> impl IntoView {
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

/// Where the listing's rows send what they do: the page's selection, preview, open menu,
/// share form and deletion, and reloads. What a row opens lives with the page, so a live
/// reload of the listing does not close it.
#[derive(Clone, Copy)]
pub(super) struct Listing {
    pub(super) selected: RwSignal<Vec<String>>,
    pub(super) previewing: RwSignal<Option<String>>,
    /// The key or folder whose menu is open; one at a time.
    pub(super) menu: RwSignal<Option<String>>,
    /// The key a share link is being made for.
    pub(super) sharing: RwSignal<Option<String>>,
    /// The key or folder asked to be deleted.
    pub(super) deleting: RwSignal<Option<String>>,
    pub(super) version: RwSignal<u64>,
}

impl Listing {
    pub(super) fn new(
        selected: RwSignal<Vec<String>>,
        previewing: RwSignal<Option<String>>,
        version: RwSignal<u64>,
    ) -> Self {
        Self {
            selected,
            previewing,
            menu: RwSignal::new(None),
            sharing: RwSignal::new(None),
            deleting: RwSignal::new(None),
            version,
        }
    }
}

#[component]
pub(super) fn FolderRow(bucket: String, folder: String, listing: Listing) -> impl IntoView {
    let href = super::folder_href(&bucket, &folder);
    let name = format!("{}/", leaf(&folder));
    let (row, selection, icon) = (folder.clone(), folder.clone(), folder.clone());
    view! {
        <tr data-folder=row>
            <td><SelectBox value=selection selected=listing.selected /></td>
            <td class="name"><FileIcon path=icon /><A href=href>{name}</A></td>
            <td></td><td></td>
            <td class="actions"><RowMenu bucket path=folder listing /></td>
        </tr>
    }
}

#[component]
pub(super) fn ObjectRow(bucket: String, object: ObjectEntry, listing: Listing) -> impl IntoView {
    let key = object.key;
    let name = leaf(&key).to_string();
    let (row, selection, icon) = (key.clone(), key.clone(), key.clone());
    let show = {
        let key = key.clone();
        move |_| listing.previewing.set(Some(key.clone()))
    };
    view! {
        <tr data-key=row>
            <td><SelectBox value=selection selected=listing.selected /></td>
            <td class="name">
                <FileIcon path=icon />
                <button type="button" class="link" on:click=show title="Preview and details">{name}</button>
            </td>
            <td>{human_size(object.size)}</td>
            <td>{object.modified.map(|at| view! { <LocalTime at /> })}</td>
            <td class="actions"><RowMenu bucket path=key listing /></td>
        </tr>
    }
}

/// A row's actions, behind a toggle: download, share link (files), copy path, details
/// (files), delete. Escape closes them.
#[component]
fn RowMenu(bucket: String, path: String, listing: Listing) -> impl IntoView {
    let folder = path.ends_with('/');
    let name = leaf(&path).to_string();
    let open = {
        let path = path.clone();
        Memo::new(move |_| listing.menu.read().as_deref() == Some(path.as_str()))
    };
    let toggle = {
        let path = path.clone();
        move |_| {
            listing
                .menu
                .set((!open.get_untracked()).then(|| path.clone()))
        }
    };
    let close = move || listing.menu.set(None);
    let download = if folder {
        let parent = path[..path.trim_end_matches('/').len() - name.len()].to_string();
        zip_href(&bucket, &parent, std::slice::from_ref(&path))
    } else {
        format!(
            "/api/download/object/{}/{}",
            percent_encode(&bucket, b""),
            percent_encode(&path, b"/")
        )
    };
    let saved_as = if folder {
        format!("{name}.zip")
    } else {
        name.clone()
    };
    let copied_path = format!("{bucket}/{path}");
    // Each item closes the menu and hands its path to the page.
    let choose = move |target: RwSignal<Option<String>>, path: String| {
        move |_: leptos::ev::MouseEvent| {
            close();
            target.set(Some(path.clone()));
        }
    };
    let menu_label = format!("Actions for {name}");
    view! {
        <div class="row-menu" on:keydown=move |ev| if ev.key() == "Escape" { close() }>
            <button type="button" class="small" aria-label=menu_label
                aria-expanded=move || open.get().to_string() on:click=toggle>"⋯"</button>
            {move || open.get().then(|| {
                let (download, saved_as, copied_path) = (download.clone(), saved_as.clone(), copied_path.clone());
                let file = (!folder).then(|| view! {
                    <button type="button" on:click=choose(listing.sharing, path.clone())>"Share link…"</button>
                    <button type="button" on:click=choose(listing.previewing, path.clone())>"Details"</button>
                });
                view! {
                    <div class="menu">
                        <a href=download download=saved_as on:click=move |_| close()>{if folder { "Download (zip)" } else { "Download" }}</a>
                        {file}
                        <CopyButton text=copied_path label="Copy path" />
                        <button type="button" class="danger" on:click=choose(listing.deleting, path.clone())>"Delete"</button>
                    </div>
                }
            })}
        </div>
    }
    .into_any()
}

/// What a row's menu opened: the share form and the deletion's confirmation, above the listing.
#[component]
pub(super) fn RowDialogs(bucket: String, listing: Listing) -> impl IntoView {
    let delete = ServerAction::<DeleteObjects>::new();
    Effect::new(move |_| {
        if matches!(delete.value().get(), Some(Ok(_))) {
            listing.deleting.set(None);
            listing.version.update(|v| *v += 1);
        }
    });
    let share_bucket = bucket.clone();
    let sharing = move || {
        listing.sharing.get().map(|key| {
            view! { <ShareForm bucket=share_bucket.clone() key sharing=listing.sharing /> }
        })
    };
    let deleting = move || {
        listing.deleting.get().map(|path| {
            let folder = path.ends_with('/');
            let name = leaf(&path).to_string();
            let what = match folder {
                true => format!("The folder {name} and everything in it will be deleted."),
                false => format!("{name} will be deleted."),
            };
            let bucket = bucket.clone();
            let remove = move |()| {
                let (keys, folders) = match folder {
                    true => (Vec::new(), vec![path.clone()]),
                    false => (vec![path.clone()], Vec::new()),
                };
                delete.dispatch(DeleteObjects {
                    bucket: bucket.clone(),
                    keys,
                    folders,
                });
            };
            view! {
                <ConfirmDialog label="Confirm deletion" confirm="Delete"
                    on_confirm=remove on_cancel=move |()| listing.deleting.set(None)
                    pending=delete.pending()>
                    <p data-testid="delete-summary">{what}</p>
                    {move || delete.value().get().and_then(Result::err).map(|error| view! { <ErrorPanel error /> })}
                </ConfirmDialog>
            }
        })
    };
    view! { {sharing} {deleting} }.into_any()
}

/// The most a share link may last: the store signs links for at most 7 days.
const LONGEST_LINK: u64 = 604_800;

/// A share link valid for as long as the user says, up to 7 days.
#[component]
fn ShareForm(bucket: String, key: String, sharing: RwSignal<Option<String>>) -> impl IntoView {
    let share = ServerAction::<ShareLink>::new();
    let name = leaf(&key).to_string();
    let amount_input = NodeRef::<leptos::html::Input>::new();
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        if let Some(input) = amount_input.get() {
            let _ = input.focus();
        }
    });
    let amount = RwSignal::new("1".to_string());
    let unit = RwSignal::new(3600u64);
    let seconds = move || {
        amount
            .read()
            .trim()
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(unit.get()))
            .filter(|s| (1..=LONGEST_LINK).contains(s))
    };
    let ask = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if let Some(expires_in) = seconds() {
            share.dispatch(ShareLink {
                bucket: bucket.clone(),
                key: key.clone(),
                expires_in,
            });
        }
    };
    view! {
        <form class="share-form" data-testid="share-form" aria-label=format!("Share link for {name}") on:submit=ask
            on:keydown=move |ev| if ev.key() == "Escape" { sharing.set(None) }>
            <strong class="mono">{name.clone()}</strong>
            <label>
                "Link valid for"
                <input type="number" min="1" name="expiry" class="short" prop:value=amount node_ref=amount_input
                    aria-invalid=move || seconds().is_none().to_string()
                    on:input=move |ev| amount.set(event_target_value(&ev)) />
            </label>
            <select aria-label="Expiry unit" on:change=move |ev| {
                unit.set(event_target_value(&ev).parse().unwrap_or(3600));
            }>
                <option value="60">"minutes"</option>
                <option value="3600" selected>"hours"</option>
                <option value="86400">"days"</option>
            </select>
            <button type="submit" class="small" disabled=move || seconds().is_none()>"Create link"</button>
            <button type="button" class="small" on:click=move |_| sharing.set(None)>"Close"</button>
            {move || seconds().is_none().then(|| view! {
                <p class="field-error" data-testid="expiry-error">"A link lasts from 1 minute to 7 days."</p>
            })}
            {move || share.value().get().map(|result| match result {
                Ok(url) => view! {
                    <a href=url.clone() target="_blank" rel="noopener" data-testid="share-link">"Open link"</a>
                    " " <CopyButton text=url />
                }.into_any(),
                Err(error) => view! { <ErrorPanel error /> }.into_any(),
            })}
        </form>
    }
    .into_any()
}

/// What a name suggests it holds, for its icon: the label drawn on it and its colour class.
fn kind_of(path: &str) -> (&'static str, &'static str) {
    if path.ends_with('/') {
        return ("", "folder");
    }
    let extension = path
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match extension.as_str() {
        "png" | "jpg" | "jpeg" | "gif" | "webp" | "bmp" | "svg" | "tif" | "tiff" => {
            ("IMG", "image")
        }
        "pdf" => ("PDF", "pdf"),
        "zip" | "gz" | "tgz" | "tar" | "bz2" | "xz" | "zst" | "7z" => ("ZIP", "archive"),
        "txt" | "md" | "log" | "out" | "err" | "csv" | "tsv" => ("TXT", "text"),
        "json" | "yaml" | "yml" | "xml" | "toml" | "sh" | "py" | "r" | "js" | "html" => {
            ("</>", "code")
        }
        "mp3" | "wav" | "flac" | "ogg" | "mp4" | "mkv" | "webm" | "avi" | "mov" => ("AV", "media"),
        _ => ("", "file"),
    }
}

#[component]
fn FileIcon(path: String) -> impl IntoView {
    let (label, kind) = kind_of(&path);
    let class = format!("file-icon {kind}");
    view! {
        <svg class=class data-kind=kind viewBox="0 0 20 20" width="20" height="20" aria-hidden="true">
            {if kind == "folder" {
                view! { <path d="M1.5 4.5h6l2 2h9v10h-17z" /> }.into_any()
            } else {
                view! {
                    <path d="M4 1.5h8l4 4v13h-12z" />
                    <text x="10" y="15" text-anchor="middle">{label}</text>
                }.into_any()
            }}
        </svg>
    }
}

#[component]
pub(super) fn Toolbar(
    bucket: String,
    prefix: String,
    selected: RwSignal<Vec<String>>,
    version: RwSignal<u64>,
) -> impl IntoView {
    let folder = RwSignal::new(String::new());
    let create = ServerAction::<CreateFolder>::new();
    let delete = ServerAction::<DeleteObjects>::new();
    let confirming = RwSignal::new(false);
    let created = StoredValue::new(String::new());
    super::super::widgets::toast_when(move || {
        matches!(create.value().get(), Some(Ok(())))
            .then(|| format!("Folder {} created", created.get_value()))
    });
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
        move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            let name = folder.get_untracked();
            if !name.trim().is_empty() {
                created.set_value(name.trim().to_string());
                create.dispatch(CreateFolder {
                    bucket: bucket.clone(),
                    folder: format!("{prefix}{}", name.trim()),
                });
            }
        }
    };
    let remove = move |()| {
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
            // A form, so Enter in the field creates the folder.
            <form class="row" on:submit=make>
                <label>
                    "New folder"
                    <input type="text" name="new-folder" prop:value=folder on:input=move |ev| folder.set(event_target_value(&ev)) />
                </label>
                <button type="submit" disabled=move || folder.read().trim().is_empty()>"Create folder"</button>
            </form>
            // `download` keeps the client-side router out of it: the server answers this link.
            <a class="button" data-testid="download-zip" download=zip_name
                class:disabled=move || selected.read().is_empty()
                aria-disabled=move || selected.read().is_empty().to_string()
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
                <ConfirmDialog label="Confirm deletion" confirm="Delete"
                    on_confirm=move |()| remove(()) on_cancel=move |()| confirming.set(false)
                    pending=delete.pending()>
                    <p data-testid="delete-summary">{what}</p>
                </ConfirmDialog>
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
