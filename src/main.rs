//! The `ssebench` binary: parse arguments, run the command, map the result to an exit code.

use std::process::ExitCode;

use ssebench::cli::{self, ParseError};
use ssebench::commands::{self, exit};

fn main() -> ExitCode {
    match cli::parse() {
        Ok(command) => ExitCode::from(commands::execute(command)),
        Err(ParseError::Info(text)) => match commands::print_stdout(&text) {
            Ok(()) => ExitCode::from(exit::OK),
            Err(err) => {
                eprintln!("ssebench: {err}");
                ExitCode::from(exit::CANNOT_START)
            }
        },
        Err(err) => {
            eprintln!("{err}");
            ExitCode::from(exit::USAGE)
        }
    }
}
