//! Pages and the layout around them.

mod bucket;
mod buckets;
mod examples;
mod exposed;
mod glance;
mod info;
mod job;
mod jobs;
mod layout;
mod login;
mod new_service;
mod pairs_editor;
mod provider_fields;
mod service_detail;
mod service_form;
mod service_jobs;
mod services;
mod snippets;
mod widgets;
mod workflow;

use leptos::prelude::*;
use leptos_meta::{MetaTags, Title, provide_meta_context};
use leptos_router::components::{ParentRoute, Redirect, Route, Router, Routes};
use leptos_router::path;

pub use model::routes::{HOME, LOGIN};

/// The HTML document around the app; the server renders it, the browser hydrates `App`.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    let css = format!("/{}/{}.css", options.site_pkg_dir, options.output_name);
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <link rel="icon" type="image/svg+xml" href="/favicon.svg" />
                <link rel="stylesheet" href=css />
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Title formatter=|page: String| {
            if page.is_empty() { "OSCAR".to_string() } else { format!("OSCAR - {page}") }
        } />
        <Router>
            <Routes fallback=widgets::NotFound>
                <Route path=path!("/login") view=login::LoginPage />
                <ParentRoute path=path!("") view=layout::Layout>
                    // The address the README gives: the dashboard's home.
                    <Route path=path!("/") view=|| view! { <Redirect path=HOME /> } />
                    <Route path=path!("/services") view=services::ServicesPage />
                    <Route path=path!("/new-service") view=new_service::NewServicePage />
                    <Route path=path!("/services/:name") view=service_detail::ServiceDetailPage />
                    <Route path=path!("/services/:name/edit") view=service_form::EditServicePage />
                    <Route path=path!("/services/:name/jobs/:job") view=job::JobPage />
                    <Route path=path!("/buckets") view=buckets::BucketsPage />
                    <Route path=path!("/buckets/:name") view=bucket::BucketPage />
                    <Route path=path!("/jobs") view=jobs::JobsPage />
                    <Route path=path!("/info") view=info::InfoPage />
                </ParentRoute>
            </Routes>
        </Router>
    }
}
