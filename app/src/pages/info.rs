use leptos::prelude::*;

use super::bucket::human_size;
use super::widgets::{ConfirmDialog, CopyButton, ErrorPanel, PageHeader, loaded};
use crate::api::registries::{
    DeleteRegistryCredential, SaveRegistryCredential, list_registry_credentials,
};
use crate::api::system::{
    GetStoreCredentials, RotateStoreCredentials, StoreCredentials, StoreKeyKind, own_quota,
    system_info,
};
use crate::api::volumes::{CreateVolume, DeleteVolume, list_volumes};
use model::quotas::{QuotaReport, QuotaValues};

#[component]
pub fn InfoPage() -> impl IntoView {
    let info = Resource::new(|| (), |_| system_info());
    view! {
        <PageHeader title="Info" />
        {loaded(info, |i| view! {
            <dl class="panel facts">
                <dt>"Version"</dt><dd>{i.version}</dd>
                <dt>"Commit"</dt><dd>{i.git_commit}</dd>
                <dt>"Mode"</dt><dd data-testid="mode">{i.mode}</dd>
                <dt>"Storage"</dt><dd>{i.storage}</dd>
                <dt>"Storage endpoint"</dt><dd data-testid="storage-endpoint">{i.storage_endpoint}</dd>
                <dt>"Database"</dt><dd data-testid="database">{i.database}</dd>
                <dt>"Jobs run as"</dt><dd data-testid="executor">{i.executor}</dd>
            </dl>
        })}
        <Quota />
        <StoreKeys />
        <RegistryCredentials />
        <Volumes />
    }
}

/// What the user may use and uses now, as bars; "unlimited" where the admin set no limit.
#[component]
fn Quota() -> impl IntoView {
    let quota = Resource::new(|| (), |_| own_quota());
    view! {
        <section class="panel" aria-labelledby="quota-title" data-testid="quota">
            <h2 id="quota-title">"Quota"</h2>
            {loaded(quota, |q| view! { <QuotaRows quota=q /> }.into_any())}
        </section>
    }
}

#[component]
fn QuotaRows(quota: QuotaReport) -> impl IntoView {
    let resource = |name: &str| quota.resources.get(name).copied().unwrap_or_default();
    let cores = |millis: i64| format!("{} cores", millis as f64 / 1000.0);
    let count = |n: i64| n.to_string();
    let row = |label: &'static str, values: QuotaValues, show: &dyn Fn(i64) -> String| {
        let limit = match values.share() {
            Some(_) => format!("{} of {}", show(values.used), show(values.max)),
            None => format!("{} (unlimited)", show(values.used)),
        };
        (label, values, limit)
    };
    let rows = [
        row("Jobs running", resource("jobs"), &count),
        row("CPU of running jobs", resource("cpu"), &cores),
        row("Memory of running jobs", resource("memory"), &human_size),
        row("Buckets", quota.minio.buckets, &count),
        row("Stored", quota.minio.storage_total_bytes, &human_size),
    ];
    view! {
        <dl class="facts quota">
            {rows.into_iter().map(|(label, values, limit)| view! {
                <dt>{label}</dt>
                <dd data-testid="quota-row">
                    <span>{limit}</span>
                    {values.share().map(|share| view! {
                        <meter min="0" max="1" low="0.75" high="0.9" optimum="0"
                            value=share aria-label=label></meter>
                    })}
                </dd>
            }).collect_view()}
        </dl>
    }
}

