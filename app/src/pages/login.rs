use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::api::auth::Login;

#[component]
pub fn LoginPage() -> impl IntoView {
    let login = ServerAction::<Login>::new();
    let next = move || use_query_map().read().get("next").unwrap_or_default();
    let error = move || {
        login
            .value()
            .get()
            .and_then(Result::err)
            .map(|e| e.to_string())
    };

    view! {
        <Title text="Sign in" />
        <main class="centered">
            <div class="panel login">
                <h1>"OSCAR"</h1>
                <p class="muted">"Serverless file processing. Sign in to continue."</p>
                <ActionForm action=login>
                    <input type="hidden" name="next" value=next />
                    <label>
                        "Username"
                        <input type="text" name="username" autocomplete="username" required />
                    </label>
                    <label>
                        "Password"
                        <input type="password" name="password" autocomplete="current-password" required />
                    </label>
                    <Show when=move || error().is_some()>
                        <p class="form-error" role="alert">{error}</p>
                    </Show>
                    <button type="submit" class="primary" disabled=move || login.pending().get()>
                        "Sign in"
                    </button>
                </ActionForm>
            </div>
        </main>
    }
}
