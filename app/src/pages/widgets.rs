//! Small pieces every page uses.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::AppError;

/// A page heading that also sets the tab title; children are the page's actions.
#[component]
pub fn PageHeader(
    title: &'static str,
    #[prop(optional)] children: Option<Children>,
) -> impl IntoView {
    view! {
        <Title text=title />
        <div class="page-header">
            <h1>{title}</h1>
            <div class="page-actions">{children.map(|actions| actions())}</div>
        </div>
    }
}

/// An error as the user sees it: the server's public message, nothing more.
#[component]
pub fn ErrorPanel(error: AppError) -> impl IntoView {
    view! {
        <div class="panel error" role="alert">
            <strong>"Something went wrong. "</strong>
            <span>{error.to_string()}</span>
        </div>
    }
}

/// What a list shows when it has nothing in it.
#[component]
pub fn EmptyState(title: &'static str, children: Children) -> impl IntoView {
    view! {
        <div class="panel empty">
            <h2>{title}</h2>
            <p>{children()}</p>
        </div>
    }
}

/// Copies `text` to the clipboard; with `with_origin`, prefixed by this server's address.
#[component]
pub fn CopyButton(
    #[prop(into)] text: Signal<String>,
    #[prop(optional)] with_origin: bool,
    #[prop(default = "Copy")] label: &'static str,
) -> impl IntoView {
    let copied = RwSignal::new(false);
    let copy = move |_| {
        let value = text.get_untracked();
        #[cfg(feature = "hydrate")]
        {
            let window = leptos::prelude::window();
            let origin = if with_origin {
                window.location().origin().unwrap_or_default()
            } else {
                String::new()
            };
            let _ = window
                .navigator()
                .clipboard()
                .write_text(&format!("{origin}{value}"));
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = (value, with_origin);
        copied.set(true);
    };
    view! {
        <button type="button" class="small" on:click=copy>
            {move || if copied.get() { "Copied" } else { label }}
        </button>
    }
}

/// A server resource as the user sees it: "Loading…", then the server's error or `render` of
/// the value (the previous value stays on screen while it reloads).
pub fn loaded<T, V>(
    resource: Resource<Result<T, AppError>>,
    render: impl Fn(T) -> V + Clone + Send + Sync + 'static,
) -> impl IntoView
where
    T: Clone + Send + Sync + serde::Serialize + serde::de::DeserializeOwned + 'static,
    V: IntoView + 'static,
{
    view! {
        <Transition fallback=Loading>
            {move || {
                let render = render.clone();
                Suspend::new(async move {
                    match resource.await {
                        Err(error) => view! { <ErrorPanel error /> }.into_any(),
                        Ok(value) => render(value).into_any(),
                    }
                })
            }}
        </Transition>
    }
}

#[component]
pub fn Loading() -> impl IntoView {
    view! { <p class="loading" aria-busy="true">"Loading…"</p> }
}

#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(options) = use_context::<leptos_axum::ResponseOptions>() {
        options.set_status(http::StatusCode::NOT_FOUND);
    }
    view! {
        <Title text="Not found" />
        <main class="centered">
            <div class="panel">
                <h1>"Page not found"</h1>
                <p>"There is nothing at this address. "<a href=super::HOME>"Go to Services"</a></p>
            </div>
        </main>
    }
}
