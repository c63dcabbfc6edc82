//! FDL files (oscar-cli / oscar-python's YAML format) to service definitions:
//!
//! ```yaml
//! functions:
//!   oscar:
//!   - <cluster-id>: { name: …, image: …, script: script.sh, … }
//! storage_providers: { minio: { <id>: {…} }, … }
//! clusters: { <id>: {…} }
//! ```
//!
//! Errors carry the path into the file, e.g. `functions.oscar[0].local.memory: …`.

use serde_json::Value;

use super::model::Service;
use super::validate::{self, FieldError};

/// Parses `yaml` into prepared (validated, normalised) services. A `script` naming a file is
/// replaced by that file's contents, looked up with `attachment` (files sent along the FDL).
pub fn parse(
    yaml: &str,
    attachment: impl Fn(&str) -> Option<String>,
) -> Result<Vec<Service>, Vec<FieldError>> {
    let entries = read_entries(yaml, attachment)?;
    let mut services = Vec::new();
    let mut errors = Vec::new();
    for (at, mut service) in entries {
        match validate::prepare(&mut service) {
            Ok(()) => services.push(service),
            Err(found) => errors.extend(found.into_iter().map(|e| FieldError {
                field: format!("{at}.{}", e.field),
                message: e.message,
            })),
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, service) in services.iter().enumerate() {
        if !seen.insert(service.name.as_str()) {
            errors.push(FieldError {
                field: format!("functions.oscar[{i}].{}.name", service.cluster_id),
                message: format!("{:?} is defined twice in this file", service.name),
            });
        }
    }
    if errors.is_empty() {
        Ok(services)
    } else {
        Err(errors)
    }
}

/// The services of an FDL file as written, fields unchecked: a draft for an editor (the
/// form checks them itself). Only the file's shape can be wrong here.
pub fn read(
    yaml: &str,
    attachment: impl Fn(&str) -> Option<String>,
) -> Result<Vec<Service>, Vec<FieldError>> {
    Ok(read_entries(yaml, attachment)?
        .into_iter()
        .map(|(_, service)| service)
        .collect())
}

/// Each service with the path of its entry (`functions.oscar[0].<cluster>`).
fn read_entries(
    yaml: &str,
    attachment: impl Fn(&str) -> Option<String>,
) -> Result<Vec<(String, Service)>, Vec<FieldError>> {
    let error = |field: &str, message: String| {
        vec![FieldError {
            field: field.into(),
            message,
        }]
    };
    let document: Value =
        serde_norway::from_str(yaml).map_err(|e| error("fdl", format!("not valid YAML: {e}")))?;
    let Some(root) = document.as_object() else {
        return Err(error(
            "fdl",
            "must be a mapping with a `functions` key".into(),
        ));
    };
    let entries = root
        .get("functions")
        .and_then(|f| f.get("oscar"))
        .and_then(Value::as_array)
        .ok_or_else(|| {
            error(
                "functions.oscar",
                "must be a list of `<cluster-id>: <service>` entries".into(),
            )
        })?;
    if entries.is_empty() {
        return Err(error("functions.oscar", "lists no service".into()));
    }

    let mut services = Vec::new();
    let mut errors = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let at = format!("functions.oscar[{i}]");
        let Some((cluster_id, definition)) = entry
            .as_object()
            .filter(|m| m.len() == 1)
            .and_then(|m| m.iter().next())
        else {
            errors.push(FieldError {
                field: at,
                message: "must be a single `<cluster-id>: <service>` mapping".into(),
            });
            continue;
        };
        let at = format!("{at}.{cluster_id}");
        let mut definition = definition.clone();
        let Some(fields) = definition.as_object_mut() else {
            errors.push(FieldError {
                field: at,
                message: "must be a mapping of service fields".into(),
            });
            continue;
        };
        for shared in ["storage_providers", "clusters"] {
            if let Some(value) = root.get(shared) {
                fields.entry(shared).or_insert_with(|| value.clone());
            }
        }
        let mut service = match Service::from_json(definition) {
            Ok(service) => service,
            Err(why) => {
                errors.push(FieldError {
                    field: at,
                    message: why,
                });
                continue;
            }
        };
        service.cluster_id = cluster_id.clone();
        if let Err(why) = resolve_script(&mut service, &attachment) {
            errors.push(FieldError {
                field: format!("{at}.script"),
                message: why,
            });
            continue;
        }
        services.push((at, service));
    }
    if errors.is_empty() {
        Ok(services)
    } else {
        Err(errors)
    }
}

/// The service as an FDL file that `oscar-cli apply` and `parse` read back: owner and token
/// left out (the server sets them), empty and default fields left out to keep it readable,
/// secret values blank (they are write-only; applying it again keeps the stored ones).
pub fn export(service: &Service) -> String {
    let mut definition = serde_json::to_value(service).unwrap_or_default();
    if let Value::Object(fields) = &mut definition {
        for server_set in ["owner", "token", "cluster_id"] {
            fields.remove(server_set);
        }
        fields.retain(|key, value| key == "name" || !super::model::is_empty_value(value));
    }
    let cluster = if service.cluster_id.is_empty() {
        "oscar"
    } else {
        service.cluster_id.as_str()
    };
    let document = serde_json::json!({ "functions": { "oscar": [ { cluster: definition } ] } });
    serde_norway::to_string(&document).unwrap_or_default()
}

