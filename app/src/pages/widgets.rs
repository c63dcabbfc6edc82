//! Small pieces every page uses.

use leptos::prelude::*;
use leptos_meta::Title;

use std::time::Duration;

use model::Timestamp;
use model::service::Visibility;

use crate::AppError;

/// A page heading that also sets the tab title; children are the page's actions.
#[component]
pub fn PageHeader(
    #[prop(into)] title: String,
    #[prop(optional)] children: Option<Children>,
) -> impl IntoView {
    view! {
        <Title text=title.clone() />
        <div class="page-header">
            <h1>{title}</h1>
            <div class="page-actions">{children.map(|actions| actions())}</div>
        </div>
    }
}

/// An error as the user sees it: the server's public message, nothing more. Only a server
/// failure says something went wrong; a refusal (4xx) says what to change and nothing else.
#[component]
pub fn ErrorPanel(error: AppError) -> impl IntoView {
    let failed = error.status() >= 500;
    view! {
        <div class="panel error" role="alert">
            {failed.then_some(view! { <strong>"Something went wrong. "</strong> })}
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

/// Asks before something that cannot be undone, saying what goes (the children). It takes
/// the focus on Cancel, so a stray Enter does nothing, and Escape cancels.
#[component]
pub fn ConfirmDialog(
    label: &'static str,
    /// The confirming button's text, e.g. "Delete".
    #[prop(into)]
    confirm: String,
    #[prop(into)] on_confirm: Callback<()>,
    #[prop(into)] on_cancel: Callback<()>,
    #[prop(optional, into)] pending: Signal<bool>,
    children: Children,
) -> impl IntoView {
    let cancel = NodeRef::<leptos::html::Button>::new();
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        if let Some(button) = cancel.get() {
            let _ = button.focus();
        }
    });
    view! {
        <div class="confirm" role="alertdialog" aria-label=label
            on:keydown=move |ev| if ev.key() == "Escape" { on_cancel.run(()) }>
            {children()}
            <button type="button" node_ref=cancel on:click=move |_| on_cancel.run(())>"Cancel"</button>
            " "
            <button type="button" class="danger-solid" disabled=move || pending.get()
                on:click=move |_| on_confirm.run(())>{confirm}</button>
        </div>
    }
}

/// Who may use a service or bucket besides its owner; what each level means is in its text.
#[component]
pub fn VisibilitySelect(
    value: RwSignal<Visibility>,
    /// The id of the element that explains an error of it.
    #[prop(optional)]
    described_by: &'static str,
) -> impl IntoView {
    view! {
        <select aria-describedby=(!described_by.is_empty()).then_some(described_by) on:change=move |ev| {
            if let Some(v) = Visibility::parse(&event_target_value(&ev)) {
                value.set(v);
            }
        }>
            {[(Visibility::Private, "private: you only"), (Visibility::Restricted, "restricted: you and the users below"), (Visibility::Public, "public: every signed-in user")]
                .into_iter()
                .map(|(v, text)| view! { <option value=v.as_str() selected=value.get_untracked() == v>{text}</option> })
                .collect_view()}
        </select>
    }
}

/// Moves through pages of a newest-first table: `pages` holds where each page shown starts
/// (the last is the current one), `next` where the next older page would.
#[component]
pub fn Pager(pages: RwSignal<Vec<String>>, next: Option<String>) -> impl IntoView {
    let newer = move || pages.read().is_empty();
    let older = next.clone();
    view! {
        <nav class="pager" aria-label="Pages">
            <button type="button" class="small" disabled=newer on:click=move |_| pages.update(|p| { p.pop(); })>
                "← Newer"
            </button>
            <span class="muted">{move || format!("Page {}", pages.read().len() + 1)}</span>
            <button type="button" class="small" disabled=next.is_none() on:click=move |_| {
                if let Some(after) = older.clone() {
                    pages.update(|p| p.push(after));
                }
            }>"Older →"</button>
        </nav>
    }
}

/// False until the page runs in the browser. Submit buttons wait for it: a click before the
/// handlers exist would send the form as a plain GET and lose what was typed (a disabled
/// default button also stops Enter from submitting).
pub fn hydrated() -> Signal<bool> {
    let ready = RwSignal::new(false);
    Effect::new(move |_| ready.set(true));
    ready.into()
}

