use leptos::prelude::*;

use super::widgets::{PageHeader, loaded};
use crate::api::system::system_info;

#[component]
pub fn InfoPage() -> impl IntoView {
    let info = Resource::new(|| (), |_| system_info());
    view! {
        <PageHeader title="Info" />
        {loaded(info, |i| view! {
            <dl class="panel facts">
                <dt>"Version"</dt><dd>{i.version}</dd>
                <dt>"Commit"</dt><dd>{i.git_commit}</dd>
                <dt>"Mode"</dt><dd data-testid="mode">{i.mode}</dd>
                <dt>"Storage"</dt><dd>{i.storage}</dd>
                <dt>"Storage endpoint"</dt><dd data-testid="storage-endpoint">{i.storage_endpoint}</dd>
                <dt>"Database"</dt><dd data-testid="database">{i.database}</dd>
            </dl>
        })}
    }
}
