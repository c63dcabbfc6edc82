//! The service form: creates a service (from `/new-service`) or edits one. It covers the
//! common fields; everything else in a definition is kept as it is. The browser runs the same
//! validation as the server, so mistakes show under their field before anything is sent.

use leptos::prelude::*;
use leptos_router::hooks::use_navigate;

use super::pairs_editor::{Pairs, PairsEditor};
use super::provider_fields::{ProviderFields, Providers};
use super::widgets::{ErrorPanel, PageHeader, VisibilitySelect, loaded};
use crate::api::services::{CreateService, SaveService};
use model::service::expose::Expose;
use model::service::validate::{self, LOG_LEVELS};
use model::service::{FieldError, PLATFORM_STORE, SERVICE_LABEL, Service, StorageIo, fdl};

/// Edits a service in the form or as FDL (YAML). The two tabs show the same service:
/// switching to YAML writes the form's service, switching back fills the form from the YAML.
#[component]
pub fn EditServicePage() -> impl IntoView {
    let service = super::service_detail::routed_service();
    view! {
        <PageHeader title="Edit service" />
        {loaded(service, |s| view! { <EditTabs original=s /> })}
    }
}

#[component]
fn EditTabs(original: Service) -> impl IntoView {
    let yaml = RwSignal::new(false);
    let draft = RwSignal::new(original.clone());
    let baseline = StoredValue::new(None::<Service>);
    // The form starts from this; the YAML tab replaces it when it reads a service.
    let shown = RwSignal::new(original.clone());
    let text = RwSignal::new(String::new());
    let note = RwSignal::new(None::<String>);
    let name = StoredValue::new(original.name.clone());
    let to_yaml = move |_| {
        if !yaml.get_untracked() {
            text.set(fdl::export(&draft.get_untracked()));
            note.set(None);
            yaml.set(true);
        }
    };
    let read = move || -> Result<Service, String> {
        let name = name.get_value();
        match fdl::read(&text.get_untracked(), |_| None) {
            Ok(mut services) if services.len() == 1 => {
                let mut service = services.remove(0);
                if service.name != name {
                    return Err(format!(
                        "the YAML names {:?}: this page edits {name:?} (rename by creating a new service)",
                        service.name
                    ));
                }
                // What the YAML does not say: owner and token stay the stored ones, and so
                // do the secrets it leaves out (their values are never shown).
                let stored = draft.get_untracked();
                service.owner = stored.owner;
                service.token = stored.token;
                for (key, value) in stored.environment.secrets {
                    service.environment.secrets.entry(key).or_insert(value);
                }
                Ok(service)
            }
            Ok(services) => Err(format!(
                "the YAML must define this one service, not {}",
                services.len()
            )),
            Err(errors) => Err(errors
                .first()
                .map(|e| format!("{}: {}", e.field, e.message))
                .unwrap_or_default()),
        }
    };
    let to_form = move |_| {
        if yaml.get_untracked() {
            match read() {
                Ok(service) => {
                    shown.set(service);
                    note.set(None);
                }
                Err(why) => note.set(Some(format!(
                    "The YAML was not copied into the form ({why}); the form keeps its values."
                ))),
            }
            yaml.set(false);
        }
    };
    // Leaving with changes not saved asks first (a link, a reload, closing the tab), whichever
    // tab holds them.
    #[cfg(feature = "hydrate")]
    super::widgets::guard_unsaved(move || {
        baseline.with_value(|base| {
            let Some(base) = base else { return false };
            if yaml.get_untracked() {
                text.get_untracked() != fdl::export(base)
            } else {
                draft.get_untracked() != *base
            }
        })
    });
    let save = ServerAction::<SaveService>::new();
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(applied)) = save.value().get() {
            navigate(&format!("/services/{}", applied.name), Default::default());
        }
    });
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        match read() {
            Ok(service) => {
                note.set(None);
                save.dispatch(SaveService { service });
            }
            Err(why) => note.set(Some(format!("Not saved: {why}"))),
        }
    };
    view! {
        <div class="tabs" role="tablist">
            <button type="button" role="tab" aria-selected=move || (!yaml.get()).to_string() on:click=to_form>"Form"</button>
            <button type="button" role="tab" aria-selected=move || yaml.get().to_string() on:click=to_yaml>"YAML"</button>
        </div>
        {move || note.get().map(|text| view! { <p class="notice" data-testid="sync-note">{text}</p> })}
        <Show
            when=move || yaml.get()
            fallback=move || view! { <ServiceForm original=shown.get() creating=false draft baseline /> }
        >
            <form class="panel detail" on:submit=submit>
                <p class="muted">"The service as FDL, script included. Secrets are not shown: they keep their stored values unless the YAML gives new ones."</p>
                <label>
                    "FDL (YAML)"
                    <textarea class="code" rows="22" spellcheck="false" prop:value=text
                        on:input=move |ev| text.set(event_target_value(&ev))></textarea>
                </label>
                <button type="submit" class="primary" disabled=move || save.pending().get()>"Save"</button>
                {move || save.value().get().and_then(Result::err).map(|error| view! { <ErrorPanel error /> })}
            </form>
        </Show>
    }
}