/// The signed-in user, loaded once by the layout and shared with the pages.
pub type CurrentUser = Resource<Result<Option<model::auth::SessionUser>, AppError>>;

/// Who owns something, as people know themselves: the reader's own things show their name
/// (the admin owns as `cluster_admin`, upstream's id, but signs in as the username); the
/// recorded id stays on hover.
#[component]
pub fn Owner(id: String) -> impl IntoView {
    let me = use_context::<CurrentUser>();
    let title = id.clone();
    let shown = move || {
        let mine = me
            .and_then(|user| user.get())
            .and_then(|user| user.ok().flatten())
            .filter(|user| user.subject == id);
        match mine {
            Some(user) => format!("{} (you)", user.name),
            None => id.clone(),
        }
    };
    view! { <span title=title>{shown}</span> }
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

/// A time as people read it: their local time and how long ago, UTC on hover. The server
/// cannot know the reader's time zone, so it renders UTC (and hydration agrees); the browser
/// then shows local time.
#[component]
pub fn LocalTime(at: Timestamp) -> impl IntoView {
    let utc = format!("{} UTC", format_time(at));
    let shown = RwSignal::new(utc.clone());
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(at.millis() as f64));
        // Minutes from local time to UTC, for that date (daylight saving included).
        let offset = date.get_timezone_offset() as i64 * 60_000;
        let local = Timestamp::from_millis(at.millis() - offset);
        let now = Timestamp::from_millis(js_sys::Date::now() as i64);
        shown.set(format!("{} ({})", format_time(local), ago(now.since(at))));
    });
    let machine = format!("{}Z", format_time(at).replace(' ', "T"));
    view! { <time datetime=machine title=utc>{shown}</time> }
}

/// How long ago, roughly: `just now`, `40 s ago`, `3 min ago`, `5 h ago`, `2 days ago`. Only
/// the browser knows the reader's clock.
#[cfg(any(feature = "hydrate", test))]
pub fn ago(elapsed: Duration) -> String {
    match elapsed.as_secs() {
        0..5 => "just now".into(),
        s @ 5..60 => format!("{s} s ago"),
        s @ 60..3600 => format!("{} min ago", s / 60),
        s @ 3600..86_400 => format!("{} h ago", s / 3600),
        s => match s / 86_400 {
            1 => "1 day ago".into(),
            days => format!("{days} days ago"),
        },
    }
}

