//! hookrun's entry point: parse the command line, set up logging, dispatch, map errors to an
//! exit code. runs in: the runtime.

use clap::Parser;
use hookrun::cli::Cli;

fn main() {
    // A reader that goes away (`hookrun describe x | head`) ends our output: leave quietly, with
    // the status a shell gives a process killed by SIGPIPE, instead of a panic message. Rust
    // ignores SIGPIPE so that sockets and hook pipes report EPIPE rather than killing us.
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .unwrap_or_default();
        if msg.contains("failed printing to stdout") && msg.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
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
