use std::time::Duration;

use leptos::prelude::*;
use leptos_router::NavigateOptions;
use leptos_router::components::A;
use leptos_router::hooks::{use_navigate, use_query_map};

use super::glance::GlancePanel;
use super::widgets::{EmptyState, LocalTime, Owner, PageHeader, loaded};
use super::workflow::WorkflowPanel;
use crate::api::services::{ServiceSummary, ServicesPage, list_services};

/// Typing pauses this long before the list is asked for again.
const FILTER_PAUSE: Duration = Duration::from_millis(300);

/// The list's address for a filter and page, so a filtered page can be reloaded and shared.
fn href(filter: &str, page: usize) -> String {
    let mut query = Vec::new();
    if !filter.is_empty() {
        query.push(format!("q={}", model::url::percent_encode(filter, b"")));
    }
    if page > 1 {
        query.push(format!("page={page}"));
    }
    match query.is_empty() {
        true => "/services".to_string(),
        false => format!("/services?{}", query.join("&")),
    }
}

/// The services the user may see, a page at a time, filtered on the server (`?q=`, `?page=`).
#[component]
pub fn ServicesPage() -> impl IntoView {
    let query = use_query_map();
    let filter = Memo::new(move |_| query.read().get("q").unwrap_or_default());
    let page = Memo::new(move |_| {
        query
            .read()
            .get("page")
            .and_then(|p| p.parse().ok())
            .unwrap_or(1usize)
    });
    // Bumped when a job the user sees changes: the job counts stay current.
    let version = RwSignal::new(0u64);
    #[cfg(feature = "hydrate")]
    super::widgets::listen_for_changes("/api/live/jobs".into(), "job", version);
    let services = Resource::new(
        move || (filter.get(), page.get(), version.get()),
        |(filter, page, _)| list_services(filter, page),
    );
    let typed = RwSignal::new(filter.get_untracked());
    let waiting = StoredValue::new(None::<TimeoutHandle>);
    let navigate = use_navigate();
    let on_input = move |ev| {
        let value = event_target_value(&ev);
        typed.set(value.clone());
        if let Some(handle) = waiting.get_value() {
            handle.clear();
        }
        let navigate = navigate.clone();
        let go = move || {
            let options = NavigateOptions {
                replace: true,
                scroll: false,
                ..Default::default()
            };
            navigate(&href(value.trim(), 1), options);
        };
        waiting.set_value(set_timeout_with_handle(go, FILTER_PAUSE).ok());
    };
    view! {
        <PageHeader title="Services">
            <input
                type="search"
                placeholder="Filter by name, image or owner"
                aria-label="Filter services"
                // The attribute for the page as sent, the property once it runs.
                value=filter.get_untracked()
                prop:value=typed
                on:input=on_input
            />
            <button type="button" on:click=move |_| services.refetch()>"Refresh"</button>
            <A href="/new-service" attr:class="button primary">"New service"</A>
        </PageHeader>
        <GlancePanel />
        {loaded(services, move |list| view! { <ServiceTable list filter=filter.get_untracked() /> })}
        <WorkflowPanel />
    }
}

#[component]
fn ServiceTable(list: ServicesPage, filter: String) -> impl IntoView {
    if list.visible == 0 {
        return view! {
            <EmptyState title="No services yet">
                "A service runs a script in a container image on every file dropped into its input bucket. "
                "Define one with an FDL file: "<code>"oscar-cli apply service.yaml"</code>", oscar-python's "
                <code>"create_service"</code>", "<code>"POST /system/services"</code>", or the "<strong>"New service"</strong>" button above."
            </EmptyState>
        }
        .into_any();
    }
    let first = (list.page - 1) * list.per_page;
    let pages = list.pages();
    let shown = match list.matching {
        0 => "No service matches the filter".to_string(),
        n if pages == 1 && n == list.visible => format!("{n} services"),
        n if pages == 1 => format!("{n} of {} services match", list.visible),
        n => {
            let range = format!("{}–{} of {n}", first + 1, first + list.services.len());
            match n == list.visible {
                true => format!("{range} services"),
                false => format!("{range} matching services"),
            }
        }
    };
    let step = |to: usize, label: &'static str, rel: &'static str| {
        let target = (1..=pages).contains(&to) && to != list.page;
        match target {
            true => view! { <A href=href(&filter, to) attr:rel=rel>{label}</A> }.into_any(),
            false => view! { <span class="muted">{label}</span> }.into_any(),
        }
    };
    let pager = (pages > 1).then(|| {
        view! {
            <nav class="pager" aria-label="Pages">
                {step(list.page.saturating_sub(1), "← Previous", "prev")}
                <span>{format!("Page {} of {pages}", list.page)}</span>
                {step(list.page + 1, "Next →", "next")}
            </nav>
        }
    });
    view! {
        <p class="muted" data-testid="services-shown">{shown}</p>
        <table class="table">
            <thead>
                <tr><th>"Name"</th><th>"Image"</th><th>"Inputs"</th><th>"Outputs"</th><th>"Jobs"</th><th>"Last job"</th><th>"Owner"</th></tr>
            </thead>
            <tbody>
                {list.services.into_iter().map(|s| view! { <ServiceRow service=s /> }).collect_view()}
            </tbody>
        </table>
        {pager}
    }
    .into_any()
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
            <td>{activity.last.map(|at| view! { <LocalTime at /> })}</td>
            <td><Owner id=service.owner /></td>
        </tr>
    }
}

#[cfg(test)]
mod tests {
    use super::href;

    #[test]
    fn list_addresses_carry_the_filter_and_page_only_when_set() {
        assert_eq!(href("", 1), "/services");
        assert_eq!(href("", 3), "/services?page=3");
        assert_eq!(href("a b&c", 1), "/services?q=a%20b%26c");
        assert_eq!(href("alpine", 2), "/services?q=alpine&page=2");
    }
}