/// A time as `YYYY-MM-DD HH:MM:SS`, the same on the server and in the browser so hydration
/// agrees.
pub fn format_time(time: Timestamp) -> String {
    let t = time.civil();
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

/// A duration, short: `850 ms`, `12.3 s`, `4 min 05 s`.
pub fn format_duration(duration: Duration) -> String {
    let ms = duration.as_millis();
    match ms {
        ..1000 => format!("{ms} ms"),
        1000..60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        _ => format!("{} min {:02} s", ms / 60_000, ms % 60_000 / 1000),
    }
}

/// What to do with the data of one named server-sent event.
#[cfg(feature = "hydrate")]
pub type EventHandler = (&'static str, Box<dyn FnMut(String)>);

/// Bumps `version` (so tables reload) when the change stream at `url` sends an `event`, at most
/// a few times a second.
#[cfg(feature = "hydrate")]
pub fn listen_for_changes(url: String, event: &'static str, version: RwSignal<u64>) {
    use std::cell::Cell;
    use std::rc::Rc;
    use std::time::Duration;

    let scheduled = Rc::new(Cell::new(false));
    let on_change = Box::new(move |_: String| {
        if scheduled.replace(true) {
            return;
        }
        let scheduled = scheduled.clone();
        set_timeout(
            move || {
                scheduled.set(false);
                version.update(|v| *v += 1);
            },
            Duration::from_millis(250),
        );
    });
    if let Some(source) = LiveSource::open(&url, vec![(event, on_change)]) {
        source.close_on_cleanup();
    }
}

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

/// Asks before a link or the browser leaves the page while `dirty()` says there are changes
/// not saved (a save navigates by itself, unasked).
#[cfg(feature = "hydrate")]
pub fn guard_unsaved(dirty: impl Fn() -> bool + Clone + Send + Sync + 'static) {
    use send_wrapper::SendWrapper;
    use wasm_bindgen::JsCast;
    use wasm_bindgen::closure::Closure;

    let unload = {
        let dirty = dirty.clone();
        window_event_listener(leptos::ev::beforeunload, move |ev| {
            if dirty() {
                ev.prevent_default();
                ev.set_return_value("");
            }
        })
    };
    // Before the router's own handler (capture on the document): a declined link goes nowhere.
    let on_click = Closure::<dyn Fn(web_sys::MouseEvent)>::new(move |ev: web_sys::MouseEvent| {
        let link = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
            .and_then(|e| e.closest("a[href]").ok().flatten());
        let stay = link.is_some()
            && dirty()
            && !window()
                .confirm_with_message("Leave this page? Your changes are not saved.")
                .unwrap_or(true);
        if stay {
            ev.prevent_default();
            ev.stop_immediate_propagation();
        }
    });
    let document = document();
    let _ = document.add_event_listener_with_callback_and_bool(
        "click",
        on_click.as_ref().unchecked_ref(),
        true,
    );
    let listener = SendWrapper::new((document, on_click));
    on_cleanup(move || {
        unload.remove();
        let (document, on_click) = listener.take();
        let _ = document.remove_event_listener_with_callback_and_bool(
            "click",
            on_click.as_ref().unchecked_ref(),
            true,
        );
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_durations_read_well() {
        let at = Timestamp::from_millis;
        assert_eq!(format_time(at(0)), "1970-01-01 00:00:00");
        assert_eq!(format_time(at(1_767_261_600_123)), "2026-01-01 10:00:00");
        assert_eq!(format_time(at(1_709_164_800_000)), "2024-02-29 00:00:00");
        assert_eq!(ago(Duration::from_secs(2)), "just now");
        assert_eq!(ago(Duration::from_secs(40)), "40 s ago");
        assert_eq!(ago(Duration::from_secs(185)), "3 min ago");
        assert_eq!(ago(Duration::from_secs(5 * 3600 + 10)), "5 h ago");
        assert_eq!(ago(Duration::from_secs(86_400 + 5)), "1 day ago");
        assert_eq!(ago(Duration::from_secs(3 * 86_400)), "3 days ago");
        assert_eq!(format_duration(Duration::from_millis(850)), "850 ms");
        assert_eq!(format_duration(Duration::from_millis(12_340)), "12.3 s");
        assert_eq!(
            format_duration(Duration::from_millis(245_000)),
            "4 min 05 s"
        );
    }
}

/// Short confirmations of what just happened ("Service x created"), shown for a few seconds in
/// a live region: an action that navigates away, or changes little on the page, still says
/// it worked. Provided by the layout; components take it with [`Toasts::get`] when created.
#[derive(Clone, Copy)]
pub struct Toasts {
    shown: RwSignal<Vec<(u64, String)>>,
    next: StoredValue<u64>,
}

/// How long a toast stays.
const TOAST_FOR: Duration = Duration::from_secs(5);

impl Toasts {
    pub fn provide() -> Self {
        let toasts = Self {
            shown: RwSignal::new(Vec::new()),
            next: StoredValue::new(0),
        };
        provide_context(toasts);
        toasts
    }

    /// The layout's toasts (pages outside it, such as the login page, have none).
    pub fn get() -> Option<Self> {
        use_context()
    }

    pub fn say(self, message: impl Into<String>) {
        let id = self.next.get_value();
        self.next.set_value(id + 1);
        self.shown.update(|shown| shown.push((id, message.into())));
        set_timeout(
            move || self.shown.update(|shown| shown.retain(|(i, _)| *i != id)),
            TOAST_FOR,
        );
    }
}

/// Says `message` once each time `done` turns true (an action that succeeded).
pub fn toast_when(done: impl Fn() -> Option<String> + 'static) {
    let Some(toasts) = Toasts::get() else {
        return;
    };
    Effect::new(move |_| {
        if let Some(message) = done() {
            toasts.say(message);
        }
    });
}

/// A live region without the `status` role: the page's own status messages keep theirs.
#[component]
pub fn ToastRegion(toasts: Toasts) -> impl IntoView {
    view! {
        <div class="toasts" aria-live="polite" data-testid="toasts">
            <For each=move || toasts.shown.get() key=|(id, _)| *id let:toast>
                <div class="toast">{toast.1}</div>
            </For>
        </div>
    }
}
