use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::api::auth::{Login, SignInOptions, get_sign_in_options};

/// What the login page says for the reason codes the sign-in routes send back.
fn reason_text(code: &str, options: &SignInOptions) -> String {
    let provider = options
        .provider
        .as_deref()
        .unwrap_or("the identity provider");
    match code {
        "vo" => format!(
            "Access denied: this platform is for members of the VO {}. Your {provider} account is not a member; request membership from the VO, then sign in again.",
            options.required_vos.join(" or ")
        ),
        "unavailable" => format!("{provider} cannot be reached right now. Try again in a moment."),
        "refused" => format!("{provider} did not complete the sign-in. Try again."),
        "unconfigured" => "Sign-in with an identity provider is not configured here.".into(),
        _ => "The sign-in did not complete. Try again.".into(),
    }
}

#[component]
pub fn LoginPage() -> impl IntoView {
    let login = ServerAction::<Login>::new();
    let options = Resource::new(|| (), |_| get_sign_in_options());
    let query = use_query_map();
    let next = move || query.read().get("next").unwrap_or_default();
    let error = move || {
        login
            .value()
            .get()
            .and_then(Result::err)
            .map(|e| e.to_string())
    };
    let provider_link = move || {
        format!(
            "/auth/login?next={}",
            model::url::percent_encode(&next(), b"/")
        )
    };

    view! {
        <Title text="Sign in" />
        <main class="centered">
            <div class="panel login">
                <h1>"OSCAR"</h1>
                <p class="muted">"Serverless file processing. Sign in to continue."</p>
                <Suspense>
                    {move || Suspend::new(async move {
                        let options = options.await.unwrap_or(SignInOptions {
                            provider: None,
                            required_vos: Vec::new(),
                        });
                        let reason = query
                            .read()
                            .get("error")
                            .map(|code| reason_text(&code, &options));
                        let provider = options.provider.clone();
                        view! {
                            {reason.map(|text| view! { <p class="form-error denied" role="alert">{text}</p> })}
                            {provider.map(|name| view! {
                                <a class="button primary wide" href=provider_link rel="external">
                                    {format!("Sign in with {name}")}
                                </a>
                                <p class="muted or">"or, for the local administrator:"</p>
                            })}
                        }
                    })}
                </Suspense>
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
