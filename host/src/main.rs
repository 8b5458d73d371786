//! The `vigilo` command line: a thin layer over the library's pipeline.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = vigilo::cli::Cli::parse();
    vigilo::cli::init_logging(cli.verbose);
    vigilo::cli::run(cli)
}