#[component]
pub fn ServiceForm(
    original: Service,
    creating: bool,
    /// Receives the form's service as it is edited (the YAML tab shows it, the page's guard
    /// compares it).
    draft: RwSignal<Service>,
    /// What the untouched form describes, set by the first form the page shows: the page's
    /// guard counts changes from it, across tabs.
    baseline: StoredValue<Option<Service>>,
) -> impl IntoView {
    let name = RwSignal::new(original.name.clone());
    let image = RwSignal::new(original.image.clone());
    let cpu = RwSignal::new(original.cpu.clone());
    let memory = RwSignal::new(original.memory.clone());
    let gpu = RwSignal::new(original.enable_gpu);
    let log_level = RwSignal::new(if original.log_level.is_empty() {
        "INFO".into()
    } else {
        original.log_level.clone()
    });
    let script = RwSignal::new(original.script.clone());
    let variables = Pairs::of(original.environment.variables.iter());
    let visibility = RwSignal::new(original.visibility);
    let allowed_users = RwSignal::new(original.allowed_users.join("\n"));
    let vo = RwSignal::new(original.vo.clone());
    // The label the platform sets itself is not the user's to edit.
    let labels = Pairs::of(original.labels.iter().filter(|(k, _)| *k != SERVICE_LABEL));
    let annotations = Pairs::of(original.annotations.iter());
    let inputs = RwSignal::new(storage_paths(&original.input));
    let outputs = RwSignal::new(storage_paths(&original.output));
    // Secret values never reach the browser; blank means "keep the stored value".
    let secrets: Vec<(String, RwSignal<String>)> = original
        .environment
        .secrets
        .keys()
        .map(|k| (k.clone(), RwSignal::new(String::new())))
        .collect();
    // Secrets added here: a name and a value each.
    let added_secrets = RwSignal::new(Vec::<(RwSignal<String>, RwSignal<String>)>::new());
    let exposed = ExposeFields::of(original.expose.as_ref());
    let providers = Providers::of(original.inactive.get("storage_providers"));
    let errors = RwSignal::new(Vec::<FieldError>::new());
    // Creating never updates: a taken name is the server's 409, shown with the form.
    let ready = super::widgets::hydrated();
    let create = ServerAction::<CreateService>::new();
    let save = ServerAction::<SaveService>::new();
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(applied)) = create.value().get().or_else(|| save.value().get()) {
            navigate(&format!("/services/{}", applied.name), Default::default());
        }
    });
    super::widgets::toast_when(move || {
        let applied = create.value().get().or_else(|| save.value().get());
        applied
            .and_then(Result::ok)
            .map(|applied| applied.summary())
    });

    let shown_name = original.name.clone();
    let secret_signals = secrets.clone();
    // The service as the form currently describes it, with what the fields alone find wrong.
    let current = move || {
        let mut service = original.clone();
        service.name = name.get_untracked().trim().to_string();
        service.image = image.get_untracked();
        service.cpu = cpu.get_untracked();
        service.memory = memory.get_untracked();
        service.enable_gpu = gpu.get_untracked();
        service.log_level = log_level.get_untracked();
        service.script = script.get_untracked();
        let (parsed, mut found) = variables.map("environment.variables");
        service.environment.variables = parsed;
        service.environment.secrets = secret_signals
            .iter()
            .map(|(k, v)| (k.clone(), v.get_untracked()))
            .collect();
        for (i, (key, value)) in added_secrets.get_untracked().iter().enumerate() {
            let key = key.get_untracked().trim().to_string();
            if key.is_empty() {
                continue;
            }
            if service.environment.secrets.contains_key(&key) {
                found.push(FieldError {
                    field: "environment.secrets".into(),
                    message: format!("new secret {}: {key} is already a secret", i + 1),
                });
            }
            service
                .environment
                .secrets
                .insert(key, value.get_untracked());
        }
        service.visibility = visibility.get_untracked();
        service.allowed_users = allowed_users
            .get_untracked()
            .lines()
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(String::from)
            .collect();
        service.vo = vo.get_untracked().trim().to_string();
        let (parsed, more) = labels.map("labels");
        service.labels = parsed;
        found.extend(more);
        let (parsed, more) = annotations.map("annotations");
        service.annotations = parsed;
        found.extend(more);
        let (input, more) = merge_paths(&original.input, &inputs.get_untracked(), "input");
        service.input = input;
        found.extend(more);
        let (output, more) = merge_paths(&original.output, &outputs.get_untracked(), "output");
        service.output = output;
        found.extend(more);
        let (expose, wrong) = exposed.block(original.expose.as_ref());
        service.expose = expose;
        found.extend(wrong);
        let (declared, wrong) = providers.definition(original.inactive.get("storage_providers"));
        match declared {
            Some(declared) => service
                .inactive
                .insert("storage_providers".into(), declared),
            None => service.inactive.remove("storage_providers"),
        };
        found.extend(wrong);
        (service, found)
    };
    let tracked_secrets = secrets.clone();
    // The same conversions apply to the baseline and to every later draft.
    if baseline.with_value(Option::is_none) {
        let initial = current().0;
        draft.set(initial.clone());
        baseline.set_value(Some(initial));
    }
    {
        let current = current.clone();
        Effect::new(move |_| {
            name.track();
            image.track();
            cpu.track();
            memory.track();
            gpu.track();
            log_level.track();
            script.track();
            variables.track();
            inputs.track();
            outputs.track();
            exposed.track();
            providers.track();
            visibility.track();
            allowed_users.track();
            vo.track();
            labels.track();
            annotations.track();
            for (_, value) in &tracked_secrets {
                value.track();
            }
            for (key, value) in added_secrets.get() {
                key.track();
                value.track();
            }
            draft.set(current().0);
        });
    }
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let (service, mut found) = current();
        if let Err(more) = validate::prepare(&mut service.clone()) {
            found.extend(more);
        }
        errors.set(found.clone());
        // The first field to fix takes the focus once the messages are shown.
        #[cfg(feature = "hydrate")]
        if !found.is_empty() {
            request_animation_frame(|| {
                use wasm_bindgen::JsCast;
                if let Some(field) = document()
                    .query_selector(".service-form [aria-invalid=\"true\"]")
                    .ok()
                    .flatten()
                    .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok())
                {
                    let _ = field.focus();
                }
            });
        }
        if found.is_empty() {
            if creating {
                create.dispatch(CreateService { service });
            } else {
                save.dispatch(SaveService { service });
            }
        }
    };
    let error_for = move |field: &'static str| {
        move || {
            errors.with(|all| {
                all.iter()
                    .filter(|e| {
                        e.field == field
                            || e.field.starts_with(&format!("{field}."))
                            || e.field.starts_with(&format!("{field}["))
                    })
                    .map(|e| e.message.clone())
                    .collect::<Vec<_>>()
                    .join("; ")
            })
        }
    };
    // For assistive technology: the field is marked and points at its message.
    let invalid = move |field: &'static str| move || (!error_for(field)().is_empty()).to_string();
    let line_numbers = move || {
        (1..=script.with(|s| s.lines().count().max(1)))
            .map(|n| format!("{n}\n"))
            .collect::<String>()
    };

    view! {
        <form class="panel detail service-form" on:submit=submit novalidate>
            {if creating {
                view! {
                    <label>"Name" <input type="text" prop:value=name aria-invalid=invalid("name") aria-describedby="error-name"
                        on:input=move |ev| name.set(event_target_value(&ev)) /></label>
                    <p class="field-error" id="error-name" data-field="name">{error_for("name")}</p>
                }.into_any()
            } else {
                view! { <h2 data-testid="service-name">{shown_name}</h2> }.into_any()
            }}
            <div class="row">
                <label>"Image" <input type="text" prop:value=image aria-invalid=invalid("image") aria-describedby="error-image" on:input=move |ev| image.set(event_target_value(&ev)) /></label>
                <label>"CPU" <input type="text" placeholder=validate::DEFAULT_CPU prop:value=cpu aria-invalid=invalid("cpu") aria-describedby="error-cpu" on:input=move |ev| cpu.set(event_target_value(&ev)) /></label>
                <label>"Memory" <input type="text" placeholder=validate::DEFAULT_MEMORY prop:value=memory aria-invalid=invalid("memory") aria-describedby="error-memory" on:input=move |ev| memory.set(event_target_value(&ev)) /></label>
                <label>
                    "Log level"
                    <select on:change=move |ev| log_level.set(event_target_value(&ev))>
                        {LOG_LEVELS.iter().map(|l| view! { <option value=*l selected=log_level.get_untracked() == *l>{*l}</option> }).collect_view()}
                    </select>
                </label>
                <label class="check"><input type="checkbox" prop:checked=gpu on:change=move |ev| gpu.set(event_target_checked(&ev)) /> "GPU"</label>
            </div>
            <p class="field-error" id="error-image" data-field="image">{error_for("image")}</p>
            <p class="field-error" id="error-cpu" data-field="cpu">{error_for("cpu")}</p>
            <p class="field-error" id="error-memory" data-field="memory">{error_for("memory")}</p>
            <div class="row">
                <label>
                    "Input folders (bucket/folder, one per line)"
                    <textarea class="code" rows="3" spellcheck="false" prop:value=inputs
                        aria-invalid=invalid("input") aria-describedby="error-input"
                        on:input=move |ev| inputs.set(event_target_value(&ev))></textarea>
                </label>
                <label>
                    "Output folders (bucket/folder, one per line)"
                    <textarea class="code" rows="3" spellcheck="false" prop:value=outputs
                        aria-invalid=invalid("output") aria-describedby="error-output"
                        on:input=move |ev| outputs.set(event_target_value(&ev))></textarea>
                </label>
            </div>
            <p class="muted">"Filters follow the folder: " <code>"bucket/in suffix=.png,.jpg prefix=raw_"</code>
                " (an input starts jobs only for such files; an output receives only such files)."</p>
            <p class="field-error" id="error-input" data-field="input">{error_for("input")}</p>
            <p class="field-error" id="error-output" data-field="output">{error_for("output")}</p>
            // Type-erased: nested as one type, the form overflows rustc's depth limit computing
            // its layout in the release build.
            {view! {
                <ProviderFields providers error=Signal::derive(error_for("storage_providers"))
                    invalid=Signal::derive(invalid("storage_providers")) />
            }.into_any()}
            <p class="muted">"Another store's folder starts with its provider: " <code>"webdav.dcache:data/in"</code>
                " (declared under Storage providers below)."</p>
            <label>
                "Script"
                <div class="editor">
                    <pre class="gutter" aria-hidden="true">{line_numbers}</pre>
                    <textarea class="code" rows="14" spellcheck="false" prop:value=script
                        aria-invalid=invalid("script") aria-describedby="error-script"
                        on:input=move |ev| script.set(event_target_value(&ev))></textarea>
                </div>
            </label>
            <details class="muted" data-testid="script-help">
                <summary>"What the script gets"</summary>
                <ul>
                    <li><code>"$INPUT_FILE_PATH"</code>": the input file, downloaded (the request's body for /run and /job)"</li>
                    <li><code>"$TMP_OUTPUT_DIR"</code>": every file written here (sub-folders too) goes to the output folders whose filters match"</li>
                    <li><code>"$STORAGE_OBJECT_KEY"</code>": the input's key in its bucket"</li>
                    <li><code>"$EVENT"</code>", "<code>"$EVENT_TIME"</code>": the event that started the job, and when"</li>
                    <li><code>"$JOB_UUID"</code>": the job's id"</li>
                    <li>"the environment variables and secrets below; a non-zero exit fails the job"</li>
                </ul>
            </details>
            <p class="field-error" id="error-script" data-field="script">{error_for("script")}</p>
            <PairsEditor pairs=variables legend="Environment variables" what="Variable"
                error_id="error-environment" invalid=Signal::derive(invalid("environment")) />
            <p class="field-error" id="error-environment" data-field="environment">{error_for("environment")}</p>
            <fieldset data-testid="expose-fields">
                <legend>"Exposed: a long-running web server instead of a job per file"</legend>
                <p class="muted">"Give the port the server listens on in its container to run it at /system/services/<name>/exposed/; leave it empty for a service that runs jobs."</p>
                <div class="row">
                    <label>"Port" <input type="number" min="1" max="65535" prop:value=exposed.port
                        aria-invalid=invalid("expose") aria-describedby="error-expose"
                        on:input=move |ev| exposed.port.set(event_target_value(&ev)) /></label>
                    <label>"Instances kept running" <input type="number" min="0" prop:value=exposed.min_scale
                        on:input=move |ev| exposed.min_scale.set(event_target_value(&ev)) /></label>
                    <label>"At most" <input type="number" min="1" prop:value=exposed.max_scale
                        on:input=move |ev| exposed.max_scale.set(event_target_value(&ev)) /></label>
                    <label>"Health path" <input type="text" placeholder="/" prop:value=exposed.health_path
                        on:input=move |ev| exposed.health_path.set(event_target_value(&ev)) /></label>
                </div>
                <div class="row">
                    <label class="check"><input type="checkbox" prop:checked=exposed.set_auth
                        on:change=move |ev| exposed.set_auth.set(event_target_checked(&ev)) /> "Require the token or a user it is shared with"</label>
                    <label class="check"><input type="checkbox" prop:checked=exposed.rewrite_target
                        on:change=move |ev| exposed.rewrite_target.set(event_target_checked(&ev)) /> "Strip the path prefix (the app sees /)"</label>
                    <label class="check"><input type="checkbox" prop:checked=exposed.default_command
                        on:change=move |ev| exposed.default_command.set(event_target_checked(&ev)) /> "Run the container's own command (default_command), not the script"</label>
                </div>
            </fieldset>
            <p class="field-error" id="error-expose" data-field="expose">{error_for("expose")}</p>
            <fieldset data-testid="secrets-fields">
                <legend>"Secrets: environment variables whose values are never shown again"</legend>
                {(!secrets.is_empty()).then(|| view! {
                    <p class="muted">"Leave a secret blank to keep its stored value."</p>
                })}
                {secrets.iter().map(|(key, value)| {
                    let value = *value;
                    view! {
                        <label>{key.clone()}
                            <input type="password" autocomplete="new-password" prop:value=value
                                on:input=move |ev| value.set(event_target_value(&ev)) />
                        </label>
                    }
                }).collect_view()}
                {move || added_secrets.get().into_iter().enumerate().map(|(i, (key, value))| view! {
                    <div class="row">
                        <label>{format!("New secret {} name", i + 1)}
                            <input type="text" spellcheck="false" prop:value=key
                                on:input=move |ev| key.set(event_target_value(&ev)) /></label>
                        <label>{format!("New secret {} value", i + 1)}
                            <input type="password" autocomplete="new-password" prop:value=value
                                on:input=move |ev| value.set(event_target_value(&ev)) /></label>
                    </div>
                }).collect_view()}
                <button type="button" on:click=move |_| added_secrets.update(|all| {
                    all.push((RwSignal::new(String::new()), RwSignal::new(String::new())));
                })>"Add a secret"</button>
            </fieldset>
            <p class="field-error" id="error-environment-secrets" data-field="environment.secrets">{error_for("environment.secrets")}</p>
            <fieldset data-testid="access-fields">
                <legend>"Who may see and invoke it"</legend>
                <div class="row">
                    <label>
                        "Visibility"
                        <VisibilitySelect value=visibility described_by="error-visibility" />
                    </label>
                    <label>"VO" <input type="text" spellcheck="false" prop:value=vo aria-invalid=invalid("vo") aria-describedby="error-vo"
                        on:input=move |ev| vo.set(event_target_value(&ev)) /></label>
                </div>
                <label>
                    "Allowed users (user ids, one per line; for restricted)"
                    <textarea class="code" rows="2" spellcheck="false" prop:value=allowed_users
                        aria-invalid=invalid("allowed_users") aria-describedby="error-allowed_users"
                        on:input=move |ev| allowed_users.set(event_target_value(&ev))></textarea>
                </label>
            </fieldset>
            <p class="field-error" id="error-visibility" data-field="visibility">{error_for("visibility")}</p>
            <p class="field-error" id="error-vo" data-field="vo">{error_for("vo")}</p>
            <p class="field-error" id="error-allowed_users" data-field="allowed_users">{error_for("allowed_users")}</p>
            <PairsEditor pairs=labels legend="Labels (copied to its jobs)" what="Label"
                error_id="error-labels" invalid=Signal::derive(invalid("labels")) />
            <PairsEditor pairs=annotations legend="Annotations" what="Annotation"
                error_id="error-annotations" invalid=Signal::derive(invalid("annotations")) />
            <p class="field-error" id="error-labels" data-field="labels">{error_for("labels")}</p>
            <p class="field-error" id="error-annotations" data-field="annotations">{error_for("annotations")}</p>
            <button type="submit" class="primary"
                disabled=move || !ready.get() || create.pending().get() || save.pending().get()>
                {if creating { "Create" } else { "Save" }}
            </button>
            {move || {
                let answer = if creating { create.value().get() } else { save.value().get() };
                answer.and_then(Result::err).map(|error| view! { <ErrorPanel error /> })
            }}
        </form>
    }
}

