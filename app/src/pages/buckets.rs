use leptos::prelude::*;
use leptos_router::components::A;

use super::bucket::human_size;
use super::widgets::{ConfirmDialog, EmptyState, ErrorPanel, Owner, PageHeader, loaded};
use crate::api::buckets::{CreateBucket, DeleteBucket, list_buckets};
use model::url::percent_encode;

/// The user's buckets (every bucket for the admin): owner, the service that made it, size;
/// create and delete.
#[component]
pub fn BucketsPage() -> impl IntoView {
    let create = ServerAction::<CreateBucket>::new();
    let delete = ServerAction::<DeleteBucket>::new();
    let buckets = Resource::new(
        move || (create.version().get(), delete.version().get()),
        |_| list_buckets(),
    );
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
                            view! {
                                <tr data-bucket=row>
                                    <td><A href=href>{label}</A></td>
                                    <td>{b.service.clone().map(|s| {
                                        let href = format!("/services/{}", percent_encode(&s, b""));
                                        view! { <A href=href>{s}</A> }
                                    })}</td>
                                    <td><Owner id=b.owner /></td>
                                    <td>{b.visibility}</td>
                                    <td>{b.objects}</td>
                                    <td>{human_size(b.size)}</td>
                                    <td><button type="button" class="small" on:click=move |_| confirming.set(Some(ask.clone()))>"Delete"</button></td>
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