/// The user's credentials for private images: services name them in `image_pull_secrets`.
/// Passwords go in and never come back.
#[component]
fn RegistryCredentials() -> impl IntoView {
    let save = ServerAction::<SaveRegistryCredential>::new();
    let delete = ServerAction::<DeleteRegistryCredential>::new();
    let list = Resource::new(
        move || (save.version().get(), delete.version().get()),
        |_| list_registry_credentials(),
    );
    view! {
        <section class="panel" aria-labelledby="registries-title" data-testid="registry-credentials">
            <h2 id="registries-title">"Registry credentials"</h2>
            <p class="muted">"For private images: a service names them in its image_pull_secrets."</p>
            <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || list.get().map(|result| match result {
                    Err(error) => view! { <ErrorPanel error /> }.into_any(),
                    Ok(all) if all.is_empty() => view! {
                        <p class="muted" data-testid="no-registry-credentials">"None yet."</p>
                    }.into_any(),
                    Ok(all) => view! {
                        <table class="table">
                            <thead><tr><th>"Name"</th><th>"Registry"</th><th>"User"</th><th></th></tr></thead>
                            <tbody>
                                {all.into_iter().map(|c| {
                                    let name = c.name.clone();
                                    view! {
                                        <tr>
                                            <td>{c.name}</td><td>{c.server}</td><td>{c.username}</td>
                                            <td>
                                                <button type="button" class="small"
                                                    aria-label=format!("Delete {name}")
                                                    on:click=move |_| { delete.dispatch(DeleteRegistryCredential { name: name.clone() }); }>
                                                    "Delete"
                                                </button>
                                            </td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any(),
                })}
            </Transition>
            <ActionForm action=save>
                <label>"Name" <input type="text" name="name" required placeholder="ghcr" /></label>
                <label>"Registry" <input type="text" name="server" required placeholder="ghcr.io" /></label>
                <label>"User" <input type="text" name="username" required autocomplete="off" /></label>
                <label>"Password or token"
                    <input type="password" name="password" required autocomplete="new-password" />
                </label>
                <button type="submit" disabled=move || save.pending().get()>"Save"</button>
            </ActionForm>
            {move || save.value().get().and_then(Result::err).map(|error| view! { <ErrorPanel error /> })}
            {move || delete.value().get().and_then(Result::err).map(|error| view! { <ErrorPanel error /> })}
        </section>
    }
}

/// The user's managed volumes: storage that outlives jobs, which services attach by name
/// (`volume: {name, mount_path}`).
#[component]
fn Volumes() -> impl IntoView {
    let create = ServerAction::<CreateVolume>::new();
    let delete = ServerAction::<DeleteVolume>::new();
    let list = Resource::new(
        move || (create.version().get(), delete.version().get()),
        |_| list_volumes(),
    );
    view! {
        <section class="panel" aria-labelledby="volumes-title" data-testid="volumes">
            <h2 id="volumes-title">"Volumes"</h2>
            <p class="muted">
                "Storage that outlives jobs: a service mounts one with volume: {name, mount_path}."
            </p>
            <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || list.get().map(|result| match result {
                    Err(error) => view! { <ErrorPanel error /> }.into_any(),
                    Ok(all) if all.is_empty() => view! {
                        <p class="muted" data-testid="no-volumes">"None yet."</p>
                    }.into_any(),
                    Ok(all) => view! {
                        <table class="table">
                            <thead><tr>
                                <th>"Name"</th><th>"Size"</th><th>"State"</th>
                                <th>"Used by"</th><th>"Kept"</th><th></th>
                            </tr></thead>
                            <tbody>
                                {all.into_iter().map(|v| view! { <VolumeRow volume=v delete /> }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any(),
                })}
            </Transition>
            <ActionForm action=create>
                <label>"Name" <input type="text" name="name" required placeholder="models" /></label>
                <label>"Size" <input type="text" name="size" required placeholder="1Gi" /></label>
                <button type="submit" disabled=move || create.pending().get()>"Create volume"</button>
            </ActionForm>
            {move || create.value().get().and_then(Result::err).map(|error| view! { <ErrorPanel error /> })}
            {move || delete.value().get().and_then(Result::err).map(|error| view! { <ErrorPanel error /> })}
        </section>
    }
}

#[component]
fn VolumeRow(volume: model::volumes::Volume, delete: ServerAction<DeleteVolume>) -> impl IntoView {
    let name = volume.name.clone();
    let kept = match (
        volume.creation_mode.as_str(),
        volume.lifecycle_policy.as_str(),
    ) {
        ("service", "delete") => format!("with {}", volume.created_by_service),
        _ => "until deleted".to_string(),
    };
    let state = if volume.status.message.is_empty() {
        volume.status.phase.clone()
    } else {
        format!("{}: {}", volume.status.phase, volume.status.message)
    };
    let used = !volume.attachments.is_empty();
    view! {
        <tr data-testid="volume-row">
            <td>{volume.name}</td>
            <td>{volume.size}</td>
            <td>{state}</td>
            <td>
                {volume.attachments.into_iter().map(|a| {
                    let href = format!("/services/{}", model::url::percent_encode(&a.service_name, b""));
                    view! { <a href=href>{a.service_name}</a>" at "<code>{a.mount_path}</code>" " }
                }).collect_view()}
            </td>
            <td>{kept}</td>
            <td>
                <button type="button" class="small" disabled=used
                    title=if used { "Detach it from its services first" } else { "" }
                    aria-label=format!("Delete {name}")
                    on:click=move |_| { delete.dispatch(DeleteVolume { name: name.clone() }); }>
                    "Delete"
                </button>
            </td>
        </tr>
    }
}

/// The keys for the user's own S3 clients (aws-cli, boto3, rclone, oscar-python). They reach
/// the page only when asked for, so the secret is not in every rendered Info page.
#[component]
fn StoreKeys() -> impl IntoView {
    let show = ServerAction::<GetStoreCredentials>::new();
    let rotate = ServerAction::<RotateStoreCredentials>::new();
    let confirming = RwSignal::new(false);
    // The latest answer of either action.
    let keys = Memo::new(move |_| {
        let rotated = rotate.value().get();
        match rotated {
            Some(Ok(keys)) => Some(Ok(keys)),
            _ => show.value().get(),
        }
    });
    view! {
        <section class="panel" aria-labelledby="store-keys-title">
            <h2 id="store-keys-title">"Object store keys"</h2>
            {move || match keys.get() {
                None => view! {
                    <p class="muted">"Keys for your own S3 clients. They reach only the buckets you may use."</p>
                    <button type="button" on:click=move |_| { show.dispatch(GetStoreCredentials {}); }>
                        "Show my store keys"
                    </button>
                }.into_any(),
                Some(Err(error)) => view! { <ErrorPanel error /> }.into_any(),
                Some(Ok(keys)) => view! { <KeysShown keys confirming rotate /> }.into_any(),
            }}
            {move || rotate.value().get().and_then(Result::err).map(|error| view! { <ErrorPanel error /> })}
        </section>
    }
}

#[component]
fn KeysShown(
    keys: StoreCredentials,
    confirming: RwSignal<bool>,
    rotate: ServerAction<RotateStoreCredentials>,
) -> impl IntoView {
    let note = match keys.kind {
        StoreKeyKind::Root => {
            "These are the store's root keys: they reach every bucket. Keep them to the platform's operators."
        }
        StoreKeyKind::Personal => {
            "Your own keys: they reach the buckets you own or that are shared with you, and nothing else."
        }
        StoreKeyKind::NotIssued => {
            "This platform uses an external store, which manages its own users: ask its operator for keys."
        }
    };
    let personal = keys.kind == StoreKeyKind::Personal;
    let has_keys = keys.kind != StoreKeyKind::NotIssued;
    view! {
        <p class="muted" data-testid="store-keys-note">{note}</p>
        <dl class="facts">
            <dt>"Endpoint"</dt><dd>{keys.endpoint.clone()}</dd>
            <dt>"Region"</dt><dd>{keys.region.clone()}</dd>
            {has_keys.then(|| view! {
                <dt>"Access key"</dt>
                <dd><code data-testid="store-access-key">{keys.access_key.clone()}</code> " " <CopyButton text=keys.access_key.clone() /></dd>
                <dt>"Secret key"</dt>
                <dd><code data-testid="store-secret-key">{keys.secret_key.clone()}</code> " " <CopyButton text=keys.secret_key.clone() /></dd>
            })}
        </dl>
        {personal.then(|| view! {
            <button type="button" on:click=move |_| confirming.set(true)>"Rotate keys"</button>
            {move || confirming.get().then(|| view! {
                <ConfirmDialog label="Confirm rotation" confirm="Rotate"
                    on_confirm=move |()| {
                        confirming.set(false);
                        rotate.dispatch(RotateStoreCredentials {});
                    }
                    on_cancel=move |()| confirming.set(false)>
                    <p>"New keys replace these at once: clients still using them will be refused."</p>
                </ConfirmDialog>
            })}
        })}
    }
}
