use std::process::ExitCode;

fn main() -> ExitCode {
    fluxgate::cli::main()
}
