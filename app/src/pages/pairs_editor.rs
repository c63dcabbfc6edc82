//! Rows of a name and a value, for a service's variables, labels and annotations. A value may
//! span lines (a certificate in a variable), which `NAME=value` lines could not hold.

use std::collections::BTreeMap;

use leptos::prelude::*;
use model::service::FieldError;

/// One row: its name and value as typed.
type Row = (RwSignal<String>, RwSignal<String>);

/// The rows being edited.
#[derive(Clone, Copy)]
pub struct Pairs {
    rows: RwSignal<Vec<Row>>,
}

impl Pairs {
    pub fn of<'a>(pairs: impl Iterator<Item = (&'a String, &'a String)>) -> Self {
        let rows = pairs
            .map(|(k, v)| (RwSignal::new(k.clone()), RwSignal::new(v.clone())))
            .collect();
        Self {
            rows: RwSignal::new(rows),
        }
    }

    /// Subscribes to every row, for the YAML tab's draft.
    pub fn track(&self) {
        for (name, value) in self.rows.get() {
            name.track();
            value.track();
        }
    }

    /// The map the rows describe, and what is wrong with them as errors of `field`.
    pub fn map(&self, field: &str) -> (BTreeMap<String, String>, Vec<FieldError>) {
        let rows: Vec<(String, String)> = self
            .rows
            .get_untracked()
            .iter()
            .map(|(name, value)| (name.get_untracked(), value.get_untracked()))
            .collect();
        collect(&rows, field)
    }
}

/// Blank rows are skipped; a value without a name or a name given twice is named by its row.
fn collect(rows: &[(String, String)], field: &str) -> (BTreeMap<String, String>, Vec<FieldError>) {
    let mut map = BTreeMap::new();
    let mut errors = Vec::new();
    let mut error = |message: String| {
        errors.push(FieldError {
            field: field.into(),
            message,
        })
    };
    for (i, (name, value)) in rows.iter().enumerate() {
        let name = name.trim();
        if name.is_empty() {
            if !value.is_empty() {
                error(format!("row {}: a value needs a name", i + 1));
            }
            continue;
        }
        if map.insert(name.to_string(), value.clone()).is_some() {
            error(format!("row {}: {name} is given twice", i + 1));
        }
    }
    (map, errors)
}

/// The rows of `pairs` with their inputs, labelled "`what` N name" and "`what` N value".
#[component]
pub fn PairsEditor(
    pairs: Pairs,
    legend: &'static str,
    /// What one row is, capitalised: "Variable", "Label".
    what: &'static str,
    /// The field its errors are reported under, for `aria-describedby`.
    error_id: &'static str,
    invalid: Signal<String>,
) -> impl IntoView {
    let rows = pairs.rows;
    let one = what.to_lowercase();
    let article = if one.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    let add = format!("Add {article} {one}");
    view! {
        <fieldset class="pairs" data-testid=format!("{}-pairs", what.to_lowercase())>
            <legend>{legend}</legend>
            {move || rows.get().into_iter().enumerate().map(|(i, (name, value))| {
                let n = i + 1;
                view! {
                    <div class="row pair">
                        <input type="text" spellcheck="false" aria-label=format!("{what} {n} name") placeholder="NAME"
                            aria-invalid=invalid aria-describedby=error_id
                            prop:value=name on:input=move |ev| name.set(event_target_value(&ev)) />
                        <textarea class="code" rows="1" spellcheck="false" aria-label=format!("{what} {n} value") placeholder="value"
                            prop:value=value on:input=move |ev| value.set(event_target_value(&ev))></textarea>
                        <button type="button" class="small" aria-label=format!("Remove {what} {n}")
                            on:click=move |_| rows.update(|all| { all.remove(i); })>"Remove"</button>
                    </div>
                }
            }).collect_view()}
            <button type="button" class="small" on:click=move |_| rows.update(|all| {
                all.push((RwSignal::new(String::new()), RwSignal::new(String::new())));
            })>{add}</button>
        </fieldset>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn rows_make_a_map_and_wrong_rows_are_named_under_their_field() {
        let (map, errors) = collect(
            &rows(&[
                ("A", "1"),
                ("", ""),
                (" B ", "two=2\nlines"),
                ("", "orphan"),
                ("A", "again"),
            ]),
            "labels",
        );
        assert_eq!(map["A"], "again");
        assert_eq!(map["B"], "two=2\nlines");
        assert_eq!(map.len(), 2);
        let messages: Vec<_> = errors.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(
            messages,
            ["row 4: a value needs a name", "row 5: A is given twice"]
        );
        assert!(errors.iter().all(|e| e.field == "labels"));
    }
}
