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

/// A time (milliseconds since the epoch) as `YYYY-MM-DD HH:MM:SS` UTC, the same on the
/// server and in the browser so hydration agrees.
pub fn format_time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// A duration in milliseconds, short: `850 ms`, `12.3 s`, `4 min 05 s`.
pub fn format_duration(ms: i64) -> String {
    match ms {
        ..1000 => format!("{ms} ms"),
        1000..60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        _ => format!("{} min {:02} s", ms / 60_000, ms % 60_000 / 1000),
    }
}

/// What to do with the data of one named server-sent event.
#[cfg(feature = "hydrate")]
pub type EventHandler = (&'static str, Box<dyn FnMut(String)>);

/// A server-sent event stream the page listens to while it is shown; closed on cleanup.
#[cfg(feature = "hydrate")]
pub struct LiveSource {
    source: web_sys::EventSource,
    _handlers: Vec<wasm_bindgen::closure::Closure<dyn FnMut(web_sys::MessageEvent)>>,
}

#[cfg(feature = "hydrate")]
impl LiveSource {
    /// Opens `url` and calls each handler with the data of its named events.
    pub fn open(url: &str, handlers: Vec<EventHandler>) -> Option<Self> {
        use wasm_bindgen::JsCast;
        let source = web_sys::EventSource::new(url).ok()?;
        let handlers = handlers
            .into_iter()
            .map(|(event, mut handle)| {
                let closure =
                    wasm_bindgen::closure::Closure::<dyn FnMut(web_sys::MessageEvent)>::new(
                        move |message: web_sys::MessageEvent| {
                            handle(message.data().as_string().unwrap_or_default());
                        },
                    );
                let _ = source
                    .add_event_listener_with_callback(event, closure.as_ref().unchecked_ref());
                closure
            })
            .collect();
        Some(Self {
            source,
            _handlers: handlers,
        })
    }

    pub fn close(&self) {
        self.source.close();
    }

    /// Keeps the stream open until the current component is cleaned up.
    pub fn close_on_cleanup(self) {
        let guard = send_wrapper::SendWrapper::new(self);
        on_cleanup(move || guard.close());
    }
}

#[cfg(test)]
mod tests {
    use super::{format_duration, format_time};

    #[test]
    fn times_and_durations_read_well() {
        assert_eq!(format_time(0), "1970-01-01 00:00:00");
        assert_eq!(format_time(1_767_261_600_123), "2026-01-01 10:00:00");
        assert_eq!(format_time(1_709_164_800_000), "2024-02-29 00:00:00");
        assert_eq!(format_duration(850), "850 ms");
        assert_eq!(format_duration(12_340), "12.3 s");
        assert_eq!(format_duration(245_000), "4 min 05 s");
    }
}
