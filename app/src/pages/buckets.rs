use leptos::prelude::*;

use super::widgets::{EmptyState, ErrorPanel, Loading, PageHeader};
use crate::api::buckets::list_buckets;

#[component]
pub fn BucketsPage() -> impl IntoView {
    let buckets = Resource::new(|| (), |_| list_buckets());
    view! {
        <PageHeader title="Buckets">
            <button type="button" on:click=move |_| buckets.refetch()>"Refresh"</button>
        </PageHeader>
        <Transition fallback=Loading>
            {move || Suspend::new(async move {
                match buckets.await {
                    Err(error) => view! { <ErrorPanel error /> }.into_any(),
                    Ok(list) if list.is_empty() => view! {
                        <EmptyState title="No buckets yet">
                            "Buckets hold the files services read and write."
                        </EmptyState>
                    }.into_any(),
                    Ok(list) => view! {
                        <table class="table">
                            <thead><tr><th>"Name"</th><th>"Created"</th></tr></thead>
                            <tbody>
                                {list.into_iter().map(|b| view! {
                                    <tr>
                                        <td>{b.name}</td>
                                        <td>{b.created.unwrap_or_default()}</td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any(),
                }
            })}
        </Transition>
    }
}
