//! Sending uploads. In the browser, a queue of files sent with XMLHttpRequest (for upload
//! progress), a few at a time, to `PUT /api/upload/{bucket}/{key}`. The server renders the
//! page with an inert queue of the same shape (no file ever reaches it), so the upload area
//! needs no feature gates.

#[cfg(feature = "hydrate")]
pub(super) use browser::{Queue, accept_folders, drop_anywhere};
#[cfg(not(feature = "hydrate"))]
pub(super) use inert::{Queue, accept_folders, drop_anywhere};

#[cfg(not(feature = "hydrate"))]
mod inert {
    use leptos::html::Input;
    use leptos::prelude::*;

    use super::super::uploads::Upload;

    #[derive(Clone)]
    pub struct Queue;

    impl Queue {
        pub fn new(
            _bucket: String,
            _uploads: RwSignal<Vec<Upload>>,
            _version: RwSignal<u64>,
        ) -> Self {
            Self
        }

        pub fn add_picked(&self, _prefix: &str, _event: &leptos::ev::Event) {}

        pub fn cancel(&self, _id: usize) {}

        pub fn retry(&self, _id: usize) {}
    }

    pub fn accept_folders(_input: NodeRef<Input>) {}

    pub fn drop_anywhere(_queue: Queue, _prefix: String, _dragging: RwSignal<bool>) {}
}

#[cfg(feature = "hydrate")]
mod browser {
    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::rc::Rc;

    use leptos::prelude::*;
    use wasm_bindgen::JsCast;
    use wasm_bindgen::closure::Closure;

    use super::super::uploads::{Upload, UploadState};
    use model::url::percent_encode;

    /// Uploads running at once.
    const PARALLEL_UPLOADS: usize = 4;

    /// Makes the folder picker choose a whole folder (`webkitdirectory` has no typed
    /// attribute).
    pub fn accept_folders(input: NodeRef<leptos::html::Input>) {
        Effect::new(move |_| {
            if let Some(input) = input.get() {
                let _ = input.set_attribute("webkitdirectory", "");
            }
        });
    }

    /// Files dragged anywhere over the page upload into `prefix`; `dragging` says while they
    /// are over it. Other drags (text, links) are left to the page.
    pub fn drop_anywhere(queue: Queue, prefix: String, dragging: RwSignal<bool>) {
        fn files_of(ev: &web_sys::DragEvent) -> Option<web_sys::DataTransfer> {
            ev.data_transfer().filter(|d| {
                d.types()
                    .includes(&wasm_bindgen::JsValue::from_str("Files"), 0)
            })
        }
        let over = window_event_listener(leptos::ev::dragover, move |ev| {
            if files_of(&ev).is_some() {
                ev.prevent_default();
                // Fired every few milliseconds while over the page.
                if !dragging.get_untracked() {
                    dragging.set(true);
                }
            }
        });
        // Moving between elements fires this too; only leaving the window has no target.
        let left = window_event_listener(leptos::ev::dragleave, move |ev| {
            if ev.related_target().is_none() {
                dragging.set(false);
            }
        });
        let dropped = window_event_listener(leptos::ev::drop, move |ev| {
            if let Some(files) = files_of(&ev).and_then(|d| d.files()) {
                ev.prevent_default();
                dragging.set(false);
                queue.add(&prefix, files);
            }
        });
        on_cleanup(move || {
            over.remove();
            left.remove();
            dropped.remove();
        });
    }

    #[derive(Clone)]
    pub struct Queue {
        bucket: String,
        uploads: RwSignal<Vec<Upload>>,
        version: RwSignal<u64>,
        inner: send_wrapper::SendWrapper<Rc<RefCell<Inner>>>,
    }

    #[derive(Default)]
    struct Inner {
        next_id: usize,
        files: HashMap<usize, web_sys::File>,
        running: HashMap<usize, web_sys::XmlHttpRequest>,
    }

    impl Queue {
        pub fn new(bucket: String, uploads: RwSignal<Vec<Upload>>, version: RwSignal<u64>) -> Self {
            Self {
                bucket,
                uploads,
                version,
                inner: send_wrapper::SendWrapper::new(Rc::default()),
            }
        }

        /// Queues the files chosen in a picker, and empties it for the next choice.
        pub fn add_picked(&self, prefix: &str, event: &leptos::ev::Event) {
            let Some(input) = event
                .target()
                .and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok())
            else {
                return;
            };
            if let Some(files) = input.files() {
                self.add(prefix, files);
            }
            input.set_value("");
        }

