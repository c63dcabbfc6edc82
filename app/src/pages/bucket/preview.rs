//! The preview of one object: images, text, PDFs and other files, as the server classified it.

use leptos::prelude::*;

use crate::api::buckets::preview_object;
use crate::pages::widgets::ErrorPanel;

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
    view! {
        <section class="panel detail" data-testid="preview">
            <div class="page-header">
                <h2 class="mono">{key.clone()}</h2>
                <button type="button" class="small" on:click=move |_| previewing.set(None)>"Close"</button>
            </div>
            <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || content.get().map(|result| match result {
                    Err(error) => view! { <ErrorPanel error /> }.into_any(),
                    Ok(preview) => match (preview.image_url, preview.text) {
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
                    },
                })}
            </Transition>
        </section>
    }
    .into_any()
}