/// A storage list's folders, one per line with its filters, for editing: the platform
/// store's as `bucket/folder suffix=.png,.jpg prefix=raw_`, another provider's with its name
/// first (`webdav.dcache:data/in`).
fn storage_paths(entries: &[StorageIo]) -> String {
    entries
        .iter()
        .map(|io| {
            let mut line = if io.in_platform_store() {
                io.path.clone()
            } else {
                format!("{}:{}", io.storage_provider, io.path)
            };
            for (key, values) in [("suffix", &io.suffix), ("prefix", &io.prefix)] {
                if !values.is_empty() {
                    line.push_str(&format!(" {key}={}", values.join(",")));
                }
            }
            line
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Edited lines back to entries of `field` (`input` or `output`), in their order: each line is
/// a folder with its filters, of the platform store unless a provider is named before a `:`
/// in its first segment (bucket names hold no `:`). A platform folder already there keeps how
/// its provider was written. A word that is not a filter is an error naming its line.
fn merge_paths(
    original: &[StorageIo],
    lines: &str,
    field: &str,
) -> (Vec<StorageIo>, Vec<FieldError>) {
    let mut merged = Vec::new();
    let mut errors = Vec::new();
    for (i, line) in lines.lines().enumerate() {
        let mut words = line.split_whitespace();
        let Some(first) = words.next() else {
            continue;
        };
        let named = first
            .split_once(':')
            .filter(|(provider, _)| !provider.contains('/'));
        let (provider, path) = match named {
            Some((provider, path)) => (provider.to_string(), path.trim_matches('/')),
            None => {
                let path = first.trim_matches('/');
                let provider = original
                    .iter()
                    .find(|io| io.in_platform_store() && io.path == path)
                    .map_or(PLATFORM_STORE.to_string(), |io| io.storage_provider.clone());
                (provider, path)
            }
        };
        let mut entry = StorageIo {
            storage_provider: provider,
            path: path.to_string(),
            ..StorageIo::default()
        };
        for word in words {
            let list = |values: &str| -> Vec<String> {
                values
                    .split(',')
                    .filter(|v| !v.is_empty())
                    .map(String::from)
                    .collect()
            };
            match word.split_once('=') {
                Some(("suffix", values)) => entry.suffix.extend(list(values)),
                Some(("prefix", values)) => entry.prefix.extend(list(values)),
                _ => errors.push(FieldError {
                    field: field.into(),
                    message: format!(
                        "line {}: {word:?} is not a filter (suffix=… or prefix=…, comma-separated)",
                        i + 1
                    ),
                }),
            }
        }
        merged.push(entry);
    }
    (merged, errors)
}

/// The form's fields of the `expose` block, as typed.
#[derive(Clone, Copy)]
struct ExposeFields {
    port: RwSignal<String>,
    min_scale: RwSignal<String>,
    max_scale: RwSignal<String>,
    health_path: RwSignal<String>,
    set_auth: RwSignal<bool>,
    rewrite_target: RwSignal<bool>,
    default_command: RwSignal<bool>,
}

impl ExposeFields {
    fn of(expose: Option<&Expose>) -> Self {
        let default = Expose::default();
        let e = expose.unwrap_or(&default);
        let number = |n: u32, shown: bool| if shown { n.to_string() } else { String::new() };
        Self {
            port: RwSignal::new(e.port().map(|p| p.to_string()).unwrap_or_default()),
            min_scale: RwSignal::new(number(e.min_scale, expose.is_some())),
            max_scale: RwSignal::new(number(e.max_scale, e.max_scale > 0)),
            health_path: RwSignal::new(e.health_path.clone()),
            set_auth: RwSignal::new(e.set_auth),
            rewrite_target: RwSignal::new(e.rewrite_target),
            default_command: RwSignal::new(e.default_command),
        }
    }

    fn track(&self) {
        self.port.track();
        self.min_scale.track();
        self.max_scale.track();
        self.health_path.track();
        self.set_auth.track();
        self.rewrite_target.track();
        self.default_command.track();
    }

    fn block(&self, original: Option<&Expose>) -> (Option<Expose>, Vec<FieldError>) {
        expose_block(
            original,
            &ExposeText {
                port: self.port.get_untracked(),
                min_scale: self.min_scale.get_untracked(),
                max_scale: self.max_scale.get_untracked(),
                health_path: self.health_path.get_untracked(),
                set_auth: self.set_auth.get_untracked(),
                rewrite_target: self.rewrite_target.get_untracked(),
                default_command: self.default_command.get_untracked(),
            },
        )
    }
}

/// What the form's `expose` fields hold.
struct ExposeText {
    port: String,
    min_scale: String,
    max_scale: String,
    health_path: String,
    set_auth: bool,
    rewrite_target: bool,
    default_command: bool,
}

/// The `expose` block the fields describe, over the original's other keys (the Kubernetes
/// ones the form does not show). No port: not exposed, and no block unless there was one.
fn expose_block(original: Option<&Expose>, text: &ExposeText) -> (Option<Expose>, Vec<FieldError>) {
    let mut errors = Vec::new();
    let mut number = |field: &str, value: &str, default: u32| -> u32 {
        match value.trim() {
            "" => default,
            text => text.parse().unwrap_or_else(|_| {
                errors.push(FieldError {
                    field: format!("expose.{field}"),
                    message: format!("{text:?} is not a whole number"),
                });
                default
            }),
        }
    };
    let port = number("api_port", &text.port, 0);
    let min_scale = number("min_scale", &text.min_scale, 1);
    let max_scale = number("max_scale", &text.max_scale, 0);
    if port > u32::from(u16::MAX) {
        errors.push(FieldError {
            field: "expose.api_port".into(),
            message: format!("{port} is not a port (1-65535)"),
        });
    }
    if port == 0 && original.is_none() {
        return (None, errors);
    }
    let mut expose = original.cloned().unwrap_or_default();
    expose.api_port = match u16::try_from(port) {
        Ok(0) | Err(_) => Vec::new(),
        Ok(port) => vec![port],
    };
    expose.min_scale = min_scale;
    expose.max_scale = max_scale;
    expose.health_path = text.health_path.trim().to_string();
    expose.set_auth = text.set_auth;
    expose.rewrite_target = text.rewrite_target;
    expose.default_command = text.default_command;
    (Some(expose), errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(port: &str, min: &str) -> ExposeText {
        ExposeText {
            port: port.into(),
            min_scale: min.into(),
            max_scale: String::new(),
            health_path: String::new(),
            set_auth: true,
            rewrite_target: false,
            default_command: false,
        }
    }

    #[test]
    fn expose_fields_make_the_block_and_keep_what_the_form_does_not_show() {
        // Not exposed, and never was: no block.
        assert_eq!(expose_block(None, &text("", "")), (None, vec![]));
        let (block, errors) = expose_block(None, &text("8080", "0"));
        let block = block.unwrap();
        assert!(errors.is_empty());
        assert_eq!(
            (block.port(), block.min_scale, block.set_auth),
            (Some(8080), 0, true)
        );
        // The Kubernetes settings survive an edit; clearing the port un-exposes it.
        let original = Expose {
            node_port: 30080,
            cpu_threshold: 60,
            ..block
        };
        let (kept, _) = expose_block(Some(&original), &text("", "1"));
        let kept = kept.unwrap();
        assert_eq!(
            (kept.port(), kept.node_port, kept.cpu_threshold),
            (None, 30080, 60)
        );
        let (_, errors) = expose_block(None, &text("http", "x"));
        let fields: Vec<_> = errors.into_iter().map(|e| e.field).collect();
        assert_eq!(fields, ["expose.api_port", "expose.min_scale"]);
        let (_, errors) = expose_block(None, &text("70000", ""));
        assert_eq!(errors[0].field, "expose.api_port");
    }

    #[test]
    fn edited_folders_keep_filters_and_other_providers() {
        let original = vec![
            StorageIo {
                storage_provider: PLATFORM_STORE.into(),
                path: "b/in".into(),
                suffix: vec![".png".into()],
                ..Default::default()
            },
            StorageIo {
                storage_provider: "webdav.x".into(),
                path: "remote/in".into(),
                ..Default::default()
            },
        ];
        // The lines as shown keep what they had; a new line may carry filters.
        let shown = storage_paths(&original);
        assert_eq!(shown, "b/in suffix=.png\nwebdav.x:remote/in");
        let (merged, errors) = merge_paths(
            &original,
            &format!("{shown}\n/b/more/ prefix=raw_,x_ suffix=.txt\n\n"),
            "input",
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(merged.len(), 3);
        assert_eq!(merged[0].suffix, [".png"]);
        assert_eq!(
            (merged[1].storage_provider.as_str(), merged[1].path.as_str()),
            ("webdav.x", "remote/in")
        );
        assert_eq!(
            (merged[2].storage_provider.as_str(), merged[2].path.as_str()),
            (PLATFORM_STORE, "b/more")
        );
        assert_eq!(
            (merged[2].prefix.as_slice(), merged[2].suffix.as_slice()),
            (
                &["raw_".to_string(), "x_".to_string()][..],
                &[".txt".to_string()][..]
            )
        );
        // A filter removed from the line is gone, a line removed its entry; a word that is
        // not a filter is named.
        let (merged, _) = merge_paths(&original, "b/in", "input");
        assert_eq!(merged.len(), 1);
        assert!(merged[0].suffix.is_empty());
        let (_, errors) = merge_paths(&original, "b/in\nb/x png", "input");
        assert_eq!(errors[0].field, "input");
        assert!(
            errors[0].message.starts_with("line 2: \"png\""),
            "{errors:?}"
        );
    }
}