        /// Queues the files under `prefix`, keeping a picked folder's structure.
        fn add(&self, prefix: &str, files: web_sys::FileList) {
            let mut added = Vec::new();
            {
                let mut inner = self.inner.borrow_mut();
                for i in 0..files.length() {
                    let Some(file) = files.get(i) else { continue };
                    // Set by folder pickers (web-sys has no binding for it).
                    let relative = js_sys::Reflect::get(&file, &"webkitRelativePath".into())
                        .ok()
                        .and_then(|v| v.as_string())
                        .filter(|p| !p.is_empty())
                        .unwrap_or_else(|| file.name());
                    let id = inner.next_id;
                    inner.next_id += 1;
                    added.push(Upload {
                        id,
                        key: format!("{prefix}{relative}"),
                        size: file.size(),
                        sent: 0.0,
                        state: UploadState::Queued,
                    });
                    inner.files.insert(id, file);
                }
            }
            self.uploads.update(|u| u.extend(added));
            self.pump();
        }

        pub fn cancel(&self, id: usize) {
            if let Some(request) = self.inner.borrow_mut().running.remove(&id) {
                let _ = request.abort();
            }
            self.set_state(id, UploadState::Cancelled);
            self.pump();
        }

        pub fn retry(&self, id: usize) {
            self.uploads.update(|list| {
                if let Some(u) = list.iter_mut().find(|u| u.id == id) {
                    u.sent = 0.0;
                    u.state = UploadState::Queued;
                }
            });
            self.pump();
        }

        fn set_state(&self, id: usize, state: UploadState) {
            self.uploads.update(|list| {
                if let Some(u) = list.iter_mut().find(|u| u.id == id) {
                    u.state = state;
                }
            });
        }

        /// Starts queued uploads while fewer than `PARALLEL_UPLOADS` run.
        fn pump(&self) {
            loop {
                if self.inner.borrow().running.len() >= PARALLEL_UPLOADS {
                    return;
                }
                let next = self.uploads.with_untracked(|list| {
                    list.iter()
                        .find(|u| u.state == UploadState::Queued)
                        .map(|u| (u.id, u.key.clone()))
                });
                let Some((id, key)) = next else { return };
                self.start(id, &key);
            }
        }

        fn start(&self, id: usize, key: &str) {
            let Some(file) = self.inner.borrow().files.get(&id).cloned() else {
                self.set_state(id, UploadState::Failed("the file is gone".into()));
                return;
            };
            let Ok(request) = web_sys::XmlHttpRequest::new() else {
                self.set_state(id, UploadState::Failed("the browser refused".into()));
                return;
            };
            let url = format!(
                "/api/upload/{}/{}",
                percent_encode(&self.bucket, b""),
                percent_encode(key, b"/")
            );
            if request.open("PUT", &url).is_err() {
                self.set_state(id, UploadState::Failed("the browser refused".into()));
                return;
            }
            let _ = request.set_request_header("Accept", "application/json");
            let uploads = self.uploads;
            let progress = Closure::<dyn FnMut(web_sys::ProgressEvent)>::new(
                move |ev: web_sys::ProgressEvent| {
                    uploads.update(|list| {
                        if let Some(u) = list.iter_mut().find(|u| u.id == id) {
                            u.sent = ev.loaded();
                        }
                    });
                },
            );
            if let Ok(upload) = request.upload() {
                upload.set_onprogress(Some(progress.as_ref().unchecked_ref()));
            }
            let queue = self.clone();
            let finished_request = request.clone();
            let done = Closure::<dyn FnMut()>::new(move || {
                // Cancelled uploads were taken out already; their state stays "cancelled".
                if queue.inner.borrow_mut().running.remove(&id).is_none() {
                    return;
                }
                let status = finished_request.status().unwrap_or(0);
                let body = finished_request
                    .response_text()
                    .ok()
                    .flatten()
                    .unwrap_or_default();
                let state = if (200..300).contains(&status) {
                    let jobs = serde_json::from_str::<serde_json::Value>(&body)
                        .ok()
                        .and_then(|v| v["jobs"].as_array().map(Vec::len))
                        .unwrap_or(0);
                    queue.uploads.update(|list| {
                        if let Some(u) = list.iter_mut().find(|u| u.id == id) {
                            u.sent = u.size;
                        }
                    });
                    queue.version.update(|v| *v += 1);
                    UploadState::Done { jobs }
                } else if status == 0 {
                    UploadState::Failed("the connection was lost".into())
                } else {
                    UploadState::Failed(error_message(&body, status))
                };
                queue.set_state(id, state);
                queue.pump();
            });
            request.set_onloadend(Some(done.as_ref().unchecked_ref()));
            // The closures live as long as the page; an upload is a handful of bytes of them.
            progress.forget();
            done.forget();
            self.set_state(id, UploadState::Sending);
            self.inner.borrow_mut().running.insert(id, request.clone());
            if request.send_with_opt_blob(Some(&file)).is_err() {
                self.inner.borrow_mut().running.remove(&id);
                self.set_state(
                    id,
                    UploadState::Failed("the browser could not send it".into()),
                );
            }
        }
    }

    /// The server's message (plain text naming the field), or the status.
    fn error_message(body: &str, status: u16) -> String {
        match body.trim() {
            "" => format!("HTTP {status}"),
            text => text.to_string(),
        }
    }
}
