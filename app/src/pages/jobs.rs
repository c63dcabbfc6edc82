use leptos::prelude::*;

use super::widgets::{EmptyState, PageHeader};

#[component]
pub fn JobsPage() -> impl IntoView {
    view! {
        <PageHeader title="Jobs" />
        <EmptyState title="No jobs yet">
            "Each file uploaded to a service's input starts a job; its status and log appear here."
        </EmptyState>
    }
}
