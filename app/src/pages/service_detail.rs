use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::{use_navigate, use_params_map};

use super::bucket::folder_href;
use super::exposed::ExposedPanel;
use super::glance::GlancePanel;
use super::service_jobs::{InvokePanel, ServiceJobs};
use super::snippets::{Client, Target, snippet};
use super::widgets::{
    ConfirmDialog, CopyButton, CurrentUser, ErrorPanel, LocalTime, Owner, PageHeader, loaded,
};
use crate::api::services::{DeleteService, PlanDeletion, ServiceToken, get_service, input_polls};
use model::service::{Service, StorageIo};

/// The service named by the route's `:name`, reloaded when the route changes.
pub(super) fn routed_service() -> Resource<Result<Service, crate::AppError>> {
    let params = use_params_map();
    Resource::new(
        move || params.read().get("name").unwrap_or_default(),
        get_service,
    )
}

#[component]
pub fn ServiceDetailPage() -> impl IntoView {
    let service = routed_service();
    let params = use_params_map();
    let name = move || params.read().get("name").unwrap_or_default();
    let title = move || format!("Service {}", name());
    view! {
        <nav class="breadcrumbs" aria-label="Breadcrumb">
            <A href="/services">"Services"</A>" › "
            <span aria-current="page">{name}</span>
        </nav>
        {move || view! { <PageHeader title=title() /> }}
        // The page's parts are type-erased (`into_any`) like the bucket browser's: nested as
        // one type, they overflowed rustc's depth limit computing the page's layout.
        {loaded(service, |s| view! { <ServiceDetail service=s /> }.into_any())}
    }
}

/// Where the service's jobs go when they wait too long here.
#[component]
fn FederationFacts(federation: model::service::federation::Federation) -> impl IntoView {
    use model::service::federation::Delegation;
    let order = match federation.delegation {
        Delegation::Static => "by priority",
        Delegation::Random => "in any order",
        Delegation::LoadBased => "the one with most room first",
    };
    let rule = format!(
        "Jobs that wait more than {} s here are handed to a member, {order}:",
        federation.rescheduler_threshold
    );
    view! {
        <h3>"Federation"</h3>
        <p data-testid="federation">{rule}</p>
        <ul class="plain" data-testid="federation-members">
            {federation.members.into_iter().map(|member| view! {
                <li>{member.label()} <span class="muted">{format!(" priority {}", member.priority)}</span></li>
            }).collect_view()}
        </ul>
    }
}

#[component]
fn ServiceDetail(service: Service) -> impl IntoView {
    let name = service.name.clone();
    let inactive = service.unused_fields_set().join(", ");
    let secrets: Vec<String> = service.environment.secrets.keys().cloned().collect();
    let variables: Vec<(String, String)> =
        service.environment.variables.clone().into_iter().collect();
    // Built from the loaded definition on both sides, so server HTML and hydration agree.
    let fdl_href = format!(
        "data:application/yaml;charset=utf-8,{}",
        model::url::percent_encode(&model::service::fdl::export(&service), b"")
    );
    let run = format!("/run/{name}");
    let job = format!("/job/{name}");
    let reveal = ServerAction::<ServiceToken>::new();
    let has_input = service.input.iter().any(StorageIo::in_platform_store);
    // Inputs in other providers are polled.
    let polled = service.input.iter().any(|i| !i.in_platform_store());
    view! {
        <section class="panel detail">
            <div class="page-header">
                <h2 data-testid="service-name">{name.clone()}</h2>
                <div class="page-actions">
                    <a class="button" href=fdl_href download=format!("{name}.yaml")>"Download FDL"</a>
                    <A href=format!("/services/{name}/edit") attr:class="button">"Edit"</A>
                </div>
            </div>
            <dl class="facts">
                <dt>"Image"</dt><dd>{service.image.clone()}</dd>
                <dt>"CPU"</dt><dd>{service.cpu.clone()}</dd>
                <dt>"Memory"</dt><dd data-testid="memory">{service.memory.clone()}</dd>
                <dt>"GPU"</dt><dd>{if service.enable_gpu { "yes" } else { "no" }}</dd>
                <dt>"Log level"</dt><dd>{service.log_level.clone()}</dd>
                <dt>"Inputs"</dt><dd data-testid="inputs">{storage_list(&service.input)}</dd>
                <dt>"Outputs"</dt><dd data-testid="outputs">{storage_list(&service.output)}</dd>
                <dt>"Owner"</dt><dd><Owner id=service.owner.clone() /></dd>
            </dl>
            {service.federation().map(|federation| view! { <FederationFacts federation /> })}
            {(!variables.is_empty()).then(|| view! {
                <h3>"Environment variables"</h3>
                <dl class="facts">
                    {variables.into_iter().map(|(k, v)| view! { <dt>{k}</dt><dd>{v}</dd> }).collect_view()}
                </dl>
            })}
            {(!secrets.is_empty()).then(|| view! {
                <h3>"Secrets"</h3>
                <p class="muted">"Values are write-only: " {secrets.join(", ")}</p>
            })}
            {(!inactive.is_empty()).then(|| view! {
                <p class="notice">"Set but not active on this platform yet: " {inactive}</p>
            })}
            <h3>"Script"</h3>
            <pre class="script">{service.script.clone()}</pre>
        </section>
        <section class="panel detail">
            <h2>"Invoke"</h2>
            <dl class="facts">
                <dt>"Synchronous"</dt>
                <dd><code>"POST " {run.clone()}</code> " " <CopyButton text=run with_origin=true label="Copy URL" /></dd>
                <dt>"Asynchronous"</dt>
                <dd><code>"POST " {job.clone()}</code> " " <CopyButton text=job with_origin=true label="Copy URL" /></dd>
                <dt>"Token"</dt>
                <dd><TokenReveal name=name.clone() reveal /></dd>
            </dl>
            <Snippets service=name.clone() has_input reveal />
        </section>
        {service.is_exposed().then(|| view! { <ExposedPanel name=name.clone() /> })}
        {polled.then(|| view! { <PolledInputs name=name.clone() /> })}
        <GlancePanel service=name.clone() />
        <ServiceJobs name=name.clone() />
        <InvokePanel name=name.clone() />
        <DeleteService name />
    }
    .into_any()
}

