//! `test-registry`: a registry on loopback serving busybox as the images the test suites name
//! (`STANDARD_IMAGES`), for harnesses that start the real server binary
//! (`scripts/with-server.sh`). Prints the `OSCAR_REGISTRY_MIRRORS` value that sends pulls to
//! it, then serves until killed.

fn main() {
    let mirrors = test_registry::shared_mirrors();
    println!("{mirrors}");
    loop {
        std::thread::park();
    }
}
