use leptos::prelude::*;
use leptos_router::components::{A, Outlet};
use leptos_router::hooks::{use_location, use_navigate};

use super::widgets::ToastRegion;
use crate::api::auth::current_user;

/// Sidebar navigation, the signed-in user and the page. The server already sends signed-out
/// visitors to the login page; this also catches a session that ends while the page is open.
#[component]
pub fn Layout() -> impl IntoView {
    let user = Resource::new(|| (), |_| current_user());
    provide_context::<super::widgets::CurrentUser>(user);
    let toasts = super::widgets::Toasts::provide();
    let navigate = use_navigate();
    let location = use_location();
    Effect::new(move |_| {
        if let Some(Ok(None)) = user.get() {
            let next = location.pathname.get_untracked();
            navigate(&format!("{}?next={next}", super::LOGIN), Default::default());
        }
    });

    // The router would take the link for a navigation: the focus moves by hand.
    let main = NodeRef::<leptos::html::Main>::new();
    let skip = move |ev: leptos::ev::MouseEvent| {
        ev.prevent_default();
        #[cfg(feature = "hydrate")]
        if let Some(main) = main.get() {
            let _ = main.focus();
        }
    };
    view! {
        <a class="skip" href="#main" on:click=skip>"Skip to content"</a>
        <div class="shell">
            <nav class="sidebar" aria-label="Main">
                <a class="brand" href=super::HOME>"OSCAR"</a>
                <ul>
                    <li><A href="/services">"Services"</A></li>
                    <li><A href="/buckets">"Buckets"</A></li>
                    <li><A href="/jobs">"Jobs"</A></li>
                    <li><A href="/info">"Info"</A></li>
                    // The REST API's browsable reference: a page of its own, outside the app.
                    <li><a href="/api-docs/" rel="external">"API"</a></li>
                </ul>
                // A full-page form: logging out may continue at the identity provider.
                <form method="post" action="/auth/logout" class="logout">
                    <button type="submit" class="danger">"Log out"</button>
                </form>
            </nav>
            <div class="content">
                <header class="topbar">
                    <Transition fallback=|| ()>
                        {move || Suspend::new(async move {
                            user.await.ok().flatten().map(|u| view! {
                                <span class="user" data-testid="current-user">
                                    {u.name}
                                    {u.admin.then_some(view! { <span class="badge">"admin"</span> })}
                                </span>
                            })
                        })}
                    </Transition>
                </header>
                <main id="main" tabindex="-1" node_ref=main>
                    <Outlet />
                </main>
                <ToastRegion toasts />
            </div>
        </div>
    }
}
