//! `oscar-supervisor`: see the library documentation.

fn main() -> std::process::ExitCode {
    supervisor::main()
}
