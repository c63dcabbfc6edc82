//! "Start from an example" on the New service page: the ready services of `examples/`, each
//! created in one click or opened in the YAML tab to change first.

use leptos::prelude::*;
use leptos_router::hooks::use_navigate;
use model::services::Example;

use super::widgets::{ErrorPanel, toast_when};
use crate::api::services::{ApplyFdl, service_examples};

#[component]
pub fn ExampleGallery(
    open_in_yaml: impl Fn(String) + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let examples = Resource::new(|| (), |_| service_examples());
    let create = ServerAction::<ApplyFdl>::new();
    let navigate = use_navigate();
    // Created: to the first service of the example, which links the others.
    Effect::new(move |_| {
        if let Some(Ok(applied)) = create.value().get()
            && let Some(first) = applied.first()
        {
            navigate(&format!("/services/{}", first.name), Default::default());
        }
    });
    toast_when(move || {
        let applied = create.value().get().and_then(Result::ok)?;
        let names: Vec<String> = applied.into_iter().map(|a| a.name).collect();
        Some(format!("Created {}", names.join(", ")))
    });
    let card = move |example: Example| {
        let Example {
            title,
            description,
            services,
            fdl,
            file,
        } = example;
        let for_create = fdl.clone();
        view! {
            <li class="example" data-example=file>
                <h3>{title}</h3>
                <p>{description}</p>
                <p class="muted">"Services: "<span class="mono">{services.join(", ")}</span></p>
                <div class="row">
                    <button type="button" class="primary" disabled=move || create.pending().get()
                        on:click=move |_| {
                            create.dispatch(ApplyFdl {
                                fdl: for_create.clone(),
                                script_name: None,
                                script: None,
                                files: Vec::new(),
                                update_existing: false,
                            });
                        }>"Create"</button>
                    <button type="button" on:click=move |_| open_in_yaml(fdl.clone())>"Open in YAML"</button>
                </div>
            </li>
        }
    };
    view! {
        <details class="panel examples" data-testid="examples">
            <summary>"Start from an example"</summary>
            <Transition fallback=|| ()>
                {move || Suspend::new(async move {
                    examples.await.map(|all| view! {
                        <ul class="plain example-list">{all.into_iter().map(card).collect_view()}</ul>
                    })
                })}
            </Transition>
            {move || create.value().get().and_then(Result::err).map(|error| view! { <ErrorPanel error /> })}
        </details>
    }
    .into_any()
}