/// oscar-cli inlines `script: script.sh` from the FDL's folder; here the file comes attached.
fn resolve_script(
    service: &mut Service,
    attachment: &impl Fn(&str) -> Option<String>,
) -> Result<(), String> {
    let script = service.script.trim();
    if script.contains('\n') || script.is_empty() {
        return Ok(());
    }
    if let Some(contents) = attachment(script) {
        service.script = contents;
        return Ok(());
    }
    let looks_like_file = !script.contains(' ')
        && [".sh", ".bash", ".py"]
            .iter()
            .any(|ext| script.ends_with(ext));
    if looks_like_file {
        return Err(format!(
            "refers to the file {script:?}: attach it with the FDL, or write the script inline"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn drafts_are_read_without_checking_their_fields() {
        let text = "functions:\n  oscar:\n  - c1:\n      name: draft\n      memory: 12X\n";
        let drafts = read(text, |_| None).unwrap();
        assert_eq!(drafts[0].name, "draft");
        assert_eq!(drafts[0].memory, "12X");
        assert!(parse(text, |_| None).is_err());
        assert!(
            read("functions: [", |_| None).unwrap_err()[0]
                .message
                .contains("not valid YAML")
        );
    }

    use super::*;

    const WORKFLOW: &str = include_str!("../../../fixtures/fdl/mask-workflow.yaml");
    const GRAYIFY: &str = include_str!("../../../fixtures/fdl/grayify.yaml");
    const TEXT: &str = include_str!("../../../fixtures/fdl/text-transformer.yaml");

    fn no_files(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn a_one_service_text_transformer() {
        let services = parse(TEXT, no_files).unwrap();
        assert_eq!(services.len(), 1);
        let s = &services[0];
        assert_eq!((s.name.as_str(), s.cluster_id.as_str()), ("upper", "local"));
        assert!(s.script.contains("tr '[:lower:]' '[:upper:]'"));
        assert_eq!(s.environment.variables["SUFFIX"], ".upper.txt");
        assert_eq!(s.log_level, "CRITICAL");
    }

    #[test]
    fn an_image_converter_with_an_attached_script() {
        let script = "#!/bin/sh\nconvert \"$INPUT_FILE_PATH\" -type Grayscale \"$TMP_OUTPUT_DIR/$(basename \"$INPUT_FILE_PATH\")\"\n";
        let services = parse(GRAYIFY, |name| {
            (name == "script.sh").then(|| script.to_string())
        })
        .unwrap();
        let s = &services[0];
        assert_eq!(s.script, script);
        assert_eq!((s.cpu.as_str(), s.memory.as_str()), ("1.0", "1Gi"));
        assert_eq!(s.output[0].suffix, [".png", ".jpg"]);
        assert!(
            s.inactive.contains_key("storage_providers"),
            "shared providers are copied in"
        );
    }

    #[test]
    fn a_missing_script_file_is_named() {
        let errors = parse(GRAYIFY, no_files).unwrap_err();
        assert_eq!(errors[0].field, "functions.oscar[0].my-cluster.script");
        assert!(
            errors[0].message.contains("\"script.sh\""),
            "{}",
            errors[0].message
        );
    }

    #[test]
    fn a_two_service_workflow_chains_output_to_input() {
        let services = parse(WORKFLOW, no_files).unwrap();
        assert_eq!(services.len(), 2);
        assert_eq!(services[0].output[0].path, services[1].input[0].path);
    }

    #[test]
    fn errors_carry_the_path_into_the_file() {
        let bad = TEXT.replace("memory: 256Mi", "memory: 12X");
        let errors = parse(&bad, no_files).unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(
            errors[0].to_string(),
            "functions.oscar[0].local.memory: \"12X\" is not a Kubernetes quantity (e.g. 0.5, 500m, 256Mi, 1Gi)"
        );
    }

    #[test]
    fn an_exported_service_reads_back_the_same() {
        for fixture in [TEXT, WORKFLOW] {
            for mut original in parse(fixture, no_files).unwrap() {
                original.owner = "cluster_admin".into();
                original.token = "f".repeat(64);
                let exported = export(&original);
                assert!(
                    !exported.contains("cluster_admin") && !exported.contains("ffff"),
                    "{exported}"
                );
                let mut back = parse(&exported, no_files).unwrap().remove(0);
                back.owner = original.owner.clone();
                back.token = original.token.clone();
                assert_eq!(back, original, "{exported}");
            }
        }
    }

    #[test]
    fn empty_shared_sections_are_left_out_of_an_export() {
        // From the fuzz target `service_definitions`: a `storage_providers:` left empty is
        // copied into the service as null, which says nothing and is not exported.
        let text = format!("{TEXT}storage_providers:\n");
        let original = parse(&text, no_files).unwrap().remove(0);
        assert_eq!(original.inactive["storage_providers"], Value::Null);
        assert!(original.inactive_fields_set().is_empty());
        let back = parse(&export(&original), no_files).unwrap().remove(0);
        let expected = Service {
            inactive: Default::default(),
            ..original
        };
        assert_eq!(back, expected);
    }

    #[test]
    fn malformed_files_are_explained() {
        assert_eq!(parse("functions: [", no_files).unwrap_err()[0].field, "fdl");
        assert_eq!(
            parse("x: 1", no_files).unwrap_err()[0].field,
            "functions.oscar"
        );
        assert_eq!(
            parse("functions: {oscar: []}", no_files).unwrap_err()[0].message,
            "lists no service"
        );
        let two_keys = "functions: {oscar: [{a: {name: x}, b: {name: y}}]}";
        assert_eq!(
            parse(two_keys, no_files).unwrap_err()[0].field,
            "functions.oscar[0]"
        );
    }

    #[test]
    fn duplicate_names_in_one_file_are_refused() {
        let doubled = WORKFLOW.replace("name: mask-detector", "name: blurry-faces");
        let errors = parse(&doubled, no_files).unwrap_err();
        assert!(
            errors.iter().any(|e| e.message.contains("defined twice")),
            "{errors:?}"
        );
    }
}
