//! hookrun's entry point: parse the command line, set up logging, dispatch, map errors to an
//! exit code. runs in: the runtime.

use clap::Parser;
use hookrun::cli::Cli;

fn main() {
    let cli = Cli::parse();
    hookrun::log::init(
        cli.global.log.clone(),
        cli.global.log_format,
        cli.global.debug,
    );
    match hookrun::container::dispatch(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            let msg = e.to_string();
            hookrun::log::error(&msg);
            eprintln!("hookrun: {msg}");
            std::process::exit(1);
        }
    }
}
