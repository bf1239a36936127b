//! The `ssebench` binary: parse arguments, run the command, map the result to an exit code.

use std::process::ExitCode;

use ssebench::cli::{self, ParseError};
use ssebench::commands::{self, exit};

fn main() -> ExitCode {
    match cli::parse() {
        Ok(command) => ExitCode::from(commands::execute(command)),
        Err(ParseError::Info(text)) => {
            print!("{text}");
            ExitCode::from(exit::OK)
        }
        Err(err) => {
            eprintln!("{err}");
            ExitCode::from(exit::USAGE)
        }
    }
}
