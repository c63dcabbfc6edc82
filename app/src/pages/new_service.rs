use leptos::prelude::*;
use leptos_router::components::A;

use super::service_form::ServiceForm;
use super::widgets::{ErrorPanel, PageHeader};
use crate::api::services::{ApplyFdl, ScriptFile};
use model::service::{Service, fdl};

/// A new service from the form, or services from an FDL file. The two tabs show the same
/// service: switching to YAML writes the form's service as FDL, switching back fills the form
/// from the FDL when it holds one service (the form then checks its fields as usual); an FDL
/// that cannot be read leaves the form as it was, with the reason.
#[component]
pub fn NewServicePage() -> impl IntoView {
    let yaml = RwSignal::new(false);
    let draft = RwSignal::new(Service::default());
    let baseline = StoredValue::new(None::<Service>);
    // YAML text with nothing new in it: as the form wrote it, or as last applied.
    let settled = StoredValue::new(String::new());
    let fdl = RwSignal::new(String::new());
    let script_name = RwSignal::new(String::new());
    let script = RwSignal::new(String::new());
    let files = RwSignal::new(Vec::<ScriptFile>::new());
    let note = RwSignal::new(None::<String>);
    let to_yaml = move |_| {
        if !yaml.get_untracked() {
            let service = draft.get_untracked();
            if service != Service::default() {
                let text = fdl::export(&service);
                settled.set_value(text.clone());
                fdl.set(text);
            }
            note.set(None);
            yaml.set(true);
        }
    };
    let to_form = move |_| {
        if yaml.get_untracked() {
            let text = fdl.get_untracked();
            if !text.trim().is_empty() {
                let all = ScriptFile::all(
                    script_name.get_untracked(),
                    script.get_untracked(),
                    files.get_untracked(),
                );
                let attached = |file: &str| ScriptFile::find(&all, file);
                match fdl::read(&text, attached) {
                    Ok(mut services) if services.len() == 1 => {
                        draft.set(services.remove(0));
                        note.set(None);
                    }
                    Ok(services) => note.set(Some(format!(
                        "The YAML defines {} services; the form edits one at a time, so apply them from the YAML tab.",
                        services.len()
                    ))),
                    Err(errors) => {
                        let first = errors
                            .first()
                            .map(|e| format!("{}: {}", e.field, e.message))
                            .unwrap_or_default();
                        note.set(Some(format!(
                            "The YAML was not copied into the form ({first}); the form keeps its values."
                        )));
                    }
                }
            }
            yaml.set(false);
        }
    };
    #[cfg(feature = "hydrate")]
    super::widgets::guard_unsaved(move || {
        let form_changed = baseline.with_value(|base| {
            base.as_ref()
                .is_some_and(|base| draft.get_untracked() != *base)
        });
        let text = fdl.get_untracked();
        let yaml_changed = yaml.get_untracked()
            && !text.trim().is_empty()
            && settled.with_value(|done| *done != text);
        form_changed || yaml_changed
    });
    view! {
        <PageHeader title="New service" />
        <super::examples::ExampleGallery open_in_yaml=move |text: String| {
            fdl.set(text);
            note.set(None);
            yaml.set(true);
        } />
        <div class="tabs" role="tablist">
            <button type="button" role="tab" aria-selected=move || (!yaml.get()).to_string() on:click=to_form>"Form"</button>
            <button type="button" role="tab" aria-selected=move || yaml.get().to_string() on:click=to_yaml>"YAML"</button>
        </div>
        {move || note.get().map(|text| view! { <p class="notice" data-testid="sync-note">{text}</p> })}
        <Show
            when=move || yaml.get()
            fallback=move || view! { <ServiceForm original=draft.get_untracked() creating=true draft baseline /> }
        >
            <ApplyFdlForm fdl script_name script files settled />
        </Show>
    }
}

