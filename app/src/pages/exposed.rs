//! An exposed service on its page: its state, where to open it, its instances and their log,
//! refreshed every few seconds, and the owner's stop, start and restart.

use leptos::prelude::*;

use super::widgets::{CopyButton, ErrorPanel, loaded, toast_when};
use crate::api::services::{ExposedLifecycle, exposed_service};
use model::services::ExposedView;

/// How often the panel reads the service's state again.
#[cfg(feature = "hydrate")]
const REFRESH: std::time::Duration = std::time::Duration::from_secs(3);

#[component]
pub fn ExposedPanel(name: String) -> impl IntoView {
    let tick = RwSignal::new(0u32);
    let act = ServerAction::<ExposedLifecycle>::new();
    let view_of = {
        let name = name.clone();
        Resource::new(
            move || (tick.get(), act.version().get()),
            move |_| exposed_service(name.clone()),
        )
    };
    #[cfg(feature = "hydrate")]
    if let Ok(handle) = set_interval_with_handle(move || tick.update(|t| *t += 1), REFRESH) {
        on_cleanup(move || handle.clear());
    }
    toast_when(move || match act.value().get() {
        Some(Ok(status)) => Some(format!(
            "Service {}: {}",
            status.service_name, status.summary.state
        )),
        _ => None,
    });
    let button = move |action: &'static str, label: &'static str| {
        let name = name.clone();
        view! {
            <button type="button" disabled=move || act.pending().get()
                on:click=move |_| { act.dispatch(ExposedLifecycle { name: name.clone(), action: action.into() }); }>
                {label}
            </button>
        }
    };
    view! {
        <section class="panel detail" data-testid="exposed">
            <h2>"Exposed"</h2>
            {loaded(view_of, |v| view! { <ExposedFacts view=v /> }.into_any())}
            <div class="page-actions">
                {button("stop", "Stop")} " " {button("start", "Start")} " " {button("restart", "Restart")}
            </div>
            {move || act.value().get().and_then(Result::err).map(|error| view! { <ErrorPanel error /> })}
        </section>
    }
}

#[component]
fn ExposedFacts(view: ExposedView) -> impl IntoView {
    let ready = view.instances.iter().filter(|i| i.ready).count();
    let count = view.instances.len();
    let log = view
        .log
        .iter()
        .map(|e| format!("{} {}", e.timestamp.as_deref().unwrap_or(""), e.message))
        .collect::<Vec<_>>()
        .join("\n");
    let access = if view.set_auth {
        "the service's token, or a signed-in user it is shared with"
    } else {
        "anyone (set_auth is off)"
    };
    let url = view.url.clone();
    view! {
        <dl class="facts">
            <dt>"State"</dt>
            <dd><span data-testid="exposed-state" class=format!("badge state-{}", view.status.state)>{view.status.state.clone()}</span>
                " " <span class="muted">{view.status.reason.clone()}</span></dd>
            <dt>"Address"</dt>
            <dd><a href=view.url.clone() target="_blank" rel="noopener" data-testid="exposed-open">"Open " {view.url.clone()}</a>
                " " <CopyButton text=url with_origin=true label="Copy URL" /></dd>
            <dt>"Who may call it"</dt><dd>{access}</dd>
            <dt>"Instances"</dt>
            <dd data-testid="exposed-instances">{format!("{ready} ready of {count}; {} restart(s)", view.restarts)}</dd>
        </dl>
        <h3>"Log"</h3>
        <pre class="log" data-testid="exposed-log">{log}</pre>
    }
}
