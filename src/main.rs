//! The `ckptscope` binary: parse the command line and hand over to the library.
fn main() {
    std::process::exit(ckptscope::cli::main());
}
