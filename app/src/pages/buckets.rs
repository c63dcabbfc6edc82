use leptos::prelude::*;
use leptos_router::components::A;

use super::bucket::human_size;
use super::widgets::{EmptyState, ErrorPanel, PageHeader, loaded};
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
    view! {
        <PageHeader title="Buckets">
            <button type="button" on:click=move |_| buckets.refetch()>"Refresh"</button>
        </PageHeader>
        <section class="panel detail">
            <div class="row">
                <label>
                    "New bucket"
                    <input type="text" name="bucket" placeholder="lowercase, 3-63 characters" prop:value=name
                        on:input=move |ev| name.set(event_target_value(&ev)) />
                </label>
                <button type="button" class="primary" disabled=move || name.read().trim().is_empty()
                    on:click=move |_| { create.dispatch(CreateBucket { name: name.get_untracked().trim().to_string() }); }>
                    "Create bucket"
                </button>
            </div>
            {move || create.value().get().and_then(Result::err).map(|error| view! { <ErrorPanel error /> })}
        </section>
        {move || confirming.get().map(|(bucket, objects)| {
            let doomed = bucket.clone();
            view! {
                <div class="confirm" role="alertdialog" aria-label="Confirm bucket deletion">
                    <p data-testid="bucket-delete-summary">
                        {format!("Delete bucket {bucket} and the {objects} object(s) in it?")}
                    </p>
                    <button type="button" on:click=move |_| confirming.set(None)>"Cancel"</button>
                    " "
                    <button type="button" class="danger-solid"
                        on:click=move |_| { delete.dispatch(DeleteBucket { name: doomed.clone() }); }>
                        "Delete"
                    </button>
                    {move || delete.value().get().and_then(Result::err).map(|error| view! { <ErrorPanel error /> })}
                </div>
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
                                    <td>{b.owner}</td>
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