/// Define services from an FDL file (the format oscar-cli and oscar-python read), pasted or
/// loaded from disk, with the script file it names.
#[component]
fn ApplyFdlForm(
    fdl: RwSignal<String>,
    script_name: RwSignal<String>,
    script: RwSignal<String>,
    files: RwSignal<Vec<ScriptFile>>,
    settled: StoredValue<String>,
) -> impl IntoView {
    let apply = ServerAction::<ApplyFdl>::new();
    Effect::new(move |_| {
        if matches!(apply.value().get(), Some(Ok(_))) {
            settled.set_value(fdl.get_untracked());
        }
    });
    view! {
        <section class="panel detail">
            <p class="muted">
                "Paste an FDL file or load it from disk. When its "<code>"script:"</code>
                " names a file (e.g. "<code>"script.sh"</code>"), load that file too. A service whose name is taken is refused unless you allow updates."
            </p>
            <ActionForm action=apply>
                <label>
                    "FDL (YAML)"
                    <textarea name="fdl" class="code" rows="18" spellcheck="false" required prop:value=fdl
                        on:input=move |ev| fdl.set(event_target_value(&ev))></textarea>
                </label>
                <FileLoader label="Load FDL file" target=fdl />
                <div class="row">
                    <label>
                        "Script file name"
                        <input type="text" name="script_name" placeholder="script.sh" prop:value=script_name
                            on:input=move |ev| script_name.set(event_target_value(&ev)) />
                    </label>
                    <FileLoader label="Load script file" target=script name_target=script_name />
                </div>
                <label>
                    "Script file contents"
                    <textarea name="script" class="code" rows="8" spellcheck="false" prop:value=script
                        on:input=move |ev| script.set(event_target_value(&ev))></textarea>
                </label>
                <ScriptFiles files />
                <label class="check">
                    <input type="checkbox" name="update_existing" value="true" />
                    "Update services that already exist (as "<code>"oscar-cli apply"</code>" does)"
                </label>
                <button type="submit" class="primary" disabled=move || apply.pending().get()>"Apply"</button>
            </ActionForm>
            {move || apply.value().get().map(|result| match result {
                Err(error) => view! { <ErrorPanel error /> }.into_any(),
                Ok(applied) => view! {
                    <div class="panel success" role="status">
                        <ul>
                            {applied.into_iter().map(|a| {
                                let href = format!("/services/{}", a.name);
                                let verb = if a.created { "Created" } else { "Updated" };
                                let federation = (!a.federation.is_empty()).then(|| view! {
                                    <ul>{a.federation.iter().map(|line| view! { <li>{line.clone()}</li> }).collect_view()}</ul>
                                });
                                view! { <li>{verb} " " <A href=href>{a.name}</A>{federation}</li> }
                            }).collect_view()}
                        </ul>
                    </div>
                }.into_any(),
            })}
        </section>
    }
}

/// More script files, for an FDL whose services name one each: loaded from disk (several at
/// once), listed, and sent with the FDL.
#[component]
fn ScriptFiles(files: RwSignal<Vec<ScriptFile>>) -> impl IntoView {
    let on_change = move |ev: leptos::ev::Event| {
        #[cfg(feature = "hydrate")]
        {
            use wasm_bindgen::JsCast;
            let Some(list) = ev
                .target()
                .and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok())
                .and_then(|input| input.files())
            else {
                return;
            };
            for file in (0..list.length()).filter_map(|i| list.get(i)) {
                leptos::task::spawn_local(async move {
                    if let Ok(text) = wasm_bindgen_futures::JsFuture::from(file.text()).await {
                        let (name, text) = (file.name(), text.as_string().unwrap_or_default());
                        files.update(|all| {
                            all.retain(|f| f.name != name);
                            all.push(ScriptFile { name, text });
                        });
                    }
                });
            }
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = (ev, files);
    };
    let listed = move || {
        files
            .get()
            .into_iter()
            .enumerate()
            .map(|(i, file)| {
                let lines = file.text.lines().count();
                let ScriptFile { name, text } = file;
                let (marked, sent, shown) = (name.clone(), name.clone(), name.clone());
                view! {
                    <li data-script=marked>
                        <input type="hidden" name=format!("files[{i}][name]") value=sent />
                        <input type="hidden" name=format!("files[{i}][text]") value=text />
                        <span class="mono">{shown}</span>
                        {format!(" ({lines} lines) ")}
                        <button type="button" on:click=move |_| files.update(|all| all.retain(|f| f.name != name))>
                            "Remove"
                        </button>
                    </li>
                }
            })
            .collect_view()
    };
    view! {
        <label class="file">
            "Load more script files"
            <input type="file" multiple on:change=on_change />
        </label>
        <ul class="plain" data-testid="script-files">{listed}</ul>
    }
}

/// A file picker that puts the chosen text file into `target` (and its name into
/// `name_target`). Reading happens in the browser; nothing is uploaded until "Apply".
#[component]
fn FileLoader(
    label: &'static str,
    target: RwSignal<String>,
    #[prop(optional)] name_target: Option<RwSignal<String>>,
) -> impl IntoView {
    let on_change = move |ev: leptos::ev::Event| {
        #[cfg(feature = "hydrate")]
        {
            use wasm_bindgen::JsCast;
            let Some(input) = ev
                .target()
                .and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok())
            else {
                return;
            };
            let Some(file) = input.files().and_then(|files| files.get(0)) else {
                return;
            };
            if let Some(name) = name_target {
                name.set(file.name());
            }
            leptos::task::spawn_local(async move {
                if let Ok(text) = wasm_bindgen_futures::JsFuture::from(file.text()).await {
                    target.set(text.as_string().unwrap_or_default());
                }
            });
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = (ev, target, name_target);
    };
    view! {
        <label class="file">
            {label}
            <input type="file" on:change=on_change />
        </label>
    }
}
