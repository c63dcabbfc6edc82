use leptos::prelude::*;
use leptos_router::components::A;

use super::widgets::{EmptyState, PageHeader, loaded};
use crate::api::buckets::list_buckets;

#[component]
pub fn BucketsPage() -> impl IntoView {
    let buckets = Resource::new(|| (), |_| list_buckets());
    view! {
        <PageHeader title="Buckets">
            <button type="button" on:click=move |_| buckets.refetch()>"Refresh"</button>
        </PageHeader>
        {loaded(buckets, |list| {
            if list.is_empty() {
                return view! {
                    <EmptyState title="No buckets yet">
                        "Buckets hold the files services read and write."
                    </EmptyState>
                }
                .into_any();
            }
            view! {
                <table class="table">
                    <thead><tr><th>"Name"</th><th>"Created"</th></tr></thead>
                    <tbody>
                        {list.into_iter().map(|b| view! {
                            <tr>
                                <td><A href=format!("/buckets/{}", crate::url::percent_encode(&b.name, b""))>{b.name.clone()}</A></td>
                                <td>{b.created.unwrap_or_default()}</td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            }
            .into_any()
        })}
    }
}
