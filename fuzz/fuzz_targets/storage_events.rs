//! Storage events as the platform receives them: MinIO/S3 webhook bodies (`POST
//! /system/store-events` in `app/src/rest/jobs.rs`), `POST /job` bodies and the events a job's
//! supervisor reads, all through `model::function::event::Event::parse`; the object version that
//! deduplicates jobs; the routing of a record to input folders
//! (`domain::jobs::events::input_accepts`); payload decoding (`payload_bytes`).
#![no_main]

use domain::jobs::events::{input_accepts, input_folder_holds};
use model::service::StorageIo;
use libfuzzer_sys::fuzz_target;
use model::function::event::{Event, minio_event, payload_bytes};

fn inputs() -> [StorageIo; 3] {
    let input = |path: &str, prefix: &[&str], suffix: &[&str]| StorageIo {
        storage_provider: "minio.default".into(),
        path: path.into(),
        prefix: prefix.iter().map(|s| s.to_string()).collect(),
        suffix: suffix.iter().map(|s| s.to_string()).collect(),
    };
    [
        input("grayify/in", &[], &[]),
        input("grayify", &["in/"], &[".jpg", ".png"]),
        input("b/in/deeper", &[""], &["+"]),
    ]
}

fuzz_target!(|data: &[u8]| {
    let _ = payload_bytes(data);
    let Event::Storage(event) = Event::parse(data) else {
        return;
    };
    let _ = event.is_created();
    let version = event.object_version();
    assert!(
        version.starts_with(&format!("{}/{}#", event.bucket, event.key)),
        "{version:?} does not name {}/{}",
        event.bucket,
        event.key
    );
    for input in inputs() {
        let accepted = input_accepts(&input, &event.bucket, &event.key);
        let held = input_folder_holds(&input, &event.bucket, &event.key);
        assert!(
            !accepted || held,
            "accepted outside the folder: {input:?} {event:?}"
        );
    }
    // The platform re-emits the event for the job with `minio_event`: same object.
    let rebuilt = minio_event(
        "Put",
        &event.bucket,
        &event.key,
        event.etag.as_deref(),
        event.size,
        event.time.as_deref().unwrap_or_default(),
    );
    let Event::Storage(back) = Event::parse(rebuilt.to_string().as_bytes()) else {
        panic!("rebuilt event is not a storage event: {rebuilt}");
    };
    assert_eq!((back.bucket, back.key), (event.bucket, event.key));
    assert_eq!(back.size, event.size);
});
