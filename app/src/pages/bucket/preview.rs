//! The preview of one object (images, text, PDFs, as the server classified it) with what the
//! store says of it: type, size, ETag, time, uploader and metadata.

use leptos::prelude::*;

use super::human_size;
use crate::api::buckets::{ObjectDetails, preview_object};
use crate::pages::widgets::{ErrorPanel, LocalTime, Owner};

#[component]
pub(super) fn Preview(
    bucket: String,
    key: String,
    previewing: RwSignal<Option<String>>,
) -> impl IntoView {
    let content = {
        let (bucket, key) = (bucket.clone(), key.clone());
        Resource::new(|| (), move |_| preview_object(bucket.clone(), key.clone()))
    };
    // Below a long listing it would open out of sight.
    let panel = NodeRef::<leptos::html::Section>::new();
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        if let Some(panel) = panel.get() {
            panel.scroll_into_view();
        }
    });
    view! {
        <section class="panel detail" data-testid="preview" node_ref=panel>
            <div class="page-header">
                <h2 class="mono">{key.clone()}</h2>
                <button type="button" class="small" on:click=move |_| previewing.set(None)>"Close"</button>
            </div>
            <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || content.get().map(|result| match result {
                    Err(error) => view! { <ErrorPanel error /> }.into_any(),
                    Ok(preview) => {
                        let shown = match (preview.image_url, preview.text) {
                            (Some(url), _) => view! { <img class="result-image" data-testid="preview-image" src=url alt=key.clone() /> }.into_any(),
                            (None, Some(text)) if text.is_empty() => view! {
                                <p class="muted" data-testid="preview-empty">"This file is empty."</p>
                            }.into_any(),
                            (None, Some(text)) => view! {
                                <pre class="script" data-testid="preview-text">{text}</pre>
                                {preview.truncated.then_some(view! { <p class="muted">"First part shown."</p> })}
                            }.into_any(),
                            (None, None) => match preview.pdf_url {
                                Some(url) => view! { <iframe class="pdf" src=url title=key.clone()></iframe> }.into_any(),
                                None => view! {
                                    <p class="muted">"No preview for this kind of file. "</p>
                                    <a href=preview.download_url class="button">"Download"</a>
                                }.into_any(),
                            },
                        };
                        view! { <Details details=preview.details /> {shown} }.into_any()
                    }
                })}
            </Transition>
        </section>
    }
    .into_any()
}

#[component]
fn Details(details: ObjectDetails) -> impl IntoView {
    view! {
        <dl class="facts" data-testid="object-details">
            <dt>"Type"</dt><dd>{details.content_type.unwrap_or_else(|| "unknown".into())}</dd>
            <dt>"Size"</dt><dd>{format!("{} ({} bytes)", human_size(details.size), details.size)}</dd>
            <dt>"Modified"</dt><dd>{details.modified.map(|at| view! { <LocalTime at /> })}</dd>
            <dt>"ETag"</dt><dd class="mono">{details.etag}</dd>
            <dt>"Uploaded by"</dt>
            <dd data-testid="uploader">{match details.uploader {
                Some(id) => view! { <Owner id /> }.into_any(),
                None => view! { <span class="muted">"not recorded"</span> }.into_any(),
            }}</dd>
            {details.metadata.into_iter().map(|(name, value)| view! {
                <dt class="mono">{format!("x-amz-meta-{name}")}</dt><dd class="mono">{value}</dd>
            }).collect_view()}
        </dl>
    }
}