/// How polling last listed the inputs in other stores: the files they held, or since when and
/// why listing fails (a refused password, a server gone), which otherwise only the server log
/// would say.
#[component]
fn PolledInputs(name: String) -> impl IntoView {
    let polls = Resource::new(|| (), move |_| input_polls(name.clone()));
    view! {
        <section class="panel detail" data-testid="polled-inputs">
            <div class="page-header">
                <h2>"Inputs in other stores"</h2>
                <button type="button" class="small" on:click=move |_| polls.refetch()>"Refresh"</button>
            </div>
            {loaded(polls, |polls| {
                let every = match polls.every_secs {
                    Some(secs) => format!("Listed every {secs} s; each new file starts a job."),
                    None => "Polling is off on this platform (OSCAR_POLL_INTERVAL=0): new files start no job.".to_string(),
                };
                view! {
                    <p class="muted">{every}</p>
                    <ul class="plain">
                        {polls.inputs.into_iter().map(|poll| {
                            let state = match (&poll.error, poll.polled_at) {
                                (Some(_), _) => "failing",
                                (None, Some(_)) => "listed",
                                (None, None) => "waiting",
                            };
                            let said = match (poll.failing_since, poll.error, poll.polled_at) {
                                (since, Some(error), at) => view! {
                                    <p class="notice">
                                        "Cannot be listed"
                                        {since.map(|at| view! { " since " <LocalTime at /> })}
                                        {at.map(|at| view! { " (last try " <LocalTime at /> ")" })}
                                        ": " {error}
                                    </p>
                                }.into_any(),
                                (_, None, Some(at)) => view! {
                                    <span class="muted">" listed " <LocalTime at /> {format!(", {} file(s)", poll.files)}</span>
                                }.into_any(),
                                (_, None, None) => view! { <span class="muted">" not listed yet"</span> }.into_any(),
                            };
                            let input = poll.input.clone();
                            view! { <li data-input=input data-state=state><code>{poll.input}</code>{said}</li> }
                        }).collect_view()}
                    </ul>
                }
                .into_any()
            })}
        </section>
    }
}

/// Each folder, linked to the bucket browser at that folder when it is in the platform's store
/// (where a user drops files to start jobs, or finds the outputs).
fn storage_list(entries: &[StorageIo]) -> AnyView {
    if entries.is_empty() {
        return "none".into_any();
    }
    entries
        .iter()
        .enumerate()
        .map(|(i, io)| {
            let separator = (i > 0).then_some(", ");
            let label = format!("{} ({})", io.path, io.storage_provider);
            let shown = if io.in_platform_store() {
                let (bucket, _) = io.bucket_and_folder();
                let href = folder_href(bucket, &io.folder_prefix());
                view! { <A href=href>{label}</A> }.into_any()
            } else {
                label.into_any()
            };
            view! { {separator} {shown} }
        })
        .collect_view()
        .into_any()
}

