//! The service form's storage providers (`storage_providers`): each declared provider with the
//! fields its type takes. Credentials are password fields that are never filled in: the
//! platform does not send them back, and a blank one keeps the stored value.

use std::collections::BTreeMap;

use leptos::prelude::*;
use model::service::FieldError;
use serde_json::{Map, Value};

/// The types the platform reaches and the fields each takes, in order; `true` for a
/// credential.
const FIELDS: &[(&str, &[(&str, bool)])] = &[
    (
        "webdav",
        &[
            ("hostname", false),
            ("login", false),
            ("password", true),
            ("token", true),
        ],
    ),
    (
        "minio",
        &[
            ("endpoint", false),
            ("region", false),
            ("access_key", false),
            ("secret_key", true),
        ],
    ),
    (
        "s3",
        &[
            ("region", false),
            ("endpoint", false),
            ("access_key", false),
            ("secret_key", true),
        ],
    ),
    (
        "onedata",
        &[
            ("oneprovider_host", false),
            ("space", false),
            ("token", true),
        ],
    ),
];

fn fields_of(kind: &str) -> &'static [(&'static str, bool)] {
    FIELDS
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or(&[], |(_, fields)| fields)
}

/// Whether `name` is a field the form shows for some type (the others are kept as defined).
fn shown_field(name: &str) -> bool {
    FIELDS
        .iter()
        .any(|(_, fields)| fields.iter().any(|(field, _)| *field == name))
}

/// One declared provider as typed.
#[derive(Clone, Copy)]
struct Row {
    kind: RwSignal<String>,
    id: RwSignal<String>,
    values: RwSignal<BTreeMap<String, String>>,
    /// The entry as defined: fields the form does not show, and which credentials are stored.
    defined: StoredValue<Map<String, Value>>,
}

impl Row {
    fn new(kind: &str, id: &str, defined: Map<String, Value>) -> Self {
        let values = defined
            .iter()
            .filter(|(name, _)| {
                !fields_of(kind)
                    .iter()
                    .any(|(f, secret)| f == name && *secret)
            })
            .filter_map(|(name, value)| Some((name.clone(), value.as_str()?.to_string())))
            .collect();
        Self {
            kind: RwSignal::new(kind.to_string()),
            id: RwSignal::new(id.to_string()),
            values: RwSignal::new(values),
            defined: StoredValue::new(defined),
        }
    }
}

/// The form's providers; the platform's own store (`minio.default`) is never one of them.
#[derive(Clone, Copy)]
pub struct Providers {
    rows: RwSignal<Vec<Row>>,
}

impl Providers {
    pub fn of(definition: Option<&Value>) -> Self {
        let mut rows = Vec::new();
        for (kind, entries) in definition.and_then(Value::as_object).into_iter().flatten() {
            for (id, entry) in entries.as_object().into_iter().flatten() {
                if kind == "minio" && id == "default" {
                    continue;
                }
                let defined = entry.as_object().cloned().unwrap_or_default();
                rows.push(Row::new(kind, id, defined));
            }
        }
        Self {
            rows: RwSignal::new(rows),
        }
    }

    /// Subscribes to every field, for the YAML tab's draft.
    pub fn track(&self) {
        self.rows.with(|rows| {
            for row in rows {
                row.kind.track();
                row.id.track();
                row.values.track();
            }
        });
    }

