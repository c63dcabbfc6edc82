// `sqlx::migrate!` embeds ../migrations when the crate compiles; without this, cargo would not
// rebuild the crate when a migration is added.
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
