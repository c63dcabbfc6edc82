use leptos::prelude::*;
use leptos_router::components::A;

use super::bucket::human_size;
use super::widgets::{
    ConfirmDialog, EmptyState, ErrorPanel, Owner, PageHeader, VisibilitySelect, loaded,
};
use crate::api::buckets::{BucketOverview, CreateBucket, DeleteBucket, ShareBucket, list_buckets};
use model::service::Visibility;
use model::url::percent_encode;

/// The user's buckets (every bucket for the admin): owner, the service that made it, who it
/// is shared with, size; create, share and delete.
#[component]
pub fn BucketsPage() -> impl IntoView {
    let create = ServerAction::<CreateBucket>::new();
    let delete = ServerAction::<DeleteBucket>::new();
    // Bumped when a bucket's sharing is saved.
    let shared = RwSignal::new(0u64);
    let buckets = Resource::new(
        move || (create.version().get(), delete.version().get(), shared.get()),
        |_| list_buckets(),
    );
    let sharing = RwSignal::new(None::<BucketOverview>);
    super::widgets::toast_when(move || (shared.get() > 0).then(|| "Sharing saved".to_string()));
    let name = RwSignal::new(String::new());
    let confirming = RwSignal::new(None::<(String, i64)>);
    Effect::new(move |_| {
        if matches!(create.value().get(), Some(Ok(()))) {
            name.set(String::new());
        }
    });
    Effect::new(move |_| {
        if matches!(delete.value().get(), Some(Ok(()))) {
            confirming.set(None);
        }
    });
    // The names asked for, for the toasts (an action forgets its input once it is done).
    let (created, deleted) = (
        StoredValue::new(String::new()),
        StoredValue::new(String::new()),
    );
    super::widgets::toast_when(move || {
        matches!(create.value().get(), Some(Ok(())))
            .then(|| format!("Bucket {} created", created.get_value()))
    });
    super::widgets::toast_when(move || {
        matches!(delete.value().get(), Some(Ok(())))
            .then(|| format!("Bucket {} deleted", deleted.get_value()))
    });
    view! {
        <PageHeader title="Buckets">
            <button type="button" on:click=move |_| buckets.refetch()>"Refresh"</button>
        </PageHeader>
        <section class="panel detail">
            // A form, so Enter in the field creates the bucket.
            <form class="row" on:submit=move |ev: leptos::ev::SubmitEvent| {
                ev.prevent_default();
                let wanted = name.get_untracked().trim().to_string();
                if !wanted.is_empty() {
                    created.set_value(wanted.clone());
                    create.dispatch(CreateBucket { name: wanted });
                }
            }>
                <label>
                    "New bucket"
                    <input type="text" name="bucket" placeholder="lowercase, 3-63 characters" prop:value=name
                        on:input=move |ev| name.set(event_target_value(&ev)) />
                </label>
                <button type="submit" class="primary" disabled=move || name.read().trim().is_empty()>
                    "Create bucket"
                </button>
            </form>
            {move || create.value().get().and_then(Result::err).map(|error| view! { <ErrorPanel error /> })}
        </section>
        {move || confirming.get().map(|(bucket, objects)| {
            let doomed = bucket.clone();
            view! {
                <ConfirmDialog label="Confirm bucket deletion" confirm="Delete"
                    on_confirm=move |()| {
                        deleted.set_value(doomed.clone());
                        delete.dispatch(DeleteBucket { name: doomed.clone() });
                    }
                    on_cancel=move |()| confirming.set(None) pending=delete.pending()>
                    <p data-testid="bucket-delete-summary">
                        {format!("Delete bucket {bucket} and the {objects} object(s) in it?")}
                    </p>
                    {move || delete.value().get().and_then(Result::err).map(|error| view! { <ErrorPanel error /> })}
                </ConfirmDialog>
            }
        })}
        {move || sharing.get().map(|bucket| view! { <SharingDialog bucket sharing shared /> })}
        {loaded(buckets, move |list| {
            if list.is_empty() {
                return view! {
                    <EmptyState title="No buckets yet">
                        "Buckets hold the files services read and write. Create one above, or create a service: its input and output buckets appear here."
                    </EmptyState>
                }
                .into_any();
            }
            view! {
                <table class="table" data-testid="buckets">
                    <thead><tr><th>"Name"</th><th>"Service"</th><th>"Owner"</th><th>"Visibility"</th><th>"Objects"</th><th>"Size"</th><th></th></tr></thead>
                    <tbody>
                        {list.into_iter().map(|b| {
                            let href = format!("/buckets/{}", percent_encode(&b.name, b""));
                            let ask = (b.name.clone(), b.objects);
                            let (row, label) = (b.name.clone(), b.name.clone());
                            // Buckets made for a service are shared as the service is.
                            let shareable = (b.manageable && b.service.is_none()).then(|| b.clone());
                            let shared_with = match b.visibility.as_str() {
                                "restricted" if !b.allowed_users.is_empty() => format!("restricted: {}", b.allowed_users.join(", ")),
                                _ => b.visibility.clone(),
                            };
                            view! {
                                <tr data-bucket=row>
                                    <td><A href=href>{label}</A></td>
                                    <td>{b.service.clone().map(|s| {
                                        let href = format!("/services/{}", percent_encode(&s, b""));
                                        view! { <A href=href>{s}</A> }
                                    })}</td>
                                    <td><Owner id=b.owner /></td>
                                    <td data-testid="visibility">{shared_with}</td>
                                    <td>{b.objects}</td>
                                    <td>{human_size(b.size)}</td>
                                    <td class="row">
                                        {shareable.map(|bucket| view! {
                                            <button type="button" class="small" on:click=move |_| sharing.set(Some(bucket.clone()))>"Sharing"</button>
                                        })}
                                        {b.manageable.then(|| view! {
                                            <button type="button" class="small" on:click=move |_| confirming.set(Some(ask.clone()))>"Delete"</button>
                                        })}
                                    </td>
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
            }
            .into_any()
        })}
    }
}

/// Who may use a bucket besides its owner: nobody, the users listed, or every signed-in user.
#[component]
fn SharingDialog(
    bucket: BucketOverview,
    sharing: RwSignal<Option<BucketOverview>>,
    shared: RwSignal<u64>,
) -> impl IntoView {
    // Its own action: an error shown for one bucket is not shown again for the next.
    let share = ServerAction::<ShareBucket>::new();
    Effect::new(move |_| {
        if matches!(share.value().get(), Some(Ok(()))) {
            sharing.set(None);
            shared.update(|n| *n += 1);
        }
    });
    // Opened above the table: the focus goes to it.
    let form = NodeRef::<leptos::html::Form>::new();
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        use wasm_bindgen::JsCast;
        let first = form
            .get()
            .and_then(|f| f.query_selector("select").ok().flatten())
            .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok());
        if let Some(first) = first {
            let _ = first.focus();
        }
    });
    let visibility = RwSignal::new(Visibility::parse(&bucket.visibility).unwrap_or_default());
    let users = RwSignal::new(bucket.allowed_users.join("\n"));
    let name = bucket.name.clone();
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        share.dispatch(ShareBucket {
            name: name.clone(),
            visibility: visibility.get_untracked().as_str().to_string(),
            allowed_users: users
                .get_untracked()
                .split(['\n', ','])
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .map(String::from)
                .collect(),
        });
    };
    view! {
        <form class="panel detail" role="dialog" aria-label="Bucket sharing" data-testid="sharing-dialog" on:submit=save node_ref=form
            on:keydown=move |ev| if ev.key() == "Escape" { sharing.set(None) }>
            <h2>{format!("Sharing of {}", bucket.name)}</h2>
            <label>
                "Visibility"
                <VisibilitySelect value=visibility />
            </label>
            <label>
                "Allowed users (user ids, one per line; for restricted)"
                <textarea class="code" rows="3" spellcheck="false" prop:value=users
                    on:input=move |ev| users.set(event_target_value(&ev))></textarea>
            </label>
            <p class="muted">"They may list, download, upload and share links; they replace or delete only what they uploaded."</p>
            <div class="row">
                <button type="submit" class="primary" disabled=move || share.pending().get()>"Save sharing"</button>
                <button type="button" on:click=move |_| sharing.set(None)>"Cancel"</button>
            </div>
            {move || share.value().get().and_then(Result::err).map(|error| view! { <ErrorPanel error /> })}
        </form>
    }
}
