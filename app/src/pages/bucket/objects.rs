//! The rows of the object table and the toolbar above it: selection, new folders, deletion,
//! ZIP downloads and share links.

use leptos::prelude::*;

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

#[component]
pub(super) fn ObjectRow(
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
            <td>{object.modified.map(|at| view! { <LocalTime at /> })}</td>
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
