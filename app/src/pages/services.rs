use leptos::prelude::*;
use leptos_router::components::A;

use super::widgets::{EmptyState, PageHeader, format_time, loaded};
use crate::api::services::{ServiceSummary, list_services};

#[component]
pub fn ServicesPage() -> impl IntoView {
    let services = Resource::new(|| (), |_| list_services());
    let filter = RwSignal::new(String::new());
    view! {
        <PageHeader title="Services">
            <input
                type="search"
                placeholder="Filter by name or image"
                aria-label="Filter services"
                bind:value=filter
            />
            <button type="button" on:click=move |_| services.refetch()>"Refresh"</button>
            <A href="/new-service" attr:class="button primary">"New service"</A>
        </PageHeader>
        {loaded(services, move |list| {
            if list.is_empty() {
                return view! {
                    <EmptyState title="No services yet">
                        "A service runs a script in a container image on every file dropped into its input bucket. "
                        "Define one with an FDL file: "<code>"oscar-cli apply service.yaml"</code>", oscar-python's "
                        <code>"create_service"</code>", "<code>"POST /system/services"</code>", or the "<strong>"New service"</strong>" button above."
                    </EmptyState>
                }
                .into_any();
            }
            let rows = move || {
                let wanted = filter.get().trim().to_lowercase();
                list.iter()
                    .filter(|s| {
                        wanted.is_empty()
                            || s.name.to_lowercase().contains(&wanted)
                            || s.image.to_lowercase().contains(&wanted)
                    })
                    .cloned()
                    .map(|s| view! { <ServiceRow service=s /> })
                    .collect_view()
            };
            view! {
                <table class="table">
                    <thead>
                        <tr><th>"Name"</th><th>"Image"</th><th>"Inputs"</th><th>"Outputs"</th><th>"Jobs"</th><th>"Last job"</th><th>"Owner"</th></tr>
                    </thead>
                    <tbody>{rows}</tbody>
                </table>
            }
            .into_any()
        })}
    }
}

#[component]
fn ServiceRow(service: ServiceSummary) -> impl IntoView {
    let href = format!("/services/{}", service.name);
    let activity = service.activity;
    let mut busy = Vec::new();
    if activity.running > 0 {
        busy.push(format!("{} running", activity.running));
    }
    if activity.failed > 0 {
        busy.push(format!("{} failed", activity.failed));
    }
    let jobs = match busy.is_empty() {
        true => activity.total.to_string(),
        false => format!("{} ({})", activity.total, busy.join(", ")),
    };
    view! {
        <tr>
            <td><A href=href>{service.name}</A></td>
            <td class="mono">{service.image}</td>
            <td class="mono">{service.inputs.join(", ")}</td>
            <td class="mono">{service.outputs.join(", ")}</td>
            <td data-testid="job-counts">{jobs}</td>
            <td>{activity.last.map(format_time).unwrap_or_default()}</td>
            <td>{service.owner}</td>
        </tr>
    }
}
