//! Service definitions from users: FDL files (`fdl::read` for the editor's draft, `fdl::parse`
//! for `POST /system/services/fdl`-style applies) and the JSON body `POST`/`PUT
//! /system/services` receives (`serde_json` then `Service::from_json`, as
//! `app/src/web/rest/services.rs` reads it, then `validate::prepare`, as `domain::services::create`
//! does). Every service that validates must export to an FDL file that reads back as the same
//! service (`fdl::export`; see the test `an_exported_service_reads_back_the_same`).
#![no_main]

use model::service::{Service, fdl, validate};
use libfuzzer_sys::fuzz_target;

const ATTACHED: &str = "#!/bin/sh\ncp \"$INPUT_FILE_PATH\" \"$TMP_OUTPUT_DIR/\"\n";

fn attachment(name: &str) -> Option<String> {
    (name == "script.sh").then(|| ATTACHED.to_string())
}

/// `export` leaves out what the server sets (owner, token) and empty fields; a service without
/// a cluster is exported under `oscar`. Inactive fields set to an empty value (null, `{}`, …)
/// say nothing (`inactive_fields_set` skips them too) and are not exported.
fn assert_round_trip(service: &Service) {
    let exported = fdl::export(service);
    let back = match fdl::parse(&exported, |_| None) {
        Ok(mut back) if back.len() == 1 => back.remove(0),
        other => panic!("the export of {service:#?} does not read back: {other:?}\n{exported}"),
    };
    let mut expected = service.clone();
    expected.owner.clear();
    expected.token.clear();
    if expected.cluster_id.is_empty() {
        expected.cluster_id = "oscar".into();
    }
    let set: Vec<String> = service
        .inactive_fields_set()
        .into_iter()
        .map(String::from)
        .collect();
    expected.inactive.retain(|field, _| set.contains(field));
    assert_eq!(back, expected, "export:\n{exported}");
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };

    // FDL: drafts and validated services.
    if let Err(errors) = fdl::read(text, attachment) {
        assert!(!errors.is_empty());
    }
    match fdl::parse(text, attachment) {
        Ok(services) => {
            assert!(!services.is_empty());
            for service in &services {
                assert_round_trip(service);
            }
        }
        Err(errors) => assert!(!errors.is_empty()),
    }

    // The REST API's JSON body.
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let Ok(mut service) = Service::from_json(value) else {
        return;
    };
    if validate::prepare(&mut service).is_ok() {
        // An update sends the stored service back: preparing it again changes nothing.
        let mut again = service.clone();
        assert_eq!(validate::prepare(&mut again), Ok(()));
        assert_eq!(again, service, "prepare is not idempotent");
        assert_round_trip(&service);
    }
});