/// The token stays on the server until its owner asks to see it.
#[component]
fn TokenReveal(name: String, reveal: ServerAction<ServiceToken>) -> impl IntoView {
    view! {
        {move || match reveal.value().get() {
            Some(Ok(token)) => view! {
                <code data-testid="token">{token.clone()}</code> " " <CopyButton text=token />
            }.into_any(),
            Some(Err(error)) => view! { <ErrorPanel error /> }.into_any(),
            None => {
                let name = name.clone();
                view! {
                    <button type="button" on:click=move |_| { reveal.dispatch(ServiceToken { name: name.clone() }); }>
                        "Reveal token"
                    </button>
                }.into_any()
            }
        }}
    }
}

/// The service called from curl, oscar-python or oscar-cli, ready to copy: this server's
/// address, the service, and its token once revealed.
#[component]
fn Snippets(service: String, has_input: bool, reveal: ServerAction<ServiceToken>) -> impl IntoView {
    let client = RwSignal::new(Client::Curl);
    // The address the browser reached us at; the server renders a stand-in.
    let origin = RwSignal::new(String::from("http://<this server>"));
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        if let Ok(here) = window().location().origin() {
            origin.set(here);
        }
    });
    let me = use_context::<CurrentUser>();
    let text = Signal::derive(move || {
        let token = reveal.value().get().and_then(Result::ok);
        let user = me
            .and_then(|user| user.get())
            .and_then(|user| user.ok().flatten());
        let local_user = user
            .filter(|user| user.subject == model::auth::ADMIN_OWNER)
            .map(|user| user.name);
        snippet(
            client.get(),
            &Target {
                origin: &origin.read(),
                service: &service,
                token: token.as_deref(),
                local_user: local_user.as_deref(),
                has_input,
            },
        )
    });
    view! {
        <h3>"From your code"</h3>
        <div class="tabs" role="tablist" aria-label="Client">
            {Client::ALL.into_iter().map(|c| view! {
                <button type="button" role="tab" aria-selected=move || (client.get() == c).to_string()
                    on:click=move |_| client.set(c)>{c.label()}</button>
            }).collect_view()}
        </div>
        <pre class="snippet" data-testid="snippet">{text}</pre>
        <CopyButton text=text label="Copy snippet" />
    }
}

/// Delete, after showing exactly what goes with the service.
#[component]
fn DeleteService(name: String) -> impl IntoView {
    let plan = ServerAction::<PlanDeletion>::new();
    let delete = ServerAction::<DeleteService>::new();
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(_)) = delete.value().get() {
            navigate("/services", Default::default());
        }
    });
    {
        let name = name.clone();
        super::widgets::toast_when(move || {
            matches!(delete.value().get(), Some(Ok(_))).then(|| format!("Service {name} deleted"))
        });
    }
    let ask = {
        let name = name.clone();
        move |_| {
            plan.dispatch(PlanDeletion { name: name.clone() });
        }
    };
    view! {
        <section class="panel detail">
            <h2>"Delete"</h2>
            {move || match plan.value().get() {
                None => view! { <button type="button" class="danger-solid" on:click=ask.clone()>"Delete service…"</button> }.into_any(),
                Some(Err(error)) => view! { <ErrorPanel error /> }.into_any(),
                Some(Ok(p)) => {
                    let count = p.buckets.len();
                    let what = if count == 0 {
                        "No bucket will be deleted: the service's buckets are used elsewhere or were not created by it.".to_string()
                    } else {
                        format!("Its buckets can go with it, with every object in them: {}. Or keep them, and their files.", p.buckets.join(", "))
                    };
                    let confirm = match count {
                        0 => "Delete".to_string(),
                        1 => "Delete it and its bucket".to_string(),
                        n => format!("Delete it and its {n} buckets"),
                    };
                    let (service, kept) = (p.service.clone(), p.service.clone());
                    view! {
                        <ConfirmDialog label="Confirm deletion" confirm
                            on_confirm=move |()| { delete.dispatch(DeleteService { name: service.clone(), keep_buckets: false }); }
                            on_cancel=move |()| plan.clear() pending=delete.pending()>
                            <p><strong>"Delete service " {p.service.clone()} "?"</strong></p>
                            <p data-testid="deletion-plan">{what}</p>
                            {(count > 0).then(|| view! {
                                <button type="button" class="danger" disabled=move || delete.pending().get()
                                    on:click=move |_| { delete.dispatch(DeleteService { name: kept.clone(), keep_buckets: true }); }>
                                    "Delete the service only"
                                </button>
                                " "
                            })}
                            {move || delete.value().get().and_then(Result::err).map(|error| view! { <ErrorPanel error /> })}
                        </ConfirmDialog>
                    }.into_any()
                }
            }}
        </section>
    }
    .into_any()
}
