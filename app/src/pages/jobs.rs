use leptos::prelude::*;
use leptos_router::components::A;

use super::service_jobs::JobCells;
use super::widgets::{EmptyState, ErrorPanel, PageHeader};
use crate::api::jobs::recent_jobs;

/// The newest jobs of every service, updated live; each links to its service's page, where
/// its log is.
#[component]
pub fn JobsPage() -> impl IntoView {
    let version = RwSignal::new(0u64);
    let jobs = Resource::new(move || version.get(), |_| recent_jobs());
    #[cfg(feature = "hydrate")]
    super::widgets::listen_for_changes("/api/live/jobs".into(), version);
    let table = move || {
        jobs.get().map(|result| match result {
            Err(error) => view! { <ErrorPanel error /> }.into_any(),
            Ok(list) if list.is_empty() => view! {
                <EmptyState title="No jobs yet">
                    "Each file uploaded to a service's input folder starts a job; its status and log appear here and on the service's page."
                </EmptyState>
            }
            .into_any(),
            Ok(list) => view! {
                <section class="panel">
                    <table class="table jobs" data-testid="all-jobs">
                        <thead><tr>
                            <th>"Service"</th><th>"Job"</th><th>"State"</th><th>"Trigger"</th><th>"Input"</th>
                            <th>"Created"</th><th>"Duration"</th><th>"Exit"</th>
                        </tr></thead>
                        <tbody>
                            {list.into_iter().map(|job| {
                                let service = job.service.clone();
                                view! {
                                    <tr data-job=job.name.clone() data-state=job.state.as_str()>
                                        <td><A href=format!("/services/{}", model::url::percent_encode(&service, b""))>{service.clone()}</A></td>
                                        <td class="mono">{job.name.clone()}</td>
                                        <JobCells job=job.clone() />
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                </section>
            }
            .into_any(),
        })
    };
    view! {
        <PageHeader title="Jobs" />
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>{table}</Transition>
    }
}