    /// `storage_providers` as the form describes it (None when there is none, as defined), with
    /// what the form alone finds wrong.
    pub fn definition(&self, defined: Option<&Value>) -> (Option<Value>, Vec<FieldError>) {
        let mut out = Map::new();
        let mut errors = Vec::new();
        // The platform store's entry, if the definition had one, stays as it was.
        if let Some(default) = defined
            .and_then(|d| d.get("minio"))
            .and_then(|m| m.get("default"))
        {
            out.insert("minio".into(), serde_json::json!({"default": default}));
        }
        for (n, row) in self.rows.get_untracked().iter().enumerate() {
            let kind = row.kind.get_untracked();
            let id = row.id.get_untracked().trim().to_string();
            if id.is_empty() {
                errors.push(FieldError {
                    field: "storage_providers".into(),
                    message: format!("provider {} needs a name", n + 1),
                });
                continue;
            }
            let mut entry = row.defined.get_value();
            // What another type's fields held goes with the type.
            entry.retain(|name, _| !shown_field(name));
            let values = row.values.get_untracked();
            let stored = row.defined.get_value();
            for (field, secret) in fields_of(&kind) {
                let value = values.get(*field).map(|v| v.trim()).unwrap_or_default();
                if !value.is_empty() {
                    entry.insert(field.to_string(), Value::String(value.to_string()));
                } else if *secret && stored.contains_key(*field) {
                    // Blank: the stored credential is kept.
                    entry.insert(field.to_string(), Value::String(String::new()));
                }
            }
            let of_kind = out
                .entry(kind.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            let Some(of_kind) = of_kind.as_object_mut() else {
                continue;
            };
            if of_kind.contains_key(&id) {
                errors.push(FieldError {
                    field: "storage_providers".into(),
                    message: format!("{kind}.{id} is declared twice"),
                });
            }
            of_kind.insert(id, Value::Object(entry));
        }
        let value = (!out.is_empty() || defined.is_some()).then_some(Value::Object(out));
        (value, errors)
    }
}

#[component]
pub fn ProviderFields(
    providers: Providers,
    error: Signal<String>,
    invalid: Signal<String>,
) -> impl IntoView {
    let rows = providers.rows;
    view! {
        <fieldset data-testid="provider-fields">
            <legend>"Storage providers: other stores the folders above name (WebDAV, S3, MinIO, Onedata)"</legend>
            <p class="muted">"Credentials are never shown again: leave one blank to keep it."</p>
            {move || rows.get().into_iter().enumerate().map(|(n, row)| view! {
                <div class="row" data-testid="provider-row">
                    <label>"Type"
                        <select aria-invalid=invalid on:change=move |ev| row.kind.set(event_target_value(&ev))>
                            {FIELDS.iter().map(|(kind, _)| view! {
                                <option value=*kind selected=row.kind.get_untracked() == *kind>{*kind}</option>
                            }).collect_view()}
                        </select>
                    </label>
                    <label>"Name"
                        <input type="text" spellcheck="false" prop:value=row.id aria-invalid=invalid
                            on:input=move |ev| row.id.set(event_target_value(&ev)) />
                    </label>
                    {move || fields_of(&row.kind.get()).iter().map(|(field, secret)| {
                        let field = *field;
                        let value = move || row.values.with(|v| v.get(field).cloned().unwrap_or_default());
                        let set = move |ev| {
                            let typed = event_target_value(&ev);
                            row.values.update(|v| {
                                v.insert(field.to_string(), typed);
                            });
                        };
                        if *secret {
                            let stored = row.defined.with_value(|d| d.contains_key(field));
                            view! {
                                <label>{field}
                                    <input type="password" autocomplete="new-password"
                                        placeholder=if stored { "stored: blank keeps it" } else { "" }
                                        prop:value=value on:input=set />
                                </label>
                            }.into_any()
                        } else {
                            view! {
                                <label>{field}
                                    <input type="text" spellcheck="false" prop:value=value on:input=set />
                                </label>
                            }.into_any()
                        }
                    }).collect_view()}
                    <button type="button" class="small" aria-label=format!("Remove provider {}", n + 1)
                        on:click=move |_| rows.update(|all| {
                            if n < all.len() {
                                all.remove(n);
                            }
                        })>"Remove"</button>
                </div>
            }).collect_view()}
            <button type="button" on:click=move |_| rows.update(|all| {
                all.push(Row::new("webdav", "", Map::new()));
            })>"Add a storage provider"</button>
        </fieldset>
        <p class="field-error" id="error-storage_providers" data-field="storage_providers">{error}</p>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn providers_round_trip_keeping_credentials_blank_and_unshown_fields() {
        let owner = Owner::new();
        owner.set();
        let defined = json!({
            "minio": {"default": {"endpoint": "http://store"}, "partner": {"endpoint": "https://p", "access_key": "ak", "secret_key": "", "verify": true}},
            "webdav": {"dcache": {"hostname": "dcache.example.org", "login": "me", "password": ""}}
        });
        let providers = Providers::of(Some(&defined));
        assert_eq!(
            providers.rows.get_untracked().len(),
            2,
            "minio.default is not a row"
        );
        let (back, errors) = providers.definition(Some(&defined));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            back.unwrap(),
            defined,
            "untouched, the definition comes back as it was"
        );

        // A new WebDAV provider: a blank credential never stored is left out.
        providers
            .rows
            .update(|rows| rows.push(Row::new("webdav", "", Map::new())));
        let added = *providers.rows.get_untracked().last().unwrap();
        let (_, errors) = providers.definition(Some(&defined));
        assert_eq!(errors[0].message, "provider 3 needs a name");
        added.id.set("site".into());
        added.values.update(|v| {
            v.insert("hostname".into(), "https://dav.example.org".into());
        });
        let (back, errors) = providers.definition(Some(&defined));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            back.unwrap()["webdav"]["site"],
            json!({"hostname": "https://dav.example.org"})
        );
        added.id.set("dcache".into());
        let (_, errors) = providers.definition(Some(&defined));
        assert_eq!(errors[0].message, "webdav.dcache is declared twice");
    }
}
