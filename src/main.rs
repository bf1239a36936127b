//! The `ssebench` binary: parse arguments, run the command, map the result to an exit code.

use std::process::ExitCode;

fn main() -> ExitCode {
    match ssebench::cli::parse() {
        Ok(command) => ExitCode::from(ssebench::commands::execute(command)),
        Err(err) => {
            eprintln!("ssebench: {err}");
            ExitCode::from(ssebench::commands::exit::USAGE)
        }
    }
}
