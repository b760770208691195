//! The `simulate` binary: a thin entry point into [`tenantsim::cli`].

fn main() -> std::process::ExitCode {
    tenantsim::cli::main()
}
