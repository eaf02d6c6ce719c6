//! The `scalesim` binary: parse the command line, run it, print any error, set the exit
//! status (0 ok, 1 run or I/O failure, 2 bad model, experiment or usage). A closed stdout
//! (`| head -1`) ends the command quietly with status 0, as ripgrep does.

mod cli;
mod output;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = match cli::Cli::try_parse() {
        Ok(args) => args,
        Err(e) => return usage(&e),
    };
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if output::is_stdout_closed(&e) => ExitCode::SUCCESS,
        Err(e) => {
            output::note!("error: {}", output::message(&e));
            if e.downcast_ref::<cli::BadInput>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}

/// Prints clap's help, version or usage error (status 0, or 2 for a usage error) without
/// clap's own exit, so that writing help to a full disk is an error and not a silent 0.
fn usage(e: &clap::Error) -> ExitCode {
    match e.print() {
        Err(io) if e.use_stderr() || io.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(io) => {
            output::note!("error: cannot write to stdout: {io}");
            return ExitCode::from(1);
        }
        Ok(()) => {}
    }
    ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2))
}
