use leptos::prelude::*;

use super::widgets::{EmptyState, PageHeader};

#[component]
pub fn ServicesPage() -> impl IntoView {
    view! {
        <PageHeader title="Services" />
        <EmptyState title="No services yet">
            "A service runs a script in a container image on every file dropped into its input bucket."
        </EmptyState>
    }
}
